// `openshell-gateway` with no subcommand: build the real store and driver, serve until SIGTERM/SIGINT.

import { Registry } from "prom-client";
import type { GatewayConfig } from "../config/settings.js";
import { KubernetesDriver } from "../kubernetes/driver.js";
import { createLogger } from "./observability.js";
import { startGateway } from "./server.js";
import { openStore } from "./store/database.js";
import { pullSecretSource } from "../kubernetes/secrets.js";
import { RegistrySecrets } from "../kubernetes/registry-secrets.js";
import type { Logger } from "pino";
import { DOCKERCFG, DOCKERCONFIGJSON, parsePullSecret } from "../registry/dockerconfig.js";

/**
 * Checks the configured pull secrets now and then (preflight's own checks, without an image), so a
 * missing or broken one shows in the log at startup and in /readyz details, not only at the next create.
 */
function watchConfiguredSecrets(
  config: GatewayConfig,
  secrets: ReturnType<typeof pullSecretSource>,
  log: Logger,
): { status: Record<string, string>; stop(): void } {
  const status: Record<string, string> = {};
  const check = async () => {
    for (const name of config.imagePullSecrets) {
      let state: string;
      try {
        const secret = await secrets.lookup(name);
        if (!secret) state = `missing: no secret "${name}" in namespace ${config.namespace}`;
        else if (secret.type !== DOCKERCONFIGJSON && secret.type !== DOCKERCFG)
          state = `wrong type ${secret.type || "Opaque"}`;
        else {
          try {
            state = parsePullSecret(secret.type, secret.data).length > 0 ? "ok" : "no credentials";
          } catch (err) {
            state = `malformed: ${err instanceof Error ? err.message : String(err)}`;
          }
        }
      } catch (err) {
        state = `unreadable: ${err instanceof Error ? err.message : String(err)}`;
      }
      if (status[name] !== state && state !== "ok")
        log.error(
          { secret: name, namespace: config.namespace },
          `configured pull secret "${name}": ${state}`,
        );
      status[name] = state;
    }
  };
  void check();
  const timer = setInterval(() => void check(), Math.max(10, config.reconcileIntervalSeconds) * 1000);
  timer.unref();
  return { status, stop: () => clearInterval(timer) };
}

export async function serve(config: GatewayConfig): Promise<void> {
  const log = createLogger(config.logLevel);
  const registry = new Registry();
  const store = openStore({ dbUrl: config.dbUrl, dataDir: config.dataDir });
  const driver = new KubernetesDriver({ config, registry, logger: log.child({ component: "kubernetes" }) });
  const secrets = pullSecretSource(
    driver.kc,
    driver.client,
    config.namespace,
    log.child({ component: "secrets" }),
  );
  const registrySecrets = new RegistrySecrets(driver.client);
  const configured = watchConfiguredSecrets(config, secrets, log);
  const gateway = await startGateway(config, {
    store,
    driver,
    log,
    registry,
    secrets,
    registrySecrets,
    readinessDetails: () => ({ pullSecrets: configured.status }),
  }).catch(async (err: unknown) => {
    // Nothing may keep the process alive after a failed start.
    configured.stop();
    await secrets.cache.stop();
    throw err;
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      log.info({ signal }, "signal received");
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      void gateway
        .close()
        .then(() => secrets.cache.stop())
        .then(resolve, (err: unknown) => {
          log.error({ err: String(err) }, "shutdown failed");
          resolve();
        });
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
}
