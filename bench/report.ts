// results.json → report.md (machine, parameters, every measurement against its target) and latency.svg.

import type { Results } from "./results.js";
import type { Summary } from "./stats.js";
import { renderChart, type ChartPanel } from "./svg.js";

export interface TargetCheck {
  readonly what: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean;
}

const ms = (v: number) =>
  Number.isFinite(v) ? `${v >= 100 ? Math.round(v) : Math.round(v * 10) / 10} ms` : "n/a";

export function targetChecks(r: Results): TargetCheck[] {
  const large = r.reads[r.reads.length - 1]!;
  const c = r.create.ratios;
  const ready = r.timeToReady.readyAfterContainerStartMs;
  return [
    {
      what: "1. Create, gateway / raw at p50",
      target: "≤ 1.10",
      measured: `${c.gatewayOverRawP50}`,
      met: c.gatewayOverRawP50 <= 1.1,
    },
    {
      what: "1. Create, gateway / raw at p99",
      target: "≤ 1.10",
      measured: `${c.gatewayOverRawP99}`,
      met: c.gatewayOverRawP99 <= 1.1,
    },
    {
      what: "2. Create, preflight on / off at p50",
      target: "≤ 1.05",
      measured: `${c.preflightOnOverOffP50}`,
      met: c.preflightOnOverOffP50 <= 1.05,
    },
    {
      what: "2. Create, preflight on / off at p99",
      target: "≤ 1.05",
      measured: `${c.preflightOnOverOffP99}`,
      met: c.preflightOnOverOffP99 <= 1.05,
    },
    {
      what: `3. ListSandboxes (page of 500) with ${large.sandboxes} sandboxes, p99`,
      target: "≤ 25 ms",
      measured: ms(large.listPage.p99),
      met: large.listPage.p99 <= 25,
    },
    {
      what: `4. Watch fan-out to ${r.watch.clients} clients, p99 of every delivery`,
      target: "≤ 100 ms",
      measured: ms(r.watch.deliveryMs.p99),
      met: r.watch.deliveryMs.p99 <= 100 && r.watch.missed === 0,
    },
    {
      what: `5. Gateway RSS with ${r.memory.sandboxesKnown} sandboxes (peak)`,
      target: "≤ 200 MB",
      measured: `${r.memory.loadedRssMiB} MiB (peak ${r.memory.loadedPeakRssMiB} MiB)`,
      met: r.memory.loadedPeakRssMiB * 1.048576 <= 200,
    },
    {
      what: `6. READY at the client − container start, worst of ${ready.n}`,
      target: "≤ 200 ms",
      measured: `${ms(ready.max)} (p50 ${ms(ready.p50)})`,
      met: ready.max <= 200,
    },
  ];
}

function row(label: string, s: Summary): string {
  return `| ${label} | ${s.n} | ${ms(s.p50)} | ${ms(s.p95)} | ${ms(s.p99)} | ${ms(s.max)} |`;
}

