// Captures real Sandbox custom resources, pods and events from the test bed into
// test/kubernetes/fixtures/<tier>/, for the status mapping tests. Re-run after a test bed upgrade:
//
//   node --import tsx test/kubernetes/capture-fixtures.ts api    # states reachable without a node
//   node --import tsx test/kubernetes/capture-fixtures.ts full   # adds running, pull failures, exits
//
// Objects are stored as the API server returned them, minus managedFields (noise) — nothing else is
// edited, so a fixture is exactly what the driver's reflector would cache.

import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { defaultConfig, type GatewayConfig } from "../../src/config/settings.js";
import { KubeClient } from "../../src/kubernetes/client.js";
import type { EventResource, PodResource, SandboxResource } from "../../src/kubernetes/objects.js";
import { renderSandbox, type RenderTarget } from "../../src/render/sandbox.js";
import type { SandboxRequest } from "../../src/render/request.js";
import {
  createPullSecret,
  deleteNamespace,
  pushTestImage,
  requireCluster,
  uniqueName,
  waitFor,
  type Tier,
} from "../support/cluster.js";

const tier = (process.argv[2] ?? "api") as Tier;
const OUT = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", tier);

const c = await requireCluster(tier);
const client = new KubeClient(c.kc, undefined);
const ns = uniqueName("fixtures");
await c.core.createNamespace({ body: { metadata: { name: ns } } });
await waitFor(
  () => c.core.readNamespacedServiceAccount({ name: "default", namespace: ns }).then(() => true),
  {
    timeoutMs: 30_000,
  },
);
const config: GatewayConfig = { ...defaultConfig(), namespace: ns, imagePullSecrets: ["openshell-registry"] };
mkdirSync(OUT, { recursive: true });

function clean<T extends { metadata?: { managedFields?: unknown; namespace?: string } }>(obj: T): T {
  const copy = structuredClone(obj);
  delete copy.metadata?.managedFields;
  return copy;
}

function save(name: string, obj: unknown): void {
  writeFileSync(path.join(OUT, `${name}.json`), JSON.stringify(obj, null, 2) + "\n");
  console.log(`saved ${name}.json`);
}

const sandboxPath = (v: string, name = "") =>
  `/apis/agents.x-k8s.io/${v}/namespaces/${ns}/sandboxes${name ? `/${name}` : ""}`;

async function getSandbox(v: string, name: string): Promise<SandboxResource | undefined> {
  try {
    return await client.request<SandboxResource>({
      verb: "get",
      resource: "sandboxes",
      path: sandboxPath(v, name),
    });
  } catch {
    return undefined;
  }
}

async function getPod(name: string): Promise<PodResource | undefined> {
  try {
    return await client.request<PodResource>({
      verb: "get",
      resource: "pods",
      path: `/api/v1/namespaces/${ns}/pods/${name}`,
    });
  } catch {
    return undefined;
  }
}

async function create(target: RenderTarget, request: SandboxRequest, settings = config): Promise<void> {
  const { object } = renderSandbox({ request, settings, target });
  const p = target.resource === "pod" ? `/api/v1/namespaces/${ns}/pods` : sandboxPath(target.apiVersion);
  await client.request({ verb: "create", resource: "x", method: "POST", path: p, body: object });
}

async function patch(v: string, name: string, spec: object): Promise<void> {
  await client.request({
    verb: "patch",
    resource: "sandboxes",
    method: "PATCH",
    path: sandboxPath(v, name),
    contentType: "application/merge-patch+json",
    body: { spec },
  });
}

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  return waitFor(fn, { timeoutMs, intervalMs: 100, description: what });
}

const image =
  tier === "full"
    ? await pushTestImage("openshell-test/sandbox", "sandbox-test")
    : `${c.registry.host}/openshell-test/sandbox:sandbox-test`;
if (tier === "full") {
  await createPullSecret(ns, "openshell-registry");
  await createPullSecret(ns, "wrong-creds", {
    server: c.registry.host,
    user: c.registry.user,
    password: "wrong",
  });
}

