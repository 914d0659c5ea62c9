// API-server faults, without touching the shared kube-apiserver: the gateway under test talks to a second
// kube-apiserver of this test's own (same etcd, own port, test/support/apiserver-replica.ts), directly or
// through a TCP proxy the test controls.
//
// 1. The replica is restarted while the gateway's watches are open, and meanwhile (through the shared API
//    server) sandboxes change status for real (the zero-pod quota is lifted: the controller starts their
//    pods and they become READY) and one is deleted. After recovery the gateway's view
//    (GetSandbox, ListSandboxes) equals what the API server says, within a bound well under the watch
//    watchdog (150 s): no transition was missed.
// 2. The API becomes unreachable (connections reset, then blackholed): /readyz goes 503 naming the
//    Kubernetes API, RPCs that need the API fail with UNAVAILABLE / DEADLINE_EXCEEDED and a message within
//    the client timeout, nothing is left half done, and everything works again once the API is back.
//
// The gateway runs in-process here, with a short reachability grace (3 s instead of 60 s) and API timeout
// (3 s instead of 20 s), and in test 2 a short watch watchdog (4 s instead of 150 s: a blackholed API is
// noticed when the open watches fall silent), so the bounds are seconds; the defaults are the same code
// with longer waits.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { defaultConfig } from "../../src/config/settings.js";
import { OpenShell, SandboxPhase, type Sandbox } from "../../src/gen/openshell/v1/openshell_pb.js";
import { KubernetesDriver } from "../../src/kubernetes/driver.js";
import { observeSandbox } from "../../src/kubernetes/status.js";
import type { PodResource, SandboxResource } from "../../src/kubernetes/objects.js";
import { startGateway } from "../../src/gateway/server.js";
import { openStore } from "../../src/gateway/store/database.js";
import { createPullSecret, pushTestImage, requireCluster, waitFor } from "../support/cluster.js";
import { ApiserverReplica, FaultProxy, kubeconfigFor } from "../support/apiserver-replica.js";
import { freePort } from "../support/ports.js";
import { capturingLogger } from "../support/logs.js";
import {
  listRecords,
  listSandboxObjects,
  mismatches,
  noPodNamespace,
  scope,
  timed,
} from "../support/reliability.js";

const API_TIMEOUT_MS = 3000;
const REACHABLE_GRACE_MS = 3000;
/** Test 2 only: a watch silent this long is restarted (default 150 s). */
const WATCHDOG_MS = 4000;

