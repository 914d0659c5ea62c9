// The Kubernetes driver against the real test bed (testbed/cluster.sh). Each test has its own
// namespace. Tests that need pods to run (kubelet, registry pulls, exec) ask for tier "full"; the rest
// run on tier "api" (etcd, apiserver, controller-manager, agent-sandbox controller). A test that cannot
// get its tier fails with the reason; nothing is skipped.

import assert from "node:assert/strict";
import net from "node:net";
import { test, type TestContext } from "node:test";

import { KubeConfig } from "@kubernetes/client-node";

import { defaultConfig } from "../../src/config/settings.js";
import { KubernetesDriver } from "../../src/kubernetes/driver.js";
import { renderSandbox, type RenderTarget } from "../../src/render/sandbox.js";
import type { SandboxRequest } from "../../src/render/request.js";
import { KubernetesError, type DriverEvent, type ExecChunk } from "../../src/kubernetes/types.js";
import {
  createPullSecret,
  pushTestImage,
  requireCluster,
  uniqueName,
  withNamespace,
} from "../support/cluster.js";
import { decode, restartCount, SANDBOX_ID, startDriver, type DriverHarness } from "./harness.js";

const BETA: RenderTarget = { resource: "agent-sandbox", apiVersion: "v1beta1" };
const ALPHA: RenderTarget = { resource: "agent-sandbox", apiVersion: "v1alpha1" };
const POD: RenderTarget = { resource: "pod" };

function render(h: DriverHarness, target: RenderTarget, request: Partial<SandboxRequest> & { name: string }) {
  return renderSandbox({
    request: { id: request.id ?? `${SANDBOX_ID.slice(0, -6)}${uniqueName("x").slice(-6)}`, ...request },
    settings: h.config,
    target,
  }).object;
}

const isDeleted =
  (name: string) =>
  (e: DriverEvent): e is Extract<DriverEvent, { type: "deleted" }> =>
    e.type === "deleted" && e.objectName === name;

async function collect(iterable: AsyncIterable<ExecChunk>): Promise<ExecChunk[]> {
  const out: ExecChunk[] = [];
  for await (const c of iterable) out.push(c);
  return out;
}

function configFor(target: RenderTarget) {
  return target.resource === "pod"
    ? { sandboxResource: "pod" as const }
    : { sandboxResource: "agent-sandbox" as const, sandboxApiVersion: target.apiVersion };
}

// ---------------------------------------------------------------- tier api

test("discovery on the test bed: auto prefers v1beta1; v1alpha1 is served too", async (t) => {
  const c = await requireCluster("api");
  const ns = await withNamespace(t, "drv-disc");
  const auto = await startDriver(t, c, ns);
  assert.deepEqual(await auto.driver.target(), BETA);
  const alpha = await startDriver(t, c, ns, { sandboxApiVersion: "v1alpha1" });
  assert.deepEqual(await alpha.driver.target(), ALPHA);
  assert.equal(auto.driver.apiReachable(), true);
});