try {
  for (const v of ["v1beta1", "v1alpha1"] as const) {
    const target: RenderTarget = { resource: "agent-sandbox", apiVersion: v };
    const name = `${v === "v1beta1" ? "beta" : "alpha"}`;
    await create(target, {
      id: `f1000000-0000-4000-8000-00000000000${v === "v1beta1" ? 1 : 2}`,
      name,
      image,
    });
    save(`${v}-created`, clean((await getSandbox(v, name))!));
    const pending = await until("Ready condition", async () => {
      const s = await getSandbox(v, name);
      return s?.status?.conditions?.some((x) => x.type === "Ready") ? s : undefined;
    });
    const pendingPod = await getPod(name);
    if (pendingPod?.status?.phase === "Pending") {
      save(`${v}-pending`, clean(pending));
      save(`${v}-pending.pod`, clean(pendingPod));
    }
    if (tier === "full") {
      const ready = await until(
        "Ready=True",
        async () => {
          const s = await getSandbox(v, name);
          return s?.status?.conditions?.some((x) => x.type === "Ready" && x.status === "True")
            ? s
            : undefined;
        },
        120_000,
      );
      save(`${v}-ready`, clean(ready));
      save(`${v}-ready.pod`, clean((await getPod(name))!));
    }
    await patch(v, name, v === "v1beta1" ? { operatingMode: "Suspended" } : { replicas: 0 });
    const stopping = await until(
      "pod terminating",
      async () => {
        const pod = await getPod(name);
        return pod?.metadata?.deletionTimestamp ? pod : undefined;
      },
      30_000,
    ).catch(() => undefined);
    if (stopping) {
      save(`${v}-stopping`, clean((await getSandbox(v, name))!));
      save(`${v}-stopping.pod`, clean(stopping));
    }
    await until("pod gone", async () => !(await getPod(name)), 90_000);
    const stopped = await until("Suspended=True", async () => {
      const s = await getSandbox(v, name);
      return s?.status?.conditions?.some((x) => x.type === "Suspended" && x.status === "True")
        ? s
        : undefined;
    });
    save(`${v}-stopped`, clean(stopped));
    await patch(v, name, v === "v1beta1" ? { operatingMode: "Running" } : { replicas: 1 });
    const starting = await until("resumed spec", async () => {
      const s = await getSandbox(v, name);
      return s && (s.spec?.operatingMode === "Running" || s.spec?.replicas === 1) ? s : undefined;
    });
    save(`${v}-starting`, clean(starting));
    await client.request({
      verb: "delete",
      resource: "sandboxes",
      method: "DELETE",
      path: sandboxPath(v, name),
      body: { propagationPolicy: "Foreground" },
    });
    const deleting = await getSandbox(v, name);
    if (deleting?.metadata?.deletionTimestamp) save(`${v}-deleting`, clean(deleting));
    await until("sandbox gone", async () => !(await getSandbox(v, name)), 90_000);
  }

  if (tier === "full") {
    // pull failures: wrong credentials, unknown tag
    await create(
      { resource: "agent-sandbox", apiVersion: "v1beta1" },
      { id: "f2000000-0000-4000-8000-000000000001", name: "bad-creds", image },
      { ...config, imagePullSecrets: ["wrong-creds"] },
    );
    await create(
      { resource: "agent-sandbox", apiVersion: "v1beta1" },
      {
        id: "f2000000-0000-4000-8000-000000000002",
        name: "bad-tag",
        image: `${c.registry.host}/openshell-test/sandbox:no-such-tag`,
      },
    );
    for (const name of ["bad-creds", "bad-tag"]) {
      for (const reason of ["ErrImagePull", "ImagePullBackOff"]) {
        const pod = await until(
          `${name} ${reason}`,
          async () => {
            const p = await getPod(name);
            return p?.status?.containerStatuses?.some((s) => s.state?.waiting?.reason === reason)
              ? p
              : undefined;
          },
          120_000,
        );
        save(`pull-${name}-${reason}.pod`, clean(pod));
        save(`pull-${name}-${reason}`, clean((await getSandbox("v1beta1", name))!));
      }
    }
    // plain pods that end: exit 0 and exit 3
    for (const [name, code] of [
      ["done-ok", 0],
      ["done-fail", 3],
    ] as const) {
      await create(
        { resource: "pod" },
        {
          id: `f3000000-0000-4000-8000-00000000000${code}`,
          name,
          image,
          command: ["sh", "-c", `exit ${code}`],
        },
      );
      const pod = await until(
        `${name} terminal`,
        async () => {
          const p = await getPod(name);
          return p?.status?.phase === "Succeeded" || p?.status?.phase === "Failed" ? p : undefined;
        },
        120_000,
      );
      save(`pod-${name}`, clean(pod));
    }
    const running = await create(
      { resource: "pod" },
      { id: "f3000000-0000-4000-8000-000000000009", name: "plain", image },
    );
    void running;
    save(
      "pod-running",
      clean(
        await until(
          "plain ready",
          async () => {
            const p = await getPod("plain");
            return p?.status?.conditions?.some((x) => x.type === "Ready" && x.status === "True")
              ? p
              : undefined;
          },
          120_000,
        ),
      ),
    );
  } else {
    await create({ resource: "pod" }, { id: "f3000000-0000-4000-8000-000000000008", name: "plain", image });
    save("pod-pending", clean((await getPod("plain"))!));
  }

  const events = await client.request<{ items: EventResource[] }>({
    verb: "list",
    resource: "events",
    path: `/api/v1/namespaces/${ns}/events`,
  });
  save("events", events.items.map(clean));
} finally {
  await deleteNamespace(ns);
}
