// Starting the real gateway (real driver, SQLite) against the test bed, and running the CLI against it.

import type { TestContext } from "node:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { defaultConfig, type GatewayConfig } from "../../src/config/settings.js";
import { OpenShell } from "../../src/gen/openshell/v1/openshell_pb.js";
import { SandboxExtService } from "../../src/gen/openshell/ext/v1/ext_pb.js";
import { KubernetesDriver } from "../../src/kubernetes/driver.js";
import { pullSecretSource } from "../../src/kubernetes/secrets.js";
import { RegistrySecrets } from "../../src/kubernetes/registry-secrets.js";
import { createLogger } from "../../src/gateway/observability.js";
import { startGateway, type RunningGateway } from "../../src/gateway/server.js";
import { openStore } from "../../src/gateway/store/database.js";
import { createPullSecret, pushTestImage, requireCluster, withNamespace, type Cluster } from "./cluster.js";
import { runProcess, type RunResult } from "./process.js";

const BIN = new URL("../../bin/openshell", import.meta.url).pathname;

export interface Env {
  namespace: string;
  image: string;
  dataDir: string;
  config: GatewayConfig;
}

export async function setup(t: TestContext, overrides: Partial<GatewayConfig> = {}): Promise<Env> {
  const cluster = await requireCluster("full");
  const namespace = await withNamespace(t, "e2e");
  const image = await pushTestImage("openshell-test/e2e", "v1");
  await createPullSecret(namespace, "regcred");
  const dataDir = mkdtempSync(join(tmpdir(), "osgw-e2e-"));
  const config = testGatewayConfig(cluster, namespace, dataDir, {
    imagePullSecrets: ["regcred"],
    ...overrides,
  });
  return { namespace, image, dataDir, config };
}

/** An in-process gateway's configuration for the test bed: loopback, plaintext, no auth, one namespace. */
export function testGatewayConfig(
  cluster: Cluster,
  namespace: string,
  dataDir: string,
  overrides: Partial<GatewayConfig> = {},
): GatewayConfig {
  return {
    ...defaultConfig(),
    bindAddress: "127.0.0.1",
    port: 0,
    disableTls: true,
    allowUnauthenticated: true,
    dataDir,
    kubeconfig: cluster.kubeconfigPath,
    namespace,
    ...overrides,
  };
}

export async function launch(
  t: TestContext,
  env: Env,
): Promise<{
  gateway: RunningGateway;
  api: Client<typeof OpenShell>;
  ext: Client<typeof SandboxExtService>;
  url: string;
}> {
  const log = createLogger("warn", new Writable({ write: (_c, _e, cb) => cb() }));
  const driver = new KubernetesDriver({ config: env.config });
  const secrets = pullSecretSource(driver.kc, driver.client, env.config.namespace);
  const gateway = await startGateway(env.config, {
    store: openStore({ dbUrl: "", dataDir: env.dataDir }),
    driver,
    log,
    secrets,
    registrySecrets: new RegistrySecrets(driver.client),
  });
  t.after(() => secrets.cache.stop());
  let closed = false;
  t.after(async () => {
    if (!closed) await gateway.close(2000);
  });
  const url = `http://127.0.0.1:${gateway.port}`;
  const close = gateway.close.bind(gateway);
  return {
    gateway: {
      ...gateway,
      close: async (graceMs?: number) => {
        closed = true;
        await close(graceMs);
      },
    },
    api: createClient(OpenShell, createGrpcTransport({ baseUrl: url })),
    ext: createClient(SandboxExtService, createGrpcTransport({ baseUrl: url })),
    url,
  };
}

/** Runs the built CLI against a gateway; stdin is written and closed, env is added to a minimal PATH. */
export function cli(
  url: string,
  args: string[],
  options: { stdin?: string; env?: Record<string, string> } = {},
): Promise<RunResult> {
  return runProcess(process.execPath, [BIN, "--gateway", url, ...args], options);
}
