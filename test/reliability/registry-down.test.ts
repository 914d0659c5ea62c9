// Registry down: a registry of this test's own (Debian's docker-registry on a free loopback port) is
// started, answers, and is stopped; then the gateway's preflight probe and the kubelet's pull both meet
// it down and report RegistryUnreachable, not a generic error. A registry that accepts connections and
// never answers is refused within the probe timeout. (test/registry/probe.test.ts covers the probe alone
// against a closed port; test/e2e/pull-path.test.ts the other pull failures.)

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import type { GatewayConfig } from "../../src/config/settings.js";
import { ErrorInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { SandboxPhase, type Sandbox } from "../../src/gen/openshell/v1/openshell_pb.js";
import { createPullSecret, requireCluster, waitFor, withNamespace } from "../support/cluster.js";
import { launch, testGatewayConfig, type Env } from "../support/gateway.js";
import { freePort } from "../support/ports.js";
import { listSandboxObjects, scope, timed } from "../support/reliability.js";
import { rpcError } from "../support/rpc.js";
import type { TestContext } from "node:test";

const DOCKER_REGISTRY = "/usr/bin/docker-registry";
const PROBE_TIMEOUT_SECONDS = 2;

/** Starts docker-registry on 127.0.0.1:port, waits for /v2/, stops it again: a registry that was up and went down. */
async function registryThatWentDown(t: TestContext): Promise<string> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "osgw-registry-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, "config.yml");
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  const child = spawn(DOCKER_REGISTRY, ["serve", config], { stdio: "ignore", detached: true });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.once("error", () => undefined);
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, "SIGKILL");
    await exited;
  });
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`${DOCKER_REGISTRY} exited with ${child.exitCode}`);
      return (await fetch(`http://127.0.0.1:${port}/v2/`)).status === 200;
    },
    { timeoutMs: 20_000, intervalMs: 100, description: `docker-registry on 127.0.0.1:${port}` },
  );
  process.kill(-child.pid!, "SIGTERM");
  await exited;
  await assert.rejects(fetch(`http://127.0.0.1:${port}/v2/`), "the registry still answers after its stop");
  return `127.0.0.1:${port}`;
}

async function environment(t: TestContext, prefix: string, overrides: Partial<GatewayConfig>): Promise<Env> {
  const cluster = await requireCluster("full");
  const namespace = await withNamespace(t, prefix);
  const dataDir = mkdtempSync(join(tmpdir(), "osgw-registry-down-"));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  return {
    namespace,
    image: "",
    dataDir,
    config: testGatewayConfig(cluster, namespace, dataDir, overrides),
  };
}

