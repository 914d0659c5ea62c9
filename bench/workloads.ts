// The six measurements' workloads. Every latency is measured in the bench process with
// performance.now() around one call; wall-clock instants (for events crossing processes) use
// performance.timeOrigin + performance.now().

import { setTimeout as sleep } from "node:timers/promises";
import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { readFileSync } from "node:fs";
import type { Client } from "@connectrpc/connect";
import { Watch, type KubeConfig } from "@kubernetes/client-node";
import { defaultConfig } from "../src/config/settings.js";
import { SandboxPhase, type OpenShell } from "../src/gen/openshell/v1/openshell_pb.js";
import type { KubeClient } from "../src/kubernetes/client.js";
import { DEFAULT_WORKSPACE } from "../src/render/request.js";
import { renderSandbox } from "../src/render/sandbox.js";
import type { KeepAliveClient } from "./raw-client.js";
import { ratio, summarize } from "./stats.js";
import type { CreateArm, ReadsAt, ReadyRun, Results, Throughput } from "./results.js";

type Api = Client<typeof OpenShell>;

export const now = (): number => performance.timeOrigin + performance.now();
const SANDBOXES = "/apis/agents.x-k8s.io/v1beta1/namespaces";

/** Runs fn over items with at most `concurrency` in flight; returns per-item latencies and the wall time. */
export async function pool<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<void>,
): Promise<{ latencies: number[]; errors: string[]; seconds: number }> {
  const latencies: number[] = [];
  const errors: string[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      const t = performance.now();
      try {
        await fn(item);
        latencies.push(performance.now() - t);
      } catch (err) {
        errors.push(err instanceof Error ? err.message : String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return { latencies, errors, seconds: (performance.now() - started) / 1000 };
}

function throughput(ops: number, errors: number, seconds: number): Throughput {
  return {
    ops,
    errors,
    seconds: Math.round(seconds * 1000) / 1000,
    perSecond: Math.round((ops / seconds) * 10) / 10,
  };
}

export async function gatewayCreate(api: Api, name: string, image: string): Promise<void> {
  await api.createSandbox({ name, spec: { template: { image } } });
}

/** The Sandbox the gateway would create for this request, rendered by the gateway's own functions. */
export function renderLikeGateway(namespace: string, name: string, image: string): Record<string, unknown> {
  const settings = { ...defaultConfig(), namespace, imagePullSecrets: ["regcred"], defaultImage: image };
  const rendered = renderSandbox({
    request: { id: randomUUID(), name, workspace: DEFAULT_WORKSPACE, image },
    settings,
    target: { resource: "agent-sandbox", apiVersion: "v1beta1" },
  });
  return rendered.object as unknown as Record<string, unknown>;
}

/** A direct API-server create on kept-alive connections, with the same query and body as the driver's. */
export async function rawCreate(
  client: KeepAliveClient,
  namespace: string,
  name: string,
  image: string,
): Promise<void> {
  await client.post(
    `${SANDBOXES}/${namespace}/sandboxes?fieldManager=openshell-gateway`,
    renderLikeGateway(namespace, name, image),
  );
}

/** A direct API-server create through the gateway's own KubeClient (same client code, query and body). */
export async function rawGatewayClientCreate(
  kube: KubeClient,
  namespace: string,
  name: string,
  image: string,
): Promise<void> {
  await kube.request({
    verb: "create",
    resource: "sandboxes.agents.x-k8s.io",
    method: "POST",
    path: `${SANDBOXES}/${namespace}/sandboxes`,
    query: { fieldManager: "openshell-gateway" },
    body: renderLikeGateway(namespace, name, image),
    namespace,
    name,
  });
}

export interface CreateArmSpec {
  readonly key: "gateway" | "gatewayPreflightOff" | "raw" | "rawGatewayClient";
  readonly create: (name: string) => Promise<void>;
}

/**
 * Interleaved creates: `rounds` rounds; in each, every arm runs its next chunk of creates at full
 * concurrency, in an order rotated per round, so load from others on the machine hits all arms alike.
 */
export async function measureCreates(
  arms: readonly CreateArmSpec[],
  perArm: number,
  concurrency: number,
  rounds: number,
  warmup: number,
): Promise<Record<CreateArmSpec["key"], CreateArm> & { errors: string[] }> {
  const errors: string[] = [];
  for (const arm of arms) {
    const w = await pool(
      Array.from({ length: warmup }, (_, i) => `w-${arm.key.toLowerCase()}-${i}`),
      Math.min(4, concurrency),
      arm.create,
    );
    errors.push(...w.errors);
  }
  const acc = new Map(arms.map((a) => [a.key, { latencies: [] as number[], errors: 0, seconds: 0 }]));
  const chunk = Math.ceil(perArm / rounds);
  for (let r = 0; r < rounds; r++) {
    const order = arms.map((_, i) => arms[(i + r) % arms.length]!);
    for (const arm of order) {
      const from = r * chunk;
      const names = Array.from(
        { length: Math.max(0, Math.min(chunk, perArm - from)) },
        (_, i) => `b-${arm.key.toLowerCase()}-${from + i}`,
      );
      const res = await pool(names, concurrency, arm.create);
      const a = acc.get(arm.key)!;
      a.latencies.push(...res.latencies);
      a.errors += res.errors.length;
      a.seconds += res.seconds;
      errors.push(...res.errors);
    }
  }
  const out = {} as Record<CreateArmSpec["key"], CreateArm>;
  for (const [key, a] of acc)
    out[key] = {
      latencyMs: summarize(a.latencies),
      throughput: throughput(a.latencies.length, a.errors, a.seconds),
    };
  return { ...out, errors };
}

export function createRatios(c: Record<CreateArmSpec["key"], CreateArm>): Results["create"]["ratios"] {
  return {
    gatewayOverRawP50: ratio(c.gateway.latencyMs.p50, c.raw.latencyMs.p50),
    gatewayOverRawP99: ratio(c.gateway.latencyMs.p99, c.raw.latencyMs.p99),
    preflightOnOverOffP50: ratio(c.gateway.latencyMs.p50, c.gatewayPreflightOff.latencyMs.p50),
    preflightOnOverOffP99: ratio(c.gateway.latencyMs.p99, c.gatewayPreflightOff.latencyMs.p99),
    gatewayOverRawThroughput: ratio(c.gateway.throughput.perSecond, c.raw.throughput.perSecond),
    gatewayOverRawGatewayClientP50: ratio(c.gateway.latencyMs.p50, c.rawGatewayClient.latencyMs.p50),
    gatewayOverRawGatewayClientP99: ratio(c.gateway.latencyMs.p99, c.rawGatewayClient.latencyMs.p99),
  };
}

/** Spec, labels and annotations of an object with its name, namespace and id replaced by placeholders. */
export function normalizedObject(obj: Record<string, unknown>): string {
  const meta = obj.metadata as { name: string; namespace: string; labels: Record<string, string> };
  const id = meta.labels["openshell.ai/sandbox-id"] ?? "";
  const text = JSON.stringify({
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    labels: meta.labels,
    annotations: (obj.metadata as { annotations?: unknown }).annotations,
    spec: obj.spec,
  });
  return text.split(id).join("ID").split(meta.name).join("NAME").split(meta.namespace).join("NS");
}

export async function getSandboxObject(kube: KubeClient, namespace: string, name: string) {
  return kube.request<Record<string, unknown>>({
    verb: "get",
    resource: "sandboxes.agents.x-k8s.io",
    path: `${SANDBOXES}/${namespace}/sandboxes/${name}`,
  });
}

/** Number of Sandbox objects in the namespace (a paged list, so 10,000 stay cheap for the API server). */
export async function countSandboxes(kube: KubeClient, namespace: string): Promise<number> {
  // A busy API server answers a continued list with 504 "Too large resource version" while its watch
  // cache catches up; the count is retried from the start then.
  for (let attempt = 1; ; attempt++) {
    try {
      return await countOnce(kube, namespace);
    } catch (err) {
      if (attempt >= 10) throw err;
      await sleep(1000);
    }
  }
}

async function countOnce(kube: KubeClient, namespace: string): Promise<number> {
  let count = 0;
  let cont: string | undefined;
  do {
    const page = await kube.request<{ items: unknown[]; metadata?: { continue?: string } }>({
      verb: "list",
      resource: "sandboxes.agents.x-k8s.io",
      path: `${SANDBOXES}/${namespace}/sandboxes`,
      query: { limit: 1000, continue: cont },
    });
    count += page.items.length;
    cont = page.metadata?.continue || undefined;
  } while (cont);
  return count;
}

/** Grows the gateway's sandboxes to `target` (via CreateSandbox), then measures Get and List. */
export async function measureReads(
  api: Api,
  kube: KubeClient,
  namespace: string,
  image: string,
  known: string[],
  target: number,
  samples: { get: number; list: number; listAll: number },
): Promise<ReadsAt> {
  const names = Array.from({ length: Math.max(0, target - known.length) }, (_, i) => `f-${known.length + i}`);
  const fill = await pool(names, 32, (name) => gatewayCreate(api, name, image));
  if (fill.errors.length)
    throw new Error(`filling to ${target}: ${fill.errors.length} creates failed: ${fill.errors[0]}`);
  known.push(...names);
  const objects = await countSandboxes(kube, namespace);
  if (objects !== known.length) throw new Error(`expected ${known.length} Sandbox objects, found ${objects}`);
  await sleep(2000); // let the gateway's watch catch up with the last creates

  const pick = () => known[Math.floor(Math.random() * known.length)]!;
  const get = await pool(Array.from({ length: samples.get }, pick), 1, async (name) => {
    const res = await api.getSandbox({ name });
    if (res.sandbox?.metadata?.name !== name) throw new Error(`GetSandbox ${name} returned another sandbox`);
  });
  const listPage = await pool(
    Array.from({ length: samples.list }, (_, i) => i),
    1,
    async () => {
      const res = await api.listSandboxes({ pageSize: 500 });
      if (res.sandboxes.length !== Math.min(500, known.length))
        throw new Error(`a page had ${res.sandboxes.length} sandboxes`);
    },
  );
  const listAll = await pool(
    Array.from({ length: samples.listAll }, (_, i) => i),
    1,
    async () => {
      let total = 0;
      let pageToken = "";
      do {
        const res = await api.listSandboxes({ pageSize: 500, pageToken });
        total += res.sandboxes.length;
        pageToken = res.nextPageToken;
      } while (pageToken);
      if (total !== known.length)
        throw new Error(`listing every page gave ${total} sandboxes, not ${known.length}`);
    },
  );
  const errors = [...get.errors, ...listPage.errors, ...listAll.errors];
  if (errors.length) throw new Error(`reads at ${target}: ${errors.length} failed: ${errors[0]}`);
  return {
    sandboxes: known.length,
    fill: throughput(names.length, fill.errors.length, fill.seconds),
    get: summarize(get.latencies),
    listPage: summarize(listPage.latencies),
    listAll: summarize(listAll.latencies),
  };
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

/**
 * `clients` WatchSandbox streams on one sandbox; `changes` status patches (a BenchProbe condition
 * whose message is a sequence marker) on its Sandbox object; for each, the time from sending the
 * patch to the marker's arrival at each client, and at a direct Kubernetes watch for comparison.
 */
export async function measureWatch(
  gatewayClients: () => Api,
  kc: KubeConfig,
  kube: KubeClient,
  namespace: string,
  sandbox: string,
  clients: number,
  changes: number,
): Promise<Omit<Results["watch"], "sandboxesKnown">> {
  const seen = Array.from({ length: clients }, () => new Map<string, number>());
  const rawSeen = new Map<string, number>();
  const firstMessage = Array.from({ length: clients }, () => false);
  const abort = new AbortController();
  setMaxListeners(clients + 10, abort.signal); // one listener per stream is expected, not a leak
  const streams: Promise<void>[] = [];
  let api: Api | undefined;
  for (let i = 0; i < clients; i++) {
    // ten streams per HTTP/2 connection, as a fleet of separate clients would not share one
    if (i % 10 === 0) api = gatewayClients();
    const stream = api!.watchSandbox({ sandbox, followStatus: true }, { signal: abort.signal });
    streams.push(
      (async () => {
        for await (const ev of stream) {
          const t = now();
          firstMessage[i] = true;
          if (ev.payload.case !== "sandbox") continue;
          for (const c of ev.payload.value.status?.conditions ?? [])
            if (c.type === "BenchProbe" && !seen[i]!.has(c.message)) seen[i]!.set(c.message, t);
        }
      })().catch((err: unknown) => {
        if (!abort.signal.aborted) throw err;
      }),
    );
  }
  const rawWatch = await new Watch(kc).watch(
    `${SANDBOXES}/${namespace}/sandboxes`,
    { fieldSelector: `metadata.name=${sandbox}` },
    (_type, obj: { status?: { conditions?: Condition[] } }) => {
      const t = now();
      for (const c of obj.status?.conditions ?? [])
        if (c.type === "BenchProbe" && c.message && !rawSeen.has(c.message)) rawSeen.set(c.message, t);
    },
    () => undefined,
  );
  const deadline = Date.now() + 60_000;
  while (firstMessage.some((f) => !f)) {
    if (Date.now() > deadline) throw new Error("WatchSandbox streams did not all start within 60 s");
    await sleep(50);
  }
  const delivery: number[] = [];
  const allClients: number[] = [];
  const rawMs: number[] = [];
  const patchMs: number[] = [];
  const overFloor: number[] = [];
  let missed = 0;
  const path = `${SANDBOXES}/${namespace}/sandboxes/${sandbox}`;
  for (let k = 0; k < changes; k++) {
    const current = await kube.request<{ status?: { conditions?: Condition[] } }>({
      verb: "get",
      resource: "sandboxes.agents.x-k8s.io",
      path,
    });
    const marker = `bench-${k}-${randomUUID().slice(0, 8)}`;
    const conditions = (current.status?.conditions ?? []).filter((c) => c.type !== "BenchProbe");
    conditions.push({
      type: "BenchProbe",
      status: "True",
      reason: "BenchProbe",
      message: marker,
      lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    });
    const sent = now();
    await kube.request({
      verb: "patch",
      resource: "sandboxes.agents.x-k8s.io/status",
      method: "PATCH",
      path: `${path}/status`,
      contentType: "application/merge-patch+json",
      body: { status: { conditions } },
    });
    patchMs.push(now() - sent);
    const until = Date.now() + 10_000;
    while ((seen.some((m) => !m.has(marker)) || !rawSeen.has(marker)) && Date.now() < until) await sleep(5);
    const arrivals = seen.map((m) => m.get(marker));
    missed += arrivals.filter((a) => a === undefined).length;
    const got = arrivals.filter((a): a is number => a !== undefined).map((a) => a - sent);
    delivery.push(...got);
    if (got.length === clients) allClients.push(Math.max(...got));
    const raw = rawSeen.get(marker);
    if (raw !== undefined) rawMs.push(raw - sent);
    if (raw !== undefined && got.length === clients) overFloor.push(Math.max(...got) - (raw - sent));
    await sleep(100);
  }
  abort.abort();
  rawWatch.abort();
  await Promise.allSettled(streams);
  return {
    clients,
    changes,
    deliveryMs: summarize(delivery),
    allClientsMs: summarize(allClients),
    rawWatchMs: summarize(rawMs),
    lastClientOverRawMs: summarize(overFloor),
    patchMs: summarize(patchMs),
    missed,
  };
}

/** Wall-clock epoch ms of boot, from /proc/uptime (10 ms resolution): the tightest of several reads. */
export function bootTimeMs(): number {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 50; i++) {
    const uptime = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
    best = Math.min(best, now() - uptime * 1000);
  }
  return best;
}

function conditionText(conditions: readonly Condition[] | undefined): string {
  return (conditions ?? []).map((c) => `${c.type}=${c.status}`).join(",");
}

interface PodLike {
  metadata?: { name?: string };
  status?: {
    conditions?: Condition[];
    containerStatuses?: { name: string; state?: { running?: { startedAt?: string } } }[];
  };
}

/**
 * Sandboxes with a private image on the full tier: each runs `cat /proc/uptime` first, so its log
 * holds the container process's start to 10 ms; the bench's own watches on pods and Sandboxes time
 * the kubelet's and the controller's status writes; the gateway's READY is timed at its client.
 */
export async function measureTimeToReady(
  api: Api,
  kc: KubeConfig,
  kube: KubeClient,
  namespace: string,
  image: string,
  runs: number,
): Promise<ReadyRun[]> {
  const podRunning = new Map<string, number>();
  const sandboxReady = new Map<string, number>();
  /** What the bench's watches saw, per sandbox, for the report's explanation of where the time goes. */
  const traces = new Map<string, { atMs: number; what: string }[]>();
  const trace = (name: string, atMs: number, what: string) => {
    if (!traces.has(name)) traces.set(name, []);
    traces.get(name)!.push({ atMs, what });
  };
  const pods = await new Watch(kc).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    {},
    (_type, pod: PodLike) => {
      const t = now();
      const name = pod.metadata?.name ?? "";
      const running = pod.status?.containerStatuses?.find((c) => c.name === "agent")?.state?.running;
      if (running && !podRunning.has(name)) podRunning.set(name, t);
      trace(name, t, `pod ${running ? "running" : "not running"} ${conditionText(pod.status?.conditions)}`);
    },
    () => undefined,
  );
  const sandboxes = await new Watch(kc).watch(
    `${SANDBOXES}/${namespace}/sandboxes`,
    {},
    (_type, sb: PodLike) => {
      const t = now();
      const name = sb.metadata?.name ?? "";
      const ready = sb.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
      if (ready && !sandboxReady.has(name)) sandboxReady.set(name, t);
      trace(name, t, `sandbox ${conditionText(sb.status?.conditions)}`);
    },
    () => undefined,
  );
  const boot = bootTimeMs();
  const out: ReadyRun[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const name = `ready-${i}`;
      const createSentMs = now();
      await api.createSandbox({
        name,
        // The first line of the log is the process's start; the trap lets the pod end at once on delete.
        spec: {
          template: { image },
          command: ["sh", "-c", "cat /proc/uptime; trap 'exit 0' TERM; sleep 3600 & wait"],
        },
      });
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), 180_000);
      let gatewayReadyMs: number | undefined;
      try {
        for await (const ev of api.watchSandbox(
          { sandbox: name, followStatus: true },
          { signal: abort.signal },
        )) {
          if (ev.payload.case === "sandbox")
            trace(name, now(), `gateway ${SandboxPhase[ev.payload.value.status?.phase ?? 0]}`);
          if (ev.payload.case === "sandbox" && ev.payload.value.status?.phase === SandboxPhase.READY) {
            gatewayReadyMs = now();
            break;
          }
          if (ev.payload.case === "sandbox" && ev.payload.value.status?.phase === SandboxPhase.ERROR)
            throw new Error(
              `sandbox ${name} went to ERROR: ${JSON.stringify(ev.payload.value.status.conditions)}`,
            );
        }
      } finally {
        clearTimeout(timer);
        abort.abort();
      }
      if (gatewayReadyMs === undefined) throw new Error(`sandbox ${name} not READY within 180 s`);
      const until = Date.now() + 10_000;
      while ((!podRunning.has(name) || !sandboxReady.has(name)) && Date.now() < until) await sleep(20);
      const pod = await kube.request<PodLike>({
        verb: "get",
        resource: "pods",
        path: `/api/v1/namespaces/${namespace}/pods/${name}`,
      });
      const startedAt = pod.status?.containerStatuses?.find((c) => c.name === "agent")?.state?.running
        ?.startedAt;
      let containerStartMs: number | undefined;
      try {
        const log = await kube.requestText({
          verb: "get",
          resource: "pods/log",
          path: `/api/v1/namespaces/${namespace}/pods/${name}/log`,
          query: { container: "agent", limitBytes: 1000 },
        });
        const uptime = Number(log.trim().split(/\s+/)[0]);
        if (Number.isFinite(uptime) && uptime > 0) containerStartMs = boot + uptime * 1000;
      } catch {
        // no log: only the 1 s signals remain for this run
      }
      out.push({
        name,
        createSentMs,
        containerStartMs,
        kubeletStartedAtMs: startedAt ? Date.parse(startedAt) : undefined,
        podRunningSeenMs: podRunning.get(name),
        sandboxReadySeenMs: sandboxReady.get(name),
        gatewayReadyMs,
        trace: (traces.get(name) ?? []).map((e) => `+${Math.round(e.atMs - createSentMs)} ms ${e.what}`),
      });
      await api.deleteSandbox({ name });
    }
  } finally {
    pods.abort();
    sandboxes.abort();
  }
  return out;
}

export function readySummaries(runs: readonly ReadyRun[]): Omit<Results["timeToReady"], "runs"> {
  const diffs = (f: (r: ReadyRun) => number | undefined) =>
    summarize(runs.map(f).filter((v): v is number => v !== undefined && Number.isFinite(v)));
  return {
    readyAfterContainerStartMs: diffs((r) =>
      r.containerStartMs ? r.gatewayReadyMs - r.containerStartMs : undefined,
    ),
    readyAfterKubeletStartedAtMs: diffs((r) =>
      r.kubeletStartedAtMs ? r.gatewayReadyMs - r.kubeletStartedAtMs : undefined,
    ),
    kubeletReportMs: diffs((r) =>
      r.podRunningSeenMs && r.containerStartMs ? r.podRunningSeenMs - r.containerStartMs : undefined,
    ),
    controllerMs: diffs((r) =>
      r.sandboxReadySeenMs && r.podRunningSeenMs ? r.sandboxReadySeenMs - r.podRunningSeenMs : undefined,
    ),
    gatewayMs: diffs((r) => (r.sandboxReadySeenMs ? r.gatewayReadyMs - r.sandboxReadySeenMs : undefined)),
  };
}
