// The machine and cluster a run measured, for the report: numbers mean little without them.

import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import type { KubeClient } from "../src/kubernetes/client.js";

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly os: string;
  readonly node: string;
  readonly loadAverageAtStart: readonly number[];
  readonly cluster: {
    readonly kubernetes: string;
    readonly kubelet: string;
    readonly containerRuntime: string;
    readonly etcd: string;
    readonly agentSandbox: string;
  };
}

function osRelease(): string {
  try {
    const text = readFileSync("/etc/os-release", "utf8");
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text)?.[1] ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** The version in the test bed's binary cache path of a running process (…/bin/etcd-v3.6.17-<hash>/etcd). */
function runningBinaryVersion(binary: string): string {
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const exe = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] ?? "";
      if (!exe.endsWith(`/${binary}`)) continue;
      const dir = exe.split("/").at(-2) ?? "";
      return /-(v\d+\.\d+\.\d+)/.exec(dir)?.[1] ?? dir;
    } catch {
      // the process ended while we looked
    }
  }
  return "not running";
}

export async function describeMachine(client: KubeClient): Promise<MachineInfo> {
  const version = await client.request<{ gitVersion?: string }>({
    verb: "get",
    resource: "version",
    path: "/version",
  });
  const nodes = await client.request<{
    items: { status?: { nodeInfo?: { kubeletVersion?: string; containerRuntimeVersion?: string } } }[];
  }>({ verb: "list", resource: "nodes", path: "/api/v1/nodes" });
  const nodeInfo = nodes.items[0]?.status?.nodeInfo;
  return {
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: os.release(),
    os: osRelease(),
    node: process.version,
    loadAverageAtStart: os.loadavg().map((v) => Math.round(v * 100) / 100),
    cluster: {
      kubernetes: version.gitVersion ?? "unknown",
      kubelet: nodeInfo?.kubeletVersion ?? "unknown",
      containerRuntime: nodeInfo?.containerRuntimeVersion ?? "unknown",
      etcd: runningBinaryVersion("etcd"),
      agentSandbox: runningBinaryVersion("agent-sandbox-controller"),
    },
  };
}
