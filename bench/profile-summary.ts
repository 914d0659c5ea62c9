// Summarizes a V8 .cpuprofile (BENCH_CPU_PROF=1 writes one per gateway): the functions with the most
// self time, and their share of the profile.  tsx bench/profile-summary.ts FILE [TOP]

import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export function selfTimes(profile: Profile): { name: string; ms: number; share: number }[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    if (!node) return;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url.replace(/^.*\/(node_modules\/|src\/|dist\/)/, "$1");
    const key = `${functionName || "(anonymous)"} ${where}:${lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  return [...self.entries()]
    .map(([name, ms]) => ({ name, ms: Math.round(ms), share: Math.round((ms / total) * 1000) / 10 }))
    .sort((a, b) => b.ms - a.ms);
}

if (process.argv[1]?.endsWith("profile-summary.ts")) {
  const [file, top] = process.argv.slice(2);
  if (!file) throw new Error("usage: tsx bench/profile-summary.ts FILE.cpuprofile [TOP]");
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  for (const row of selfTimes(profile).slice(0, Number(top ?? 25)))
    process.stdout.write(`${String(row.ms).padStart(7)} ms ${String(row.share).padStart(5)}%  ${row.name}\n`);
}
