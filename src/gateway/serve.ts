// `openshell-gateway` with no subcommand: build the real store and driver, serve until SIGTERM/SIGINT.

import { Registry } from "prom-client";
import type { GatewayConfig } from "../config/settings.js";
import { KubernetesDriver } from "../kubernetes/driver.js";
import { createLogger } from "./observability.js";
import { startGateway } from "./server.js";
import { openStore } from "./store/database.js";

export async function serve(config: GatewayConfig): Promise<void> {
  const log = createLogger(config.logLevel);
  const registry = new Registry();
  const store = openStore({ dbUrl: config.dbUrl, dataDir: config.dataDir });
  const driver = new KubernetesDriver({ config, registry, logger: log.child({ component: "kubernetes" }) });
  const gateway = await startGateway(config, { store, driver, log, registry });
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      log.info({ signal }, "signal received");
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      void gateway.close().then(resolve, (err: unknown) => {
        log.error({ err: String(err) }, "shutdown failed");
        resolve();
      });
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
}