for (const target of [BETA, ALPHA]) {
  test(`${target.resource === "agent-sandbox" ? target.apiVersion : "pod"}: create, observe, stop, start, delete (tier api)`, async (t) => {
    const c = await requireCluster("api");
    const ns = await withNamespace(t, "drv-life");
    const h = await startDriver(t, c, ns, configFor(target));
    const name = "life";
    const object = render(h, target, {
      name,
      image: `${c.registry.host}/openshell-test/sandbox:sandbox-test`,
    });

    const t0 = performance.now();
    await h.driver.create(object);
    const seen = await h.waitForPhase(name, ["UNKNOWN", "PROVISIONING", "READY"], 10_000);
    t.diagnostic(`create → first observed (${seen.phase}): ${Math.round(performance.now() - t0)} ms`);
    // the controller makes a pod (it stays Pending without a node on tier api)
    const withPod = await h.waitForEvent(
      (e): e is Extract<DriverEvent, { type: "changed" }> =>
        e.type === "changed" && e.sandbox.objectName === name && e.sandbox.podName === name,
      15_000,
      "the Sandbox's pod",
    );
    t.diagnostic(
      `create → pod observed: ${Math.round(performance.now() - t0)} ms (${withPod.sandbox.phase})`,
    );
    assert.equal(withPod.sandbox.sandboxId, object.metadata?.labels?.["openshell.ai/sandbox-id"]);
    assert.ok(["PROVISIONING", "READY"].includes(withPod.sandbox.phase));

    await assert.rejects(
      h.driver.create(object),
      (e: unknown) => e instanceof KubernetesError && e.kind === "AlreadyExists",
    );

    const t1 = performance.now();
    await h.driver.stopSandbox(name);
    const stopped = await h.waitForPhase(name, ["STOPPED"], 30_000);
    t.diagnostic(`stop → STOPPED: ${Math.round(performance.now() - t1)} ms`);
    assert.equal(stopped.podName, undefined);
    assert.ok(
      h.events.some(
        (e) => e.type === "changed" && e.sandbox.objectName === name && e.sandbox.phase === "STOPPING",
      ),
    );

    const t2 = performance.now();
    await h.driver.startSandbox(name, object);
    const started = await h.waitForEvent(
      (e): e is Extract<DriverEvent, { type: "changed" }> =>
        e.type === "changed" &&
        e.sandbox.objectName === name &&
        e.sandbox.podName === name &&
        e.sandbox.phase !== "STOPPING",
      30_000,
      "a new pod after start",
    );
    t.diagnostic(`start → pod again: ${Math.round(performance.now() - t2)} ms (${started.sandbox.phase})`);

    const t3 = performance.now();
    assert.equal(await h.driver.delete(name), true);
    await h.waitForEvent(isDeleted(name), 30_000, "deleted event");
    t.diagnostic(`delete → deleted event (foreground): ${Math.round(performance.now() - t3)} ms`);
    assert.equal(h.driver.observed(name), undefined);
    assert.equal(await h.driver.delete(name), false);

    // the name is free again at once (foreground deletion waited for the pod)
    await h.driver.create(object);
    await h.waitForEvent(
      (e): e is Extract<DriverEvent, { type: "changed" }> =>
        e.type === "changed" &&
        e.sandbox.objectName === name &&
        e.sandbox.podName === name &&
        !e.sandbox.deleting,
      15_000,
      "re-created sandbox with its pod",
    );
  });
}

test("pod mode: create, stop deletes the pod, start re-creates it, delete (tier api)", async (t) => {
  const c = await requireCluster("api");
  const ns = await withNamespace(t, "drv-pod");
  const h = await startDriver(t, c, ns, configFor(POD));
  assert.deepEqual(await h.driver.target(), POD);
  const object = render(h, POD, { name: "plain" });
  await h.driver.create(object);
  const seen = await h.waitForPhase("plain", ["PROVISIONING"], 10_000);
  assert.equal(seen.podName, "plain");
  await h.driver.stopSandbox("plain");
  await h.waitForEvent(isDeleted("plain"), 30_000, "pod deleted by stop");
  await h.driver.startSandbox("plain", object);
  await h.waitForEvent(
    (e): e is Extract<DriverEvent, { type: "changed" }> =>
      e.type === "changed" &&
      e.sandbox.objectName === "plain" &&
      !e.sandbox.deleting &&
      h.events.indexOf(e) > 0,
    10_000,
    "pod re-created",
  );
  assert.equal(await h.driver.delete("plain"), true);
  await h.waitForEvent(
    (e): e is Extract<DriverEvent, { type: "deleted" }> =>
      e.type === "deleted" && e.objectName === "plain" && h.events.filter(isDeleted("plain")).length >= 2,
    30_000,
    "second deleted event",
  );
});

test("API errors are mapped: Invalid with the server's message, NotFound on exec of a missing sandbox", async (t) => {
  const c = await requireCluster("api");
  const ns = await withNamespace(t, "drv-err");
  const h = await startDriver(t, c, ns, configFor(BETA));
  const object = render(h, BETA, { name: "bad" });
  object.metadata!.name = "Bad_Name";
  await assert.rejects(
    h.driver.create(object),
    (e: unknown) => e instanceof KubernetesError && e.kind === "Invalid" && /metadata\.name/.test(e.message),
  );
  await assert.rejects(
    collect(h.driver.exec("missing", { command: ["true"] })),
    (e: unknown) => e instanceof KubernetesError && e.kind === "NotFound",
  );
});