test("registry down during the preflight probe: RegistryUnreachable, nothing created, bounded", async (t) => {
  const down = await registryThatWentDown(t);
  // A registry that accepts the connection and never answers.
  const sockets = new Set<Socket>();
  const silent = createServer((s) => sockets.add(s));
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const silentHost = `127.0.0.1:${(silent.address() as { port: number }).port}`;

  const env = await environment(t, "rel-probe", {
    imagePullSecrets: ["down-cred", "silent-cred"],
    registryProbe: true,
    registryProbeTimeoutSeconds: PROBE_TIMEOUT_SECONDS,
  });
  for (const [name, server] of [
    ["down-cred", down],
    ["silent-cred", silentHost],
  ] as const) {
    await createPullSecret(env.namespace, name, { server, user: "robot", password: "probe-canary-pw" });
  }
  const { api } = await launch(t, env);

  for (const [label, host] of [
    ["stopped", down],
    ["silent", silentHost],
  ] as const) {
    const outcome = await timed(
      rpcError(
        api.createSandbox({
          name: `probe-${label}`,
          workspaceScope: scope,
          spec: { template: { image: `${host}/team/agent:v1` } },
        }),
      ),
    );
    const err = outcome.value!;
    t.diagnostic(`${label} registry: refused in ${Math.round(outcome.ms)} ms: ${err.rawMessage}`);
    assert.equal(err.code, Code.FailedPrecondition, `${Code[err.code]} ${err.rawMessage}`);
    assert.equal(err.findDetails(ErrorInfoSchema)[0]?.reason, "RegistryUnreachable", err.rawMessage);
    assert.match(err.rawMessage, new RegExp(`RegistryUnreachable: .*${host.replace(/\./g, "\\.")}`));
    assert.match(err.rawMessage, /fix: /);
    assert.doesNotMatch(err.rawMessage, /probe-canary-pw/);
    // The silent one waits out the probe timeout, and no longer. Node's request `timeout` is an idle
    // timer that is armed again when the TCP connection opens, so a host that accepts and never answers
    // holds the probe for up to twice the configured timeout (measured: 4.0 s for 2 s).
    assert.ok(outcome.ms < 2 * PROBE_TIMEOUT_SECONDS * 1000 + 2500, `took ${Math.round(outcome.ms)} ms`);
    assert.equal(
      (await rpcError(api.getSandbox({ name: `probe-${label}`, workspaceScope: scope }))).code,
      Code.NotFound,
    );
  }
  assert.deepEqual(await listSandboxObjects(env.namespace), [], "a refused create left an object");
});

test("registry down during the pull: the sandbox goes to ERROR with RegistryUnreachable", async (t) => {
  const down = await registryThatWentDown(t);
  const env = await environment(t, "rel-pull", {
    pullSecretPreflight: "off",
    pullFailureGraceSeconds: 3,
    // Always: the kubelet must ask the registry even if the node had such an image.
    imagePullPolicy: "Always",
  });
  const { api } = await launch(t, env);
  const image = `${down}/team/agent:v1`;
  await api.createSandbox({ name: "pull-down", workspaceScope: scope, spec: { template: { image } } });
  const started = Date.now();
  const cluster = await requireCluster("full");
  // When each step happened (the controller makes the pod, the kubelet fails the pull, the gateway
  // classifies it after the grace): on a loaded machine the first two can take a while.
  const timeline = new Map<string, number>();
  const mark = (step: string) => {
    if (!timeline.has(step)) timeline.set(step, Date.now() - started);
  };
  let sandbox: Sandbox | undefined;
  await waitFor(
    async () => {
      const pods = await cluster.core.listNamespacedPod({ namespace: env.namespace });
      for (const pod of pods.items) {
        mark("pod created");
        for (const cs of pod.status?.containerStatuses ?? []) {
          const reason = cs.state?.waiting?.reason;
          if (reason && reason !== "ContainerCreating") mark(`kubelet ${reason}`);
        }
      }
      sandbox = (await api.getSandbox({ name: "pull-down", workspaceScope: scope })).sandbox!;
      return sandbox.status!.phase === SandboxPhase.ERROR;
    },
    { timeoutMs: 240_000, intervalMs: 250, description: "ERROR RegistryUnreachable" },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; so far: ${JSON.stringify([...timeline])}`);
  });
  mark("ERROR");
  t.diagnostic(`timeline (ms since create): ${[...timeline].map(([k, v]) => `${k} ${v}`).join(", ")}`);
  const conditions = sandbox!.status!.conditions;
  const all = conditions.map((c) => `${c.type}=${c.status} ${c.reason}: ${c.message}`).join("\n");
  // The gateway's classified condition (next to the controller's own DependenciesNotReady).
  const ready = conditions.find(
    (c) => c.type === "Ready" && c.status === "False" && c.reason === "RegistryUnreachable",
  );
  assert.ok(ready, all);
  assert.ok(!conditions.some((c) => c.reason === "ImagePullFailed"), `a generic pull failure: ${all}`);
  assert.match(ready.message, new RegExp(down.replace(/\./g, "\\.")));
  assert.match(ready.message, /fix: the node cannot reach the registry/);
});
