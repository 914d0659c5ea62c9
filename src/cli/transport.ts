// Clients for a gateway: gRPC over HTTP/2, TLS (with an optional custom CA and client certificate) unless
// the URL says http://, and a bearer token when one is configured. Errors become one clear line.

import { readFileSync } from "node:fs";
import {
  Code,
  ConnectError,
  createClient,
  type Client,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { DescService } from "@bufbuild/protobuf";
import type { GatewayTarget } from "./gateways.js";

export function createTransport(target: GatewayTarget): Transport {
  const interceptors: Interceptor[] = [];
  if (target.token) {
    const header = `Bearer ${target.token}`;
    interceptors.push((next) => (req) => {
      req.header.set("authorization", header);
      return next(req);
    });
  }
  const tls = target.url.protocol === "https:";
  return createGrpcTransport({
    baseUrl: target.url.origin,
    interceptors,
    nodeOptions: tls
      ? {
          ...(target.caFile ? { ca: readFileSync(target.caFile) } : {}),
          ...(target.certFile ? { cert: readFileSync(target.certFile) } : {}),
          ...(target.keyFile ? { key: readFileSync(target.keyFile) } : {}),
        }
      : {},
  });
}

export function client<T extends DescService>(service: T, transport: Transport): Client<T> {
  return createClient(service, transport);
}

/** Exit codes the CLI documents (see `openshell --help`). */
export const CLI_EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  unreachable: 3,
  timeout: 4,
} as const;

const CODE_WORDS: Partial<Record<Code, string>> = {
  [Code.InvalidArgument]: "invalid argument",
  [Code.NotFound]: "not found",
  [Code.AlreadyExists]: "already exists",
  [Code.PermissionDenied]: "permission denied",
  [Code.Unauthenticated]: "not authenticated",
  [Code.FailedPrecondition]: "failed precondition",
  [Code.Unavailable]: "unavailable",
  [Code.DeadlineExceeded]: "timed out",
  [Code.Unimplemented]: "not supported",
  [Code.Internal]: "gateway error",
  [Code.ResourceExhausted]: "too large",
};

/** A gateway error as one line, and the exit code for it. */
export function describeRpcError(err: unknown, gateway: string): { line: string; exitCode: number } {
  const connect = ConnectError.from(err);
  const cause = connect.cause as NodeJS.ErrnoException | undefined;
  const network =
    cause?.code ?? /(ECONNREFUSED|ENOTFOUND|ECONNRESET|EHOSTUNREACH|ETIMEDOUT)/.exec(connect.rawMessage)?.[1];
  if (
    network ||
    (connect.code === Code.Unavailable && /connect|socket|TLS|certificate/i.test(connect.rawMessage))
  ) {
    return {
      line: `cannot reach the gateway at ${gateway}: ${connect.rawMessage}; check the URL and that the gateway is running (openshell doctor)`,
      exitCode: CLI_EXIT.unreachable,
    };
  }
  const word = CODE_WORDS[connect.code] ?? Code[connect.code]?.toLowerCase() ?? "error";
  return {
    line: `${word}: ${connect.rawMessage}`,
    exitCode:
      connect.code === Code.InvalidArgument
        ? CLI_EXIT.usage
        : connect.code === Code.DeadlineExceeded
          ? CLI_EXIT.timeout
          : CLI_EXIT.failure,
  };
}
