// The ConnectError a call fails with (the test fails when the call succeeds).
import assert from "node:assert/strict";
import { ConnectError } from "@connectrpc/connect";

export async function rpcError(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (err) {
    return ConnectError.from(err);
  }
  assert.fail("expected the call to fail");
}
