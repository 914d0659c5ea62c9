// Serving: one port for gRPC, gRPC-Web and Connect JSON (TLS by default, mTLS or bearer-token auth), plus
// plain-HTTP health and metrics listeners, and a graceful shutdown that lets in-flight calls finish.

import { readFileSync } from "node:fs";
import {
  createSecureServer,
  createServer as createH2Server,
  type Http2Server,
  type Http2SecureServer,
} from "node:http2";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createContextValues } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { GatewayConfig } from "../config/settings.js";
import { OpenShell } from "../gen/openshell/v1/openshell_pb.js";
import type { SandboxDriver } from "../kubernetes/types.js";
import { openShellService } from "./api/openshell-service.js";
import { sandboxExtService } from "./api/ext-service.js";
import { RegistryService, SandboxExtService } from "../gen/openshell/ext/v1/ext_pb.js";
import type { RegistrySecrets } from "../kubernetes/registry-secrets.js";
import { registryService } from "./api/registry-service.js";
import { authInterceptor, certificateVerified, peerAuthorized } from "./auth.js";
import { createMetrics, healthServer, metricsServer } from "./observability.js";
import { Sandboxes } from "./sandboxes.js";
import type { PullSecretSource } from "./pull-path.js";
import type { SandboxStore } from "./store/types.js";
import { VERSION } from "../version.js";

/** The largest request message the API reads. */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

export interface GatewayDeps {
  readonly store: SandboxStore;
  readonly driver: SandboxDriver;
  readonly log: Logger;
  /** Where metrics are registered (the driver may have registered its own already). */
  readonly registry?: Registry;
  /** Pull secrets for preflight; without it preflight is skipped. */
  readonly secrets?: PullSecretSource;
  /** Extra details for /readyz (e.g. the state of the configured pull secrets); never affects readiness. */
  readonly readinessDetails?: () => Record<string, unknown>;
  /** Registry credential management (served only when enabled in the configuration). */
  readonly registrySecrets?: RegistrySecrets;
}

export interface RunningGateway {
  readonly port: number;
  readonly healthPort: number | undefined;
  readonly metricsPort: number | undefined;
  readonly sandboxes: Sandboxes;
  /** Stops accepting calls, waits for in-flight ones (up to the grace period), then closes everything. */
  close(graceMs?: number): Promise<void>;
}

function listen(
  server: Http2Server | Http2SecureServer | Server,
  port: number,
  host: string,
  flag: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      const why =
        err.code === "EADDRINUSE"
          ? "the address is already in use"
          : err.code === "EACCES"
            ? "permission denied"
            : err.message;
      reject(new Error(`cannot listen on ${host}:${port}: ${why}; choose another ${flag}`));
    });
    server.listen(port, host, () => {
      server.removeAllListeners("error");
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export async function startGateway(config: GatewayConfig, deps: GatewayDeps): Promise<RunningGateway> {
  const cleanups: (() => Promise<void> | void)[] = [];
  try {
    return await start(config, deps, cleanups);
  } catch (err) {
    // Nothing half-started stays behind: a failed start closes what it opened, newest first.
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
    throw err;
  }
}

async function start(
  config: GatewayConfig,
  deps: GatewayDeps,
  cleanups: (() => Promise<void> | void)[],
): Promise<RunningGateway> {
  const { store, driver, log } = deps;
  if (config.disableTls) log.warn("TLS is DISABLED: the API is served in plaintext (development only)");
  if (config.allowUnauthenticated)
    log.warn("authentication is DISABLED: any client may create and delete sandboxes");

  // Liveness answers from the start; /readyz stays 503 until the database and the caches are ready.
  let started = false;
  const health = config.healthPort
    ? healthServer(store, driver, () => ({
        version: VERSION,
        ...(started ? {} : { starting: true }),
        ...(deps.readinessDetails?.() ?? {}),
      }))
    : undefined;
  if (health) cleanups.push(() => void health.close());
  const healthPort = health
    ? await listen(health, config.healthPort, config.bindAddress, "--health-port")
    : undefined;

  cleanups.push(() => store.close());
  await store.migrate();
  cleanups.push(() => driver.stop());
  await driver.start();
  const target = await driver.target();
  log.info({ target, namespace: config.namespace }, "kubernetes driver ready");

  const sandboxes = new Sandboxes(config, store, driver, log, deps.secrets);
  cleanups.push(() => sandboxes.close());
  sandboxes.startReconcileLoop(config.reconcileIntervalSeconds * 1000, config.orphanGraceSeconds * 1000);

  const metrics = createMetrics(driver, deps.registry);
  const token = config.authTokenFile ? readFileSync(config.authTokenFile, "utf8").trim() : undefined;
  const mtls = !config.disableTls && config.tlsClientCa !== "";
  const handler = connectNodeAdapter({
    // A bound on one request message, as upstream's (tonic's default 4 MiB): larger ones are refused with
    // RESOURCE_EXHAUSTED before they are buffered and parsed.
    readMaxBytes: MAX_REQUEST_BYTES,
    routes: (router) =>
      router
        .service(RegistryService, registryService(config, deps.registrySecrets, log))
        .service(OpenShell, openShellService(sandboxes))
        .service(SandboxExtService, sandboxExtService(sandboxes, config)),
    interceptors: [
      metrics.interceptor,
      authInterceptor({ token, mtls, allowUnauthenticated: config.allowUnauthenticated }),
    ],
    contextValues: (req) => createContextValues().set(peerAuthorized, mtls && certificateVerified(req)),
  });

  const api = config.disableTls
    ? createH2Server(handler)
    : createSecureServer(
        {
          cert: readFileSync(config.tlsCert),
          key: readFileSync(config.tlsKey),
          allowHTTP1: true,
          ...(mtls
            ? {
                ca: readFileSync(config.tlsClientCa),
                requestCert: true,
                // With a token file too, a client may authenticate either way; otherwise the handshake enforces it.
                rejectUnauthorized: !token,
              }
            : {}),
        },
        handler,
      );
  const sessions = new Set<import("node:http2").ServerHttp2Session>();
  api.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  cleanups.push(() => new Promise<void>((resolve) => api.close(() => resolve())));
  const port = await listen(api, config.port, config.bindAddress, "--port");
  const metricsHttp = config.metricsPort ? metricsServer(metrics.registry) : undefined;
  const metricsPort = metricsHttp
    ? await listen(metricsHttp, config.metricsPort, config.bindAddress, "--metrics-port")
    : undefined;
  started = true;
  log.info(
    { port, healthPort, metricsPort, tls: !config.disableTls, mtls, version: VERSION },
    "gateway listening",
  );

  return {
    port,
    healthPort,
    metricsPort,
    sandboxes,
    async close(graceMs = 10_000) {
      log.info("shutting down: finishing in-flight calls");
      const closed = new Promise<void>((resolve) => api.close(() => resolve()));
      // Watches end now; unary calls and exec streams get the grace period.
      sandboxes.close();
      for (const session of sessions) session.close();
      const timer = setTimeout(() => {
        log.warn(
          { sessions: sessions.size },
          "in-flight calls did not finish in time; closing their connections",
        );
        for (const session of sessions) session.destroy();
      }, graceMs);
      await closed;
      clearTimeout(timer);
      health?.close();
      metricsHttp?.close();
      await driver.stop();
      await store.close();
      log.info("stopped");
    },
  };
}