async function gatewayOn(
  t: TestContext,
  namespace: string,
  kubeconfig: string,
  extra: { image?: string; pullSecrets?: string[]; watchdogMs?: number } = {},
): Promise<{
  api: Client<typeof OpenShell>;
  readyz: () => Promise<{ status: number; body: Record<string, unknown> }>;
}> {
  const dataDir = mkdtempSync(join(tmpdir(), "osgw-apifault-"));
  const config = {
    ...defaultConfig(),
    bindAddress: "127.0.0.1",
    port: 0,
    healthPort: await freePort(),
    disableTls: true,
    allowUnauthenticated: true,
    dataDir,
    kubeconfig,
    namespace,
    sandboxResource: "agent-sandbox" as const,
    pullSecretPreflight: "off" as const,
    defaultImage: extra.image ?? "127.0.0.1:5001/openshell-test/never-pulled:v1",
    imagePullSecrets: extra.pullSecrets ?? [],
    // Long: reconcile must not paper over a missed watch event (it would re-create the deleted one).
    reconcileIntervalSeconds: 600,
  };
  const log = capturingLogger("warn", () => undefined);
  const driver = new KubernetesDriver({
    config,
    apiTimeoutMs: API_TIMEOUT_MS,
    reachableGraceMs: REACHABLE_GRACE_MS,
    ...(extra.watchdogMs ? { watchdogMs: extra.watchdogMs } : {}),
  });
  const gateway = await startGateway(config, {
    store: openStore({ dbUrl: "", dataDir }),
    driver,
    log,
  });
  t.after(async () => {
    await gateway.close(1000);
    rmSync(dataDir, { recursive: true, force: true });
  });
  const api = createClient(OpenShell, createGrpcTransport({ baseUrl: `http://127.0.0.1:${gateway.port}` }));
  return {
    api,
    readyz: async () => {
      const res = await fetch(`http://127.0.0.1:${config.healthPort}/readyz`, {
        signal: AbortSignal.timeout(10_000),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
  };
}

/** What the API server says each sandbox's phase and conditions are, mapped as the gateway maps them. */
async function truth(namespace: string): Promise<Map<string, string>> {
  const cluster = await requireCluster("full");
  const objects = (await listSandboxObjects(namespace)) as unknown as SandboxResource[];
  const pods = await cluster.core.listNamespacedPod({ namespace });
  const out = new Map<string, string>();
  for (const o of objects) {
    const pod = pods.items.find((p) => p.metadata?.name === o.metadata?.name) as PodResource | undefined;
    const seen = observeSandbox(o, pod);
    out.set(seen.objectName, describe(seen.phase, seen.conditions));
  }
  return out;
}

function describe(
  phase: string,
  conditions: readonly { type: string; status: string; reason: string }[],
): string {
  const conds = conditions
    .map((c) => `${c.type}=${c.status}/${c.reason}`)
    .sort()
    .join(",");
  return `${phase} [${conds}]`;
}

function gatewayView(s: Sandbox): string {
  return describe(SandboxPhase[s.status!.phase], s.status!.conditions);
}

test("kube-apiserver restarted while watches are open: no status transition is missed", async (t) => {
  const cluster = await requireCluster("full");
  const replica = await ApiserverReplica.start(t);
  const namespace = await noPodNamespace(t, "rel-apirestart");
  const image = await pushTestImage("openshell-test/e2e", "v1");
  await createPullSecret(namespace, "regcred");
  const { api } = await gatewayOn(t, namespace, replica.kubeconfig, { image, pullSecrets: ["regcred"] });
  const names = ["w1", "w2", "w3", "w4"];
  for (const name of names) await api.createSandbox({ name, workspaceScope: scope, spec: { template: {} } });
  // Settled before the fault: the controller has reported the quota refusing each pod.
  await waitFor(
    async () => {
      const sandboxes = (await api.listSandboxes({ workspaceScope: scope })).sandboxes;
      return sandboxes.length === 4 && sandboxes.every((s) => s.status!.conditions.length > 0);
    },
    { timeoutMs: 30_000, description: "the controller's first status on every sandbox" },
  );
  const before = new Map(
    (await api.listSandboxes({ workspaceScope: scope })).sandboxes.map((s) => [
      s.metadata!.name,
      gatewayView(s),
    ]),
  );

  // The replica goes down; changes start through the shared API server while it is down and go on while
  // it comes back: the quota is lifted (the controller's retry then starts the pods, which become READY),
  // and one sandbox is deleted.
  await replica.stop();
  const objects = cluster.kc.makeApiClient(CustomObjectsApi);
  const ref = { group: "agents.x-k8s.io", version: "v1beta1", namespace, plural: "sandboxes" };
  await cluster.core.deleteNamespacedResourceQuota({ name: "no-pods", namespace });
  await objects.deleteNamespacedCustomObject({ ...ref, name: "w4" });
  const restartedAt = Date.now();
  await replica.startProcess();
  await waitFor(
    async () => {
      const now = await truth(namespace);
      return names.slice(0, 3).every((n) => now.get(n)?.startsWith("READY"));
    },
    { timeoutMs: 90_000, description: "w1..w3 READY on the shared API server" },
  );

  // After recovery the gateway's view equals the API server's, for every sandbox.
  let last = "";
  await waitFor(
    async () => {
      const want = await truth(namespace);
      const got = new Map(
        (await api.listSandboxes({ workspaceScope: scope })).sandboxes.map((s) => [
          s.metadata!.name,
          gatewayView(s),
        ]),
      );
      // w4's object is gone: the gateway must no longer see one (its record waits for reconcile).
      want.set("w4", "PROVISIONING []");
      const one = await api.getSandbox({ name: "w1", workspaceScope: scope });
      last = `want ${JSON.stringify([...want])} got ${JSON.stringify([...got])}`;
      return (
        JSON.stringify([...want].sort()) === JSON.stringify([...got].sort()) &&
        gatewayView(one.sandbox!) === want.get("w1")
      );
    },
    // The reflector retries a failed watch with backoff capped at 30 s (±20 %), then relists or resumes;
    // a missed event would stay missed until the 150 s watchdog.
    { timeoutMs: 45_000, intervalMs: 250, description: "the gateway's view to match the API server" },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}: ${last}`);
  });
  t.diagnostic(
    `caught up ${Date.now() - restartedAt} ms after the replica's restart began; before: ${JSON.stringify([...before])}; after: ${last}`,
  );
  // The transitions were real: w1 went from the quota error to READY (and w4 vanished, checked above).
  assert.notEqual(before.get("w1"), (await truth(namespace)).get("w1"));
  assert.doesNotMatch(before.get("w1")!, /^READY/);
});

test("kube-apiserver unreachable: /readyz 503, UNAVAILABLE or DEADLINE_EXCEEDED in bounded time, nothing half done", async (t) => {
  const cluster = await requireCluster("full");
  const replica = await ApiserverReplica.start(t);
  const proxy = await FaultProxy.start(t, replica.port);
  const kubeconfig = join(replica.dir, "via-proxy.kubeconfig");
  kubeconfigFor(`https://127.0.0.1:${proxy.port}`, kubeconfig, cluster.kubeconfigPath);
  const namespace = await noPodNamespace(t, "rel-apidown");
  const { api, readyz } = await gatewayOn(t, namespace, kubeconfig, { watchdogMs: WATCHDOG_MS });
  await waitFor(async () => (await readyz()).status === 200, { timeoutMs: 30_000, description: "ready" });
  await api.createSandbox({ name: "kept", workspaceScope: scope, spec: { template: {} } });
  await api.createSandbox({ name: "to-delete", workspaceScope: scope, spec: { template: {} } });

  for (const mode of ["refuse", "blackhole"] as const) {
    proxy.setMode(mode);
    const cut = Date.now();
    const notReady = await timed(
      waitFor(
        async () => {
          const r = await readyz();
          return r.status === 503 ? r : undefined;
        },
        {
          // refuse: the watches fail at once; blackhole: they fall silent, and the watchdog notices.
          timeoutMs: WATCHDOG_MS + REACHABLE_GRACE_MS + API_TIMEOUT_MS + 10_000,
          intervalMs: 200,
          description: "/readyz 503",
        },
      ),
    );
    assert.ok(notReady.value, String(notReady.error));
    assert.match(String(notReady.value.body.kubernetes), /Kubernetes API server is not reachable/);
    const readyMs = Date.now() - cut;

    const create = await timed(
      api.createSandbox(
        { name: `during-${mode}`, workspaceScope: scope, spec: { template: {} } },
        { timeoutMs: 60_000 },
      ),
    );
    const del = await timed(
      api.deleteSandbox({ name: "to-delete", workspaceScope: scope }, { timeoutMs: 60_000 }),
    );
    // Reads are served from the gateway's caches and keep working.
    const get = await timed(api.getSandbox({ name: "kept", workspaceScope: scope }, { timeoutMs: 60_000 }));
    const message = (o: { error?: unknown }) => (o.error ? ConnectError.from(o.error).message : "none");
    t.diagnostic(
      `${mode}: /readyz 503 after ${readyMs} ms; create failed in ${Math.round(create.ms)} ms (${message(create)}), delete in ${Math.round(del.ms)} ms (${message(del)}); get answered in ${Math.round(get.ms)} ms`,
    );
    assert.ok(get.value, `get failed: ${String(get.error)}`);
    const allowed = mode === "refuse" ? [Code.Unavailable] : [Code.Unavailable, Code.DeadlineExceeded];
    for (const [what, outcome] of [
      ["create", create],
      ["delete", del],
    ] as const) {
      assert.ok(outcome.error, `${what} succeeded with the API ${mode}d`);
      const err = ConnectError.from(outcome.error);
      assert.ok(allowed.includes(err.code), `${what}: ${Code[err.code]} ${err.rawMessage}`);
      assert.match(err.rawMessage, /Kubernetes API|connect|timed out/i, err.rawMessage);
      assert.doesNotMatch(err.rawMessage, /\n/);
      // One API call's timeout (a delete may make two: the delete and nothing else is waited for).
      assert.ok(outcome.ms < 2 * API_TIMEOUT_MS + 2000, `${what} took ${Math.round(outcome.ms)} ms`);
    }

    proxy.setMode("forward");
    await waitFor(async () => (await readyz()).status === 200, {
      timeoutMs: 60_000,
      intervalMs: 200,
      description: `/readyz 200 after ${mode}`,
    });
  }

  // Nothing half done: the refused creates left no record and no object, the refused deletes left both.
  const records = await listRecords(api);
  assert.deepEqual(
    records
      .map((r) => `${r.metadata!.name}:${SandboxPhase[r.status!.phase]}`)
      .sort()
      .map((s) => s.split(":")[0]),
    ["kept", "to-delete"],
  );
  // A refused delete recorded the intent (DELETING) or nothing; either way the next delete finishes it.
  await api.deleteSandbox({ name: "to-delete", workspaceScope: scope });
  await waitFor(
    async () => {
      const r = await listRecords(api);
      const o = await listSandboxObjects(namespace);
      return r.length === 1 && mismatches(r, o).length === 0 && o.length === 1;
    },
    { timeoutMs: 20_000, description: "one record and its object after recovery" },
  );
});