test("the service account cache answers imagePullSecrets without listing per request", async (t) => {
  const c = await requireCluster("api");
  const ns = await withNamespace(t, "drv-sa");
  // only the sandbox service account is watched, and only when its pull secrets are merged
  const off = await startDriver(t, c, ns);
  assert.deepEqual(await off.driver.serviceAccountPullSecrets("default"), []);
  const h = await startDriver(t, c, ns, {
    mergeServiceAccountPullSecrets: true,
    serviceAccountName: "default",
  });
  assert.deepEqual(await h.driver.serviceAccountPullSecrets("default"), []);
  await h.driver.client.request({
    verb: "patch",
    resource: "serviceaccounts",
    method: "PATCH",
    path: `/api/v1/namespaces/${ns}/serviceaccounts/default`,
    contentType: "application/merge-patch+json",
    body: { imagePullSecrets: [{ name: "reg-a" }, { name: "reg-b" }] },
  });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if ((await h.driver.serviceAccountPullSecrets("default")).length === 2) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(await h.driver.serviceAccountPullSecrets("default"), ["reg-a", "reg-b"]);
  assert.deepEqual(await h.driver.serviceAccountPullSecrets("nope"), []);
});

test("a cut watch connection is re-established from its resourceVersion and nothing is missed", async (t) => {
  const c = await requireCluster("api");
  const ns = await withNamespace(t, "drv-cut");
  const h = await startDriver(t, c, ns, configFor(BETA));
  const before = h.watch.watchesOf("/sandboxes");
  // The reflector is synced once its list returned; its watch request may still be connecting.
  let cut = 0;
  for (let i = 0; i < 100 && cut === 0; i++) {
    cut = h.watch.cut("/sandboxes");
    if (cut === 0) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(cut, 1);
  // created while the watch is down (the reflector backs off ~1 s before rewatching)
  const names = ["cut-a", "cut-b", "cut-c"];
  for (const name of names) await h.driver.create(render(h, BETA, { name }));
  for (const name of names) await h.waitForPhase(name, ["UNKNOWN", "PROVISIONING"], 15_000);
  assert.ok(h.watch.watchesOf("/sandboxes") > before, "a new watch was opened");
  const resumed = h.watch.calls.filter((x) => x.path.endsWith("/sandboxes")).at(-1);
  assert.notEqual(resumed?.resourceVersion, "", "the new watch resumed from a resourceVersion (no relist)");
  assert.ok((await restartCount(h.registry, "sandboxes.v1beta1", "error")) >= 1);
  assert.deepEqual(
    h.driver
      .observedAll()
      .map((o) => o.objectName)
      .sort(),
    names,
  );
});

test("410 Gone from the real API server (watch from resourceVersion 1) makes the reflector relist", async (t) => {
  const c = await requireCluster("api");
  const ns = await withNamespace(t, "drv-410");
  const h = await startDriver(t, c, ns, configFor(BETA));
  const path = `/apis/agents.x-k8s.io/v1beta1/namespaces/${ns}/sandboxes`;
  // something exists before, something is created during the relist window
  await h.driver.create(render(h, BETA, { name: "gone-a" }));
  await h.waitForPhase("gone-a", ["UNKNOWN", "PROVISIONING"], 10_000);
  h.watch.forceResourceVersion.set(path, "1");
  h.watch.cut("/sandboxes");
  await h.driver.create(render(h, BETA, { name: "gone-b" }));
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && (await restartCount(h.registry, "sandboxes.v1beta1", "expired")) < 1)
    await new Promise((r) => setTimeout(r, 100));
  assert.ok(
    (await restartCount(h.registry, "sandboxes.v1beta1", "expired")) >= 1,
    "a 410 was seen and counted",
  );
  await h.waitForPhase("gone-b", ["UNKNOWN", "PROVISIONING"], 15_000);
  assert.ok(h.driver.observed("gone-a"));
  assert.equal(h.driver.apiReachable(), true);
});

test("the watchdog restarts quiet watches on the real API server and nothing is missed", async (t) => {
  const c = await requireCluster("api");
  const ns = await withNamespace(t, "drv-dog");
  // far below the API server's bookmark interval, so every watch here is cut by the watchdog
  const h = await startDriver(t, c, ns, configFor(BETA), { watchdogMs: 700 });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (await restartCount(h.registry, "sandboxes.v1beta1", "watchdog")) < 2)
    await new Promise((r) => setTimeout(r, 100));
  assert.ok((await restartCount(h.registry, "sandboxes.v1beta1", "watchdog")) >= 2);
  await h.driver.create(render(h, BETA, { name: "dog" }));
  await h.waitForPhase("dog", ["UNKNOWN", "PROVISIONING"], 10_000);
  assert.equal(h.driver.apiReachable(), true);
});

