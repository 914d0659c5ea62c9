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

async function checkConfiguredSecrets(
  config: GatewayConfig,
  secrets: ReturnType<typeof pullSecretSource>,
  log: Logger,
): Promise<void> {
  for (const name of config.imagePullSecrets) {
    try {
      const secret = await secrets.lookup(name);
      if (!secret)
        log.error(
          { secret: name, namespace: config.namespace },
          `configured pull secret "${name}" does not exist in namespace "${config.namespace}"`,
        );
    } catch (err) {
      log.warn({ secret: name, err: String(err) }, `cannot read configured pull secret "${name}"`);
    }
  }
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
  const gateway = await startGateway(config, { store, driver, log, registry, secrets, registrySecrets });
  // The configured secrets are checked now, so a missing one shows in the log at startup.
  void checkConfiguredSecrets(config, secrets, log);
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