export function renderReport(r: Results): string {
  const m = r.machine;
  const c = r.create;
  const lines: string[] = [
    `# Gateway benchmark (${r.mode})`,
    "",
    `Run ${r.startedAt} → ${r.finishedAt}. Chart: [latency.svg](latency.svg); data: results.json.`,
    "",
    "## Machine",
    "",
    `- CPU: ${m.cpuModel}, ${m.cores} cores; memory ${m.memoryGiB} GiB; load average (1/5/15 min) at start ${m.loadAverageAtStart.join(" / ")}`,
    `- OS: ${m.os}, kernel ${m.kernel}; Node ${m.node}`,
    `- Cluster: Kubernetes ${m.cluster.kubernetes} (kubelet ${m.cluster.kubelet}, ${m.cluster.containerRuntime}), etcd ${m.cluster.etcd}, agent-sandbox ${m.cluster.agentSandbox}`,
    `- Load average at the end: ${r.loadAverageAtEnd?.join(" / ") ?? "not recorded"}. The machine is shared: other test runs (another session's reliability tests) may run at the same time, so absolute numbers are noisy. This is why every comparison (gateway vs raw API server, preflight on vs off) runs its arms interleaved in one run, in rounds whose order rotates, and is reported as a ratio.`,
    "",
    "## Parameters",
    "",
    Object.entries(r.params)
      .map(([k, v]) => `${k}=${v}`)
      .join(", "),
    "",
    "## Targets",
    "",
    "| measurement | target | measured | met |",
    "| --- | --- | --- | --- |",
    ...targetChecks(r).map(
      (t) => `| ${t.what} | ${t.target} | ${t.measured} | ${t.met ? "yes" : "**no**"} |`,
    ),
    "",
    "## 1–2. Creates",
    "",
    `${c.gateway.throughput.ops} creates per arm at concurrency ${c.concurrency}, interleaved in ${c.rounds} rounds; objects identical apart from name, namespace and id: ${c.identicalObjects ? "yes" : "**no**"}.`,
    "",
    "| arm | n | p50 | p95 | p99 | max | creates/s | errors |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ...(
      [
        ["gateway (preflight enforce)", c.gateway],
        ["gateway (preflight off)", c.gatewayPreflightOff],
        ["raw API server, kept-alive connections", c.raw],
        ["raw API server, the gateway's KubeClient", c.rawGatewayClient],
      ] as const
    ).map(([label, a]) => `${row(label, a.latencyMs)} ${a.throughput.perSecond} | ${a.throughput.errors} |`),
    "",
    `Ratios: gateway/raw p50 ${c.ratios.gatewayOverRawP50}, p99 ${c.ratios.gatewayOverRawP99}, throughput ${c.ratios.gatewayOverRawThroughput}; gateway/raw-through-the-gateway's-KubeClient p50 ${c.ratios.gatewayOverRawGatewayClientP50}, p99 ${c.ratios.gatewayOverRawGatewayClientP99}; preflight on/off p50 ${c.ratios.preflightOnOverOffP50}, p99 ${c.ratios.preflightOnOverOffP99}.`,
    "",
    `Gateway CPU per create (whole create phase, incl. the watch events its creates cause): preflight enforce ${c.gatewayCpuMsPerCreate} ms, preflight off ${c.gatewayPreflightOffCpuMsPerCreate} ms.`,
    "",
    "## 3. Reads",
    "",
    "| call | n | p50 | p95 | p99 | max |",
    "| --- | --- | --- | --- | --- | --- |",
    ...r.reads.flatMap((x) => [
      row(`GetSandbox, ${x.sandboxes} sandboxes`, x.get),
      row(`ListSandboxes page of 500, ${x.sandboxes} sandboxes`, x.listPage),
      row(`ListSandboxes every page, ${x.sandboxes} sandboxes`, x.listAll),
    ]),
    "",
    ...r.reads.map((x) => `Filling to ${x.sandboxes}: ${x.fill.ops} creates at ${x.fill.perSecond}/s.`),
    "",
    "## 4. Watch fan-out",
    "",
    `${r.watch.clients} WatchSandbox clients on one sandbox, ${r.watch.changes} status changes, ${r.watch.sandboxesKnown} sandboxes known; missed deliveries: ${r.watch.missed}. Times from sending the status PATCH.`,
    "",
    "| | n | p50 | p95 | p99 | max |",
    "| --- | --- | --- | --- | --- | --- |",
    row("every delivery (change × client)", r.watch.deliveryMs),
    row("last client of each change", r.watch.allClientsMs),
    row("direct Kubernetes watch (floor)", r.watch.rawWatchMs),
    row("last client minus direct watch, per change", r.watch.lastClientOverRawMs),
    row("the status PATCH round trip", r.watch.patchMs),
    "",
    "## 5. Memory",
    "",
    `Gateway process RSS idle ${r.memory.idleRssMiB} MiB; with ${r.memory.sandboxesKnown} sandboxes ${r.memory.loadedRssMiB} MiB (peak ${r.memory.loadedPeakRssMiB} MiB).`,
    "",
    "## 6. Time to ready",
    "",
    "| interval | n | p50 | p95 | p99 | max |",
    "| --- | --- | --- | --- | --- | --- |",
    row("READY at client − container process start", r.timeToReady.readyAfterContainerStartMs),
    row("READY at client − kubelet startedAt (1 s resolution)", r.timeToReady.readyAfterKubeletStartedAtMs),
    row("container start → kubelet's running status seen", r.timeToReady.kubeletReportMs),
    row("→ controller's Sandbox Ready=True seen", r.timeToReady.controllerMs),
    row("→ gateway READY at client", r.timeToReady.gatewayMs),
    "",
    ...r.timeToReady.runs.flatMap((run) => [
      `Run ${run.name}, as the bench's watches saw it (times from sending CreateSandbox):`,
      "",
      ...run.trace.map((t) => `    ${t}`),
      "",
    ]),
    "## Notes",
    "",
    ...(r.notes.length ? r.notes.map((n) => `- ${n}`) : ["- none"]),
    `- namespaces: ${r.cleanup.namespaces.join(", ")}; left terminating: ${r.cleanup.leftBehind.join(", ") || "none"}`,
    "",
  ];
  return lines.join("\n");
}

export function renderChartFor(r: Results): string {
  const c = r.create;
  const panels: ChartPanel[] = [
    {
      title: `Create (${c.gateway.throughput.ops} per arm, concurrency ${c.concurrency})`,
      series: [
        { label: "gateway, preflight enforce", summary: c.gateway.latencyMs },
        { label: "gateway, preflight off", summary: c.gatewayPreflightOff.latencyMs },
        { label: "raw, kept-alive connections", summary: c.raw.latencyMs },
        { label: "raw, gateway's KubeClient", summary: c.rawGatewayClient.latencyMs },
      ],
    },
    {
      title: "Reads",
      target: { ms: 25, label: "list target 25 ms" },
      series: r.reads.flatMap((x) => [
        { label: `GetSandbox @ ${x.sandboxes}`, summary: x.get },
        { label: `ListSandboxes page @ ${x.sandboxes}`, summary: x.listPage },
      ]),
    },
    {
      title: `Watch fan-out (${r.watch.clients} clients)`,
      target: { ms: 100, label: "target 100 ms" },
      series: [
        { label: "gateway, every delivery", summary: r.watch.deliveryMs },
        { label: "gateway, last client", summary: r.watch.allClientsMs },
        { label: "direct Kubernetes watch", summary: r.watch.rawWatchMs },
      ],
    },
    {
      title: "Time to ready (after container start)",
      target: { ms: 200, label: "target 200 ms" },
      series: [
        { label: "READY at client", summary: r.timeToReady.readyAfterContainerStartMs },
        { label: "kubelet's running status", summary: r.timeToReady.kubeletReportMs },
      ],
    },
  ];
  return renderChart(`OpenShell gateway benchmark (${r.mode}, ${r.startedAt.slice(0, 10)})`, panels);
}