test("start() against an API server that does not answer fails with the reason", async () => {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: "https://127.0.0.1:1", skipTLSVerify: true }],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  const driver = new KubernetesDriver({
    config: { ...defaultConfig(), sandboxResource: "pod" },
    kubeConfig: kc,
    startTimeoutMs: 1500,
  });
  await assert.rejects(
    driver.start(),
    (e: unknown) =>
      e instanceof KubernetesError &&
      e.kind === "Timeout" &&
      /first list .*pods: the Kubernetes API is unreachable \(ECONNREFUSED\)/.test(e.message),
  );
  assert.equal(driver.apiReachable(), false);
  await assert.rejects(
    new KubernetesDriver({ config: { ...defaultConfig() }, kubeConfig: kc }).target(),
    (e: unknown) => e instanceof KubernetesError && e.kind === "Unavailable",
  );
});

/** A TCP proxy to the API server whose connections a test can drop (and refuse) at will. */
async function outageProxy(t: TestContext, upstream: URL) {
  const sockets = new Set<net.Socket>();
  let down = false;
  const server = net.createServer((client) => {
    if (down) return client.destroy();
    const up = net.connect(Number(upstream.port || 443), upstream.hostname);
    for (const s of [client, up]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined);
    }
    client.pipe(up).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(async () => {
    down = true;
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return {
    // the API server's certificate lists 127.0.0.1, so TLS verification still holds through the proxy
    url: `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      down = false;
    },
  };
}

test("an API outage is reported by apiReachable() and recovered from without missing changes", async (t) => {
  const c = await requireCluster("api");
  const ns = await withNamespace(t, "drv-outage");
  const cluster = c.kc.getCurrentCluster()!;
  const proxy = await outageProxy(t, new URL(cluster.server));
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "p", server: proxy.url, caData: cluster.caData, caFile: cluster.caFile }],
    users: [c.kc.getCurrentUser()!],
    contexts: [{ name: "p", cluster: "p", user: c.kc.getCurrentUser()!.name }],
    currentContext: "p",
  });
  const admin = await startDriver(t, c, ns, configFor(BETA));
  const h = await startDriver(t, { ...c, kc }, ns, configFor(BETA), { reachableGraceMs: 500 });
  await h.driver.create(render(h, BETA, { name: "before" }));
  await h.waitForPhase("before", ["UNKNOWN", "PROVISIONING"], 10_000);
  assert.equal(h.driver.apiReachable(), true);

  proxy.cut();
  const outageStart = performance.now();
  while (h.driver.apiReachable() && performance.now() - outageStart < 10_000)
    await new Promise((r) => setTimeout(r, 50));
  assert.equal(h.driver.apiReachable(), false, "the outage is visible to /readyz");
  t.diagnostic(`outage → apiReachable false: ${Math.round(performance.now() - outageStart)} ms`);
  await assert.rejects(
    h.driver.create(render(h, BETA, { name: "refused" })),
    (e: unknown) => e instanceof KubernetesError && e.kind === "Unavailable",
  );
  // changes made while the driver cannot see the API
  await admin.driver.create(render(admin, BETA, { name: "during" }));
  await admin.driver.delete("before");

  proxy.restore();
  const restored = performance.now();
  await h.waitForPhase("during", ["UNKNOWN", "PROVISIONING"], 30_000);
  await h.waitForEvent(isDeleted("before"), 30_000, "the delete made during the outage");
  t.diagnostic(`restore → changes seen: ${Math.round(performance.now() - restored)} ms`);
  const deadline = Date.now() + 30_000;
  while (!h.driver.apiReachable() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(h.driver.apiReachable(), true);
});

// ---------------------------------------------------------------- tier full

async function fullSetup(t: TestContext, prefix: string, target: RenderTarget) {
  const c = await requireCluster("full");
  const ns = await withNamespace(t, prefix);
  const image = await pushTestImage("openshell-test/sandbox", "sandbox-test");
  await createPullSecret(ns, "openshell-registry");
  const h = await startDriver(t, c, ns, { ...configFor(target), imagePullSecrets: ["openshell-registry"] });
  return { c, ns, image, h };
}

for (const target of [BETA, ALPHA, POD]) {
  const label = target.resource === "agent-sandbox" ? target.apiVersion : "pod";
  test(`${label}: READY, exec, stop/start (tier full)`, async (t) => {
    const { image, h } = await fullSetup(t, `drv-full-${label}`, target);
    const name = "full";
    const object = render(h, target, { name, image });
    const t0 = performance.now();
    await h.driver.create(object);
    const ready = await h.waitForPhase(name, ["READY"], 120_000);
    t.diagnostic(`create → READY: ${Math.round(performance.now() - t0)} ms`);
    assert.equal(ready.podName, name);
    assert.ok(ready.startedAtMs);
    const pulls = h.driver
      .events(ready.sandboxId)
      .filter((e) => e.reason === "Pulled" || e.reason === "Pulling");
    assert.ok(pulls.length > 0, "pull events are mapped to the sandbox");
    assert.ok(
      pulls.every((e) => e.metadata.image === image),
      JSON.stringify(pulls),
    );

    const t1 = performance.now();
    const ok = await collect(h.driver.exec(name, { command: ["echo", "ok"] }));
    t.diagnostic(`exec echo ok: ${Math.round(performance.now() - t1)} ms`);
    assert.equal(decode(ok, "stdout"), "ok\n");
    assert.deepEqual(ok.at(-1), { type: "exit", code: 0 });
    const three = await collect(
      h.driver.exec(name, { command: ["sh", "-c", "echo out; echo err >&2; exit 3"] }),
    );
    assert.equal(decode(three, "stdout"), "out\n");
    assert.equal(decode(three, "stderr"), "err\n");
    assert.deepEqual(three.at(-1), { type: "exit", code: 3 });
    const stdin = await collect(
      h.driver.exec(name, { command: ["cat"], stdin: new TextEncoder().encode("piped\n") }),
    );
    assert.equal(decode(stdin, "stdout"), "piped\n");
    const env = await collect(
      h.driver.exec(name, {
        command: ["sh", "-c", 'echo "$GREETING"; pwd'],
        environment: { GREETING: "hi" },
        workdir: "/tmp",
      }),
    );
    assert.equal(decode(env, "stdout"), "hi\n/tmp\n");
    await assert.rejects(
      collect(h.driver.exec(name, { command: ["sleep", "30"], timeoutMs: 500 })),
      (e: unknown) => e instanceof KubernetesError && e.kind === "Timeout",
    );
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 300);
    await assert.rejects(collect(h.driver.exec(name, { command: ["sleep", "30"], signal: abort.signal })));

    const t2 = performance.now();
    await h.driver.stopSandbox(name);
    if (target.resource === "pod") await h.waitForEvent(isDeleted(name), 60_000, "pod deleted");
    else await h.waitForPhase(name, ["STOPPED"], 60_000);
    t.diagnostic(`stop → STOPPED: ${Math.round(performance.now() - t2)} ms`);
    const t3 = performance.now();
    await h.driver.startSandbox(name, object);
    const again = await h.waitForEvent(
      (e): e is Extract<DriverEvent, { type: "changed" }> =>
        e.type === "changed" &&
        e.sandbox.objectName === name &&
        e.sandbox.phase === "READY" &&
        e.sandbox.startedAtMs !== ready.startedAtMs,
      120_000,
      "READY again after start",
    );
    t.diagnostic(`start → READY: ${Math.round(performance.now() - t3)} ms`);
    assert.equal(again.sandbox.podName, name);
    const t4 = performance.now();
    await h.driver.delete(name);
    await h.waitForEvent(
      (e): e is Extract<DriverEvent, { type: "deleted" }> =>
        e.type === "deleted" && e.objectName === name && h.events.indexOf(e) > h.events.indexOf(again),
      60_000,
      "deleted",
    );
    t.diagnostic(`delete → deleted: ${Math.round(performance.now() - t4)} ms`);
  });
}

test("image pull failures stay PROVISIONING with the kubelet's reason, for bad credentials and unknown tags (tier full)", async (t) => {
  const { c, ns, image, h } = await fullSetup(t, "drv-pull", BETA);
  await createPullSecret(ns, "wrong-creds", {
    server: c.registry.host,
    user: c.registry.user,
    password: "wrong",
  });
  const badCreds = renderSandbox({
    request: { id: "b0000000-0000-4000-8000-000000000001", name: "bad-creds", image, imagePullSecrets: [] },
    settings: { ...h.config, imagePullSecrets: ["wrong-creds"] },
    target: BETA,
  }).object;
  const badTag = render(h, BETA, {
    id: "b0000000-0000-4000-8000-000000000002",
    name: "bad-tag",
    image: `${c.registry.host}/openshell-test/sandbox:no-such-tag`,
  });
  await h.driver.create(badCreds);
  await h.driver.create(badTag);
  for (const name of ["bad-creds", "bad-tag"]) {
    const stuck = await h.waitForEvent(
      (e): e is Extract<DriverEvent, { type: "changed" }> =>
        e.type === "changed" &&
        e.sandbox.objectName === name &&
        e.sandbox.waiting.some((w) => w.reason === "ErrImagePull" || w.reason === "ImagePullBackOff"),
      90_000,
      `${name} waiting on the pull`,
    );
    assert.equal(stuck.sandbox.phase, "PROVISIONING");
    const waiting = stuck.sandbox.waiting.find((w) => w.container === "agent");
    assert.ok(waiting?.message, JSON.stringify(stuck.sandbox.waiting));
    t.diagnostic(`${name}: ${waiting.reason}: ${waiting.message}`);
    const failed = h.driver.events(stuck.sandbox.sandboxId).find((e) => e.reason === "Failed");
    assert.ok(failed, `a Failed event for ${name}`);
    assert.equal(failed.metadata.involved_kind, "Pod");
    assert.ok(failed.metadata.image);
  }
});

test("the documented RBAC is enough: the driver runs as a service account with only that Role (tier full)", async (t) => {
  const { c, ns, image } = await fullSetup(t, "drv-rbac", BETA);
  const admin = await startDriver(t, c, ns); // only for its client
  const api = admin.driver.client;
  const rules = [
    {
      apiGroups: ["agents.x-k8s.io"],
      resources: ["sandboxes"],
      verbs: ["list", "watch", "create", "delete", "patch"],
    },
    { apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"] },
    { apiGroups: [""], resources: ["pods/exec"], verbs: ["create", "get"] },
    { apiGroups: [""], resources: ["events"], verbs: ["list", "watch"] },
    // the sandbox service account only (its pull secrets are merged); the driver watches it by name
    { apiGroups: [""], resources: ["serviceaccounts"], resourceNames: ["default"], verbs: ["list", "watch"] },
  ];
  const post = (path: string, body: object) =>
    api.request<{ status?: { token?: string } }>({
      verb: "create",
      resource: "x",
      method: "POST",
      path,
      body,
    });
  await post(`/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name: "gateway" } });
  await post(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
    metadata: { name: "gateway" },
    rules,
  });
  await post(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
    metadata: { name: "gateway" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "gateway" },
    subjects: [{ kind: "ServiceAccount", name: "gateway", namespace: ns }],
  });
  const token = (
    await post(`/api/v1/namespaces/${ns}/serviceaccounts/gateway/token`, {
      spec: { expirationSeconds: 3600 },
    })
  ).status?.token;
  assert.ok(token);
  const cluster = c.kc.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "tb", server: cluster.server, caData: cluster.caData, caFile: cluster.caFile }],
    users: [{ name: "gateway", token }],
    contexts: [{ name: "gw", cluster: "tb", user: "gateway" }],
    currentContext: "gw",
  });
  const h = await startDriver(t, { ...c, kc }, ns, {
    imagePullSecrets: ["openshell-registry"],
    mergeServiceAccountPullSecrets: true,
    serviceAccountName: "default",
  });
  assert.deepEqual(await h.driver.target(), BETA);
  assert.deepEqual(await h.driver.serviceAccountPullSecrets("default"), []);
  const object = render(h, BETA, { name: "rbac", image });
  await h.driver.create(object);
  await h.waitForPhase("rbac", ["READY"], 120_000);
  const out = await collect(h.driver.exec("rbac", { command: ["echo", "ok"], stdin: new Uint8Array() }));
  assert.equal(decode(out, "stdout"), "ok\n");
  await h.driver.stopSandbox("rbac");
  await h.waitForPhase("rbac", ["STOPPED"], 60_000);
  await h.driver.startSandbox("rbac", object);
  await h.waitForPhase("rbac", ["READY"], 120_000);
  assert.equal(await h.driver.delete("rbac"), true);
  await h.waitForEvent(isDeleted("rbac"), 60_000, "deleted");
  // and nothing more: e.g. reading secrets is refused, with the verb and resource named
  await assert.rejects(
    h.driver.client.request({
      verb: "list",
      resource: "secrets",
      path: `/api/v1/namespaces/${ns}/secrets`,
      namespace: ns,
    }),
    (e: unknown) =>
      e instanceof KubernetesError &&
      e.kind === "Forbidden" &&
      /may not list secrets in namespace/.test(e.message),
  );
});
