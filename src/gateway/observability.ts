// Logs (pino, with redaction), Prometheus metrics and the health endpoints.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { pino, type Logger } from "pino";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { SandboxDriver } from "../kubernetes/types.js";
import type { SandboxStore } from "./store/types.js";

/** Paths that may carry credentials anywhere in a log line. */
export const REDACT_PATHS = [
  "password",
  "*.password",
  "auth",
  "*.auth",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "req.headers.authorization",
  "dockerconfigjson",
  "*.dockerconfigjson",
  '*[".dockerconfigjson"]',
  "dbUrl",
  "*.dbUrl",
  "token",
  "*.token",
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, base: { service: "openshell-gateway" }, redact: { paths: REDACT_PATHS, censor: "[REDACTED]" } },
    destination as pino.DestinationStream | undefined,
  );
}

/** gRPC's canonical code name in snake case (not_found, invalid_argument, …). */
export function codeLabel(err: unknown): string {
  return Code[ConnectError.from(err).code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

export interface Metrics {
  readonly registry: Registry;
  readonly interceptor: Interceptor;
}

export function createMetrics(driver: SandboxDriver, registry: Registry = new Registry()): Metrics {
  collectDefaultMetrics({ register: registry, prefix: "openshell_gateway_" });
  const requests = new Counter({
    name: "openshell_gateway_rpc_requests_total",
    help: "RPCs handled, by method and status code",
    labelNames: ["method", "code"] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: "openshell_gateway_rpc_duration_seconds",
    help: "RPC latency (for streams: time to the end of the stream), by method and status code",
    labelNames: ["method", "code"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  new Gauge({
    name: "openshell_gateway_sandboxes",
    help: "Sandboxes known to the Kubernetes reflector, by phase",
    labelNames: ["phase"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const observed of driver.observedAll()) this.inc({ phase: observed.phase });
    },
  });
  const interceptor: Interceptor = (next) => async (req) => {
    const started = process.hrtime.bigint();
    const method = req.method.name;
    const observe = (code: string) => {
      requests.inc({ method, code });
      latency.observe({ method, code }, Number(process.hrtime.bigint() - started) / 1e9);
    };
    try {
      const res = await next(req);
      if (!res.stream) observe("ok");
      else {
        const inner = res.message;
        return {
          ...res,
          message: (async function* () {
            try {
              yield* inner;
              observe("ok");
            } catch (err) {
              observe(codeLabel(err));
              throw err;
            }
          })(),
        };
      }
      return res;
    } catch (err) {
      observe(codeLabel(err));
      throw err;
    }
  };
  return { registry, interceptor };
}

export interface Readiness {
  ready: boolean;
  checks: { database: string; kubernetes: string };
}

export async function readiness(store: SandboxStore, driver: SandboxDriver): Promise<Readiness> {
  let database = "ok";
  try {
    await store.ping(2000);
  } catch (err) {
    database = err instanceof Error ? err.message : String(err);
  }
  const kubernetes = driver.apiReachable() ? "ok" : "the Kubernetes API server is not reachable";
  return { ready: database === "ok" && kubernetes === "ok", checks: { database, kubernetes } };
}

export function healthServer(
  store: SandboxStore,
  driver: SandboxDriver,
  extra: () => Record<string, unknown>,
): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? "/";
    if (url === "/healthz" || url === "/health") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    if (url === "/readyz") {
      void readiness(store, driver).then((r) => {
        const info = extra();
        const ready = r.ready && !info.starting;
        res
          .writeHead(ready ? 200 : 503, { "content-type": "application/json" })
          .end(`${JSON.stringify({ status: ready ? "ready" : "not ready", ...r.checks, ...info })}\n`);
      });
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
  });
}

export function metricsServer(registry: Registry): Server {
  return createServer((req, res) => {
    if (req.url !== "/metrics") {
      res.writeHead(404).end();
      return;
    }
    void registry.metrics().then(
      (body) => res.writeHead(200, { "content-type": registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
}
