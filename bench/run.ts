// `make bench` (and, with --smoke, the smoke test in `make test`): the gateway's cost over the raw
// Kubernetes API on the test bed, six measurements in one run. Writes results.json, report.md and
// latency.svg into the output directory (default build/bench).
//
//   tsx bench/run.ts [--smoke] [--out DIR]
//   tsx bench/run.ts --render DIR/results.json   (re-renders report.md and latency.svg beside it)
//   env: BENCH_CREATES, BENCH_CONCURRENCY, BENCH_ROUNDS, BENCH_WARMUP, BENCH_READS_SMALL, BENCH_READS_LARGE,
//        BENCH_GET_SAMPLES, BENCH_LIST_SAMPLES, BENCH_WATCHERS, BENCH_WATCH_CHANGES, BENCH_READY_RUNS,
//        BENCH_DELETE_TIMEOUT_S, BENCH_CPU_PROF=1 (V8 CPU profiles of the gateways into DIR/profiles),
//        BENCH_HEAP_SNAPSHOT=1 (a heap snapshot of the loaded gateway into DIR/heap)

import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { KubeClient, loadKubeConfig } from "../src/kubernetes/client.js";
import { pushTestImage, requireCluster, REPO_ROOT } from "../test/support/cluster.js";
import { GatewayProcess } from "./gateway-process.js";
import { describeMachine } from "./machine.js";
import { createBenchNamespace, deleteNamespaces, deleteStaleNamespaces } from "./namespaces.js";
import { KeepAliveClient } from "./raw-client.js";
import { renderChartFor, renderReport } from "./report.js";
import type { ReadsAt, Results } from "./results.js";
import {
  createRatios,
  gatewayCreate,
  getSandboxObject,
  measureCreates,
  measureReads,
  measureTimeToReady,
  measureWatch,
  normalizedObject,
  rawCreate,
  rawGatewayClientCreate,
  readySummaries,
} from "./workloads.js";

const FULL = {
  creates: 500,
  concurrency: 32,
  rounds: 10,
  warmup: 32,
  readsSmall: 1000,
  readsLarge: 10000,
  getSamples: 1000,
  listSamples: 200,
  listAllSamples: 5,
  watchers: 100,
  watchChanges: 50,
  readyRuns: 5,
  deleteTimeoutS: 900,
};
const SMOKE: typeof FULL = {
  creates: 20,
  concurrency: 4,
  rounds: 2,
  warmup: 4,
  readsSmall: 50,
  readsLarge: 100,
  getSamples: 50,
  listSamples: 10,
  listAllSamples: 2,
  watchers: 10,
  watchChanges: 5,
  readyRuns: 1,
  deleteTimeoutS: 20,
};

