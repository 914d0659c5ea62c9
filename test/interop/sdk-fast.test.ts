// Upstream's published Python SDK (PyPI openshell==0.1.5) against our gateway over real gRPC, with the
// in-memory driver: proves the wire contract quickly. test/testbed/ runs the same flow on the real cluster.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { defaultConfig } from "../../src/config/settings.js";
import { createLogger } from "../../src/gateway/observability.js";
import { startGateway, type RunningGateway } from "../../src/gateway/server.js";
import { openStore } from "../../src/gateway/store/database.js";
import { MemoryDriver } from "../support/memory-driver.js";
import { runSdkFlow } from "../support/sdk.js";

const TOKEN = "sdk-interop-token";

let gateway: RunningGateway;
before(async () => {
  const dir = mkdtempSync(join(tmpdir(), "osgw-sdk-"));
  writeFileSync(join(dir, "token"), TOKEN);
  const driver = new MemoryDriver();
  driver.autoSettleMs = 200;
  gateway = await startGateway(
    {
      ...defaultConfig(),
      bindAddress: "127.0.0.1",
      port: 0,
      disableTls: true,
      authTokenFile: join(dir, "token"),
      dataDir: dir,
    },
    {
      store: openStore({ dbUrl: "", dataDir: dir }),
      driver,
      log: createLogger("warn", new Writable({ write: (_c, _e, cb) => cb() })),
    },
  );
});
after(async () => {
  await gateway.close(1000);
});

test("the Python SDK creates, waits for, executes in and deletes a sandbox", async () => {
  const result = await runSdkFlow({
    endpoint: `127.0.0.1:${gateway.port}`,
    token: TOKEN,
    name: "sdk-fast",
    readyTimeoutSeconds: 30,
    timeoutMs: 120_000,
  });
  assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
  const steps = result.steps;
  assert.deepEqual(steps.wait_ready, { phase: 2 });
  assert.deepEqual(steps.exec, { exit_code: 0, stdout: "ok\n", stderr: "" });
  assert.deepEqual(steps.exec_failing, { exit_code: 3, stderr: "err\n" });
  assert.equal((steps.delete as { outcome: string }).outcome, "ACCEPTED");
  assert.equal(steps.get_after_delete, "NOT_FOUND");
  assert.match(result.stdout, /SDK-FLOW-OK 0\.1\.5/);
});