function params(smoke: boolean): typeof FULL {
  const base = smoke ? SMOKE : FULL;
  const out = { ...base };
  for (const key of Object.keys(base) as (keyof typeof FULL)[]) {
    const envName = `BENCH_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
    const raw = process.env[envName];
    if (raw === undefined || raw === "") continue;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1)
      throw new Error(
        `invalid ${envName}: ${JSON.stringify(raw)} must be a positive integer; unset it or fix it`,
      );
    out[key] = value;
  }
  if (out.readsLarge < out.readsSmall)
    throw new Error(
      `invalid BENCH_READS_LARGE: ${out.readsLarge} is below BENCH_READS_SMALL (${out.readsSmall})`,
    );
  return out;
}

const log = (msg: string) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      smoke: { type: "boolean", default: false },
      out: { type: "string" },
      render: { type: "string" },
    },
    strict: true,
  });
  if (values.render) {
    const file = resolve(values.render);
    const results = JSON.parse(readFileSync(file, "utf8")) as Results;
    writeFileSync(join(dirname(file), "latency.svg"), renderChartFor(results));
    writeFileSync(join(dirname(file), "report.md"), renderReport(results));
    log(`rendered report.md and latency.svg beside ${file}`);
    return;
  }
  const smoke = values.smoke ?? false;
  const p = params(smoke);
  const outDir = resolve(values.out ?? join(REPO_ROOT, "build", "bench"));
  mkdirSync(outDir, { recursive: true });
  const cpuProfDir = process.env.BENCH_CPU_PROF === "1" ? join(outDir, "profiles") : undefined;
  const heapSnapshotDir = process.env.BENCH_HEAP_SNAPSHOT === "1" ? join(outDir, "heap") : undefined;
  if (heapSnapshotDir) mkdirSync(heapSnapshotDir, { recursive: true });
  const startedAt = new Date().toISOString();
  const notes: string[] = [];

  const cluster = await requireCluster("full");
  const kc = loadKubeConfig(cluster.kubeconfigPath);
  const kube = new KubeClient(kc, undefined, { timeoutMs: 60_000 });
  const stale = await deleteStaleNamespaces(cluster);
  if (stale.length) log(`deleting namespaces of interrupted runs: ${stale.join(", ")}`);
  const machine = await describeMachine(kube);
  const image = await pushTestImage("openshell-bench/sandbox", "v1");
  log(`image ${image}; mode ${smoke ? "smoke" : "full"}; output ${outDir}`);

  const namespaces: string[] = [];
  const gateways: GatewayProcess[] = [];
  let leftBehind: string[] = [];
  try {
    const nsGw = await createBenchNamespace(cluster, "gw", { noPods: true });
    namespaces.push(nsGw);
    const nsOff = await createBenchNamespace(cluster, "off", { noPods: true });
    namespaces.push(nsOff);
    const nsRaw = await createBenchNamespace(cluster, "raw", { noPods: true });
    namespaces.push(nsRaw);
    const nsReady = await createBenchNamespace(cluster, "ready", { noPods: false });
    namespaces.push(nsReady);
    const common = { kubeconfig: cluster.kubeconfigPath, image, cpuProfDir };
    // 6 first: time to ready on the full tier, while the agent-sandbox controller has no backlog of
    // thousands of quota-refused Sandboxes to work through
    log(`time to ready: ${p.readyRuns} sandbox(es) with a private image`);
    const gwReady = await GatewayProcess.start({
      ...common,
      label: "gateway-ready",
      namespace: nsReady,
      preflight: "enforce",
      logPath: join(outDir, "gateway-ready.log"),
    });
    gateways.push(gwReady);
    const readyRuns = await measureTimeToReady(gwReady.client(), kc, kube, nsReady, image, p.readyRuns);
    const ready = readySummaries(readyRuns);
    log(`  READY after container start p50 ${ready.readyAfterContainerStartMs.p50} ms`);
    await gwReady.stop();
    gateways.splice(gateways.indexOf(gwReady), 1);

    const gw = await GatewayProcess.start({
      ...common,
      heapSnapshotDir,
      label: "gateway",
      namespace: nsGw,
      preflight: "enforce",
      logPath: join(outDir, "gateway.log"),
    });
    gateways.push(gw);
    const gwOff = await GatewayProcess.start({
      ...common,
      label: "gateway-preflight-off",
      namespace: nsOff,
      preflight: "off",
      logPath: join(outDir, "gateway-preflight-off.log"),
    });
    gateways.push(gwOff);
    await new Promise((r) => setTimeout(r, 3000));
    const idle = gw.memory();
    log(`gateway idle RSS ${idle.rssMiB} MiB`);

    // 1 + 2: creates, three arms interleaved
    log(`creates: ${p.creates} per arm at concurrency ${p.concurrency} in ${p.rounds} rounds`);
    const api = gw.client();
    const apiOff = gwOff.client();
    const keepAlive = await KeepAliveClient.create(kc, p.concurrency);
    const cpuBefore = { gw: gw.cpuMs(), off: gwOff.cpuMs() };
    const creates = await measureCreates(
      [
        { key: "gateway", create: (name) => gatewayCreate(api, name, image) },
        { key: "gatewayPreflightOff", create: (name) => gatewayCreate(apiOff, name, image) },
        { key: "raw", create: (name) => rawCreate(keepAlive, nsRaw, name, image) },
        { key: "rawGatewayClient", create: (name) => rawGatewayClientCreate(kube, nsRaw, name, image) },
      ],
      p.creates,
      p.concurrency,
      p.rounds,
      p.warmup,
    );
    keepAlive.close();
    const served = p.creates + p.warmup;
    const cpuPerCreate = {
      gw: Math.round(((gw.cpuMs() - cpuBefore.gw) / served) * 100) / 100,
      off: Math.round(((gwOff.cpuMs() - cpuBefore.off) / served) * 100) / 100,
    };
    if (creates.errors.length)
      notes.push(`create errors: ${creates.errors.length}, first: ${creates.errors[0]}`);
    const gwObject = normalizedObject(await getSandboxObject(kube, nsGw, "b-gateway-0"));
    const rawObject = normalizedObject(await getSandboxObject(kube, nsRaw, "b-raw-0"));
    const identicalObjects = gwObject === rawObject;
    if (!identicalObjects) notes.push(`objects differ: gateway ${gwObject} raw ${rawObject}`);
    log(
      `creates p50 gateway ${creates.gateway.latencyMs.p50} / off ${creates.gatewayPreflightOff.latencyMs.p50} / raw ${creates.raw.latencyMs.p50} ms`,
    );
    await gwOff.stop(); // its work is done; it should not share the CPU with the rest
    gateways.splice(gateways.indexOf(gwOff), 1);

    // 3: reads at two sizes; 5: memory at the larger one
    const known = [
      ...Array.from({ length: p.warmup }, (_, i) => `w-gateway-${i}`),
      ...Array.from({ length: p.creates }, (_, i) => `b-gateway-${i}`),
    ];
    const samples = { get: p.getSamples, list: p.listSamples, listAll: p.listAllSamples };
    const reads: ReadsAt[] = [];
    for (const size of [p.readsSmall, p.readsLarge]) {
      if (reads.some((r) => r.sandboxes === size)) continue;
      log(`reads at ${size} sandboxes (filling from ${known.length})`);
      reads.push(await measureReads(api, kube, nsGw, image, known, size, samples));
      log(`  get p99 ${reads.at(-1)!.get.p99} ms, list page p99 ${reads.at(-1)!.listPage.p99} ms`);
    }
    const loaded = gw.memory();
    log(`gateway RSS with ${known.length} sandboxes: ${loaded.rssMiB} MiB (peak ${loaded.peakRssMiB})`);
    if (heapSnapshotDir) {
      const file = await gw.heapSnapshot(heapSnapshotDir);
      const after = gw.memory();
      notes.push(
        `heap snapshot ${file} (${Math.round(statSync(file).size / 2 ** 20)} MiB); RSS after its full GC ${after.rssMiB} MiB`,
      );
      log(notes.at(-1)!);
    }

    // 4: watch fan-out with the larger number of sandboxes known
    log(`watch: ${p.watchers} clients, ${p.watchChanges} status changes`);
    const watch = await measureWatch(
      () => gw.client(),
      kc,
      kube,
      nsGw,
      "b-gateway-0",
      p.watchers,
      p.watchChanges,
    );
    log(`  delivery p99 ${watch.deliveryMs.p99} ms (raw watch p99 ${watch.rawWatchMs.p99} ms)`);
    await gw.stop();
    gateways.splice(gateways.indexOf(gw), 1);

    for (const g of gateways.splice(0)) await g.stop();
    log(`deleting ${namespaces.length} namespaces (waiting up to ${p.deleteTimeoutS} s)`);
    leftBehind = await deleteNamespaces(cluster, namespaces, p.deleteTimeoutS * 1000);

    const results: Results = {
      version: 1,
      mode: smoke ? "smoke" : "full",
      startedAt,
      finishedAt: new Date().toISOString(),
      machine,
      loadAverageAtEnd: loadavg().map((v) => Math.round(v * 100) / 100),
      params: p,
      notes,
      create: {
        concurrency: p.concurrency,
        rounds: p.rounds,
        identicalObjects,
        gateway: creates.gateway,
        gatewayPreflightOff: creates.gatewayPreflightOff,
        raw: creates.raw,
        rawGatewayClient: creates.rawGatewayClient,
        gatewayCpuMsPerCreate: cpuPerCreate.gw,
        gatewayPreflightOffCpuMsPerCreate: cpuPerCreate.off,
        ratios: createRatios(creates),
      },
      reads,
      watch: { ...watch, sandboxesKnown: known.length },
      memory: {
        idleRssMiB: idle.rssMiB,
        loadedRssMiB: loaded.rssMiB,
        loadedPeakRssMiB: loaded.peakRssMiB,
        sandboxesKnown: known.length,
      },
      timeToReady: { runs: readyRuns, ...ready },
      cleanup: { namespaces, leftBehind },
    };
    writeFileSync(join(outDir, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(join(outDir, "latency.svg"), renderChartFor(results));
    writeFileSync(join(outDir, "report.md"), renderReport(results));
    log(`report: ${join(outDir, "report.md")} (results.json, latency.svg beside it)`);
  } finally {
    for (const g of gateways) await g.stop().catch(() => undefined);
    // On failure the namespaces go without waiting; the next run removes whatever is left.
    for (const name of namespaces)
      if (!leftBehind.includes(name))
        await cluster.core.deleteNamespace({ name, propagationPolicy: "Background" }).catch(() => undefined);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
