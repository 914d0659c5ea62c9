// `make bench` in smoke mode, so the benchmark cannot rot: one tiny run on the full test bed must
// produce all six measurements with sane numbers. Timing goals are not asserted here (benchmarks
// measure them; docs/performance.md has the numbers of a full run).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Results } from "../../bench/results.js";
import type { Summary } from "../../bench/stats.js";
import { REPO_ROOT, requireCluster } from "../support/cluster.js";

const execFileP = promisify(execFile);

function assertSane(label: string, s: Summary, n: number): void {
  assert.equal(s.n, n, `${label}: ${s.n} samples, expected ${n}`);
  for (const key of ["min", "p50", "p95", "p99", "max"] as const)
    assert.ok(Number.isFinite(s[key]) && s[key] >= 0, `${label}: ${key} is ${s[key]}`);
  assert.ok(
    s.min <= s.p50 && s.p50 <= s.p95 && s.p95 <= s.p99 && s.p99 <= s.max,
    `${label}: ${JSON.stringify(s)}`,
  );
}

describe("bench --smoke", () => {
  test("produces all six measurements, the report and the chart", async (t) => {
    await requireCluster("full");
    const out = mkdtempSync(join(tmpdir(), "bench-smoke-"));
    t.after(() => rmSync(out, { recursive: true, force: true }));
    const started = Date.now();
    // The child's environment without BENCH_* so the smoke sizes are the ones asserted below.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("BENCH_")));
    try {
      await execFileP(process.execPath, ["--import", "tsx", "bench/run.ts", "--smoke", "--out", out], {
        cwd: REPO_ROOT,
        env,
        timeout: 5 * 60_000,
        maxBuffer: 16 * 1024 * 1024,
      });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      assert.fail(
        `bench --smoke failed: ${e.message}\n${(e.stderr ?? "").split("\n").slice(-30).join("\n")}`,
      );
    }
    t.diagnostic(`smoke run took ${Date.now() - started} ms`);

    const r = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as Results;
    const p = r.params;
    assert.equal(r.mode, "smoke");
    assert.deepEqual(r.notes, [], "the run noted problems");
    assert.ok(
      r.machine.cores > 0 && r.machine.cluster.kubernetes.startsWith("v1."),
      JSON.stringify(r.machine),
    );

    // 1 + 2: creates
    assert.equal(r.create.identicalObjects, true, "gateway and raw objects differ");
    for (const arm of [
      r.create.gateway,
      r.create.gatewayPreflightOff,
      r.create.raw,
      r.create.rawGatewayClient,
    ]) {
      assertSane("create", arm.latencyMs, p.creates!);
      assert.equal(arm.throughput.errors, 0);
      assert.ok(arm.throughput.perSecond > 0);
    }
    assert.ok(r.create.gatewayCpuMsPerCreate > 0 && r.create.gatewayPreflightOffCpuMsPerCreate > 0);
    for (const [k, v] of Object.entries(r.create.ratios)) assert.ok(Number.isFinite(v) && v > 0, `${k}=${v}`);

    // 3: reads at two sizes
    assert.deepEqual(
      r.reads.map((x) => x.sandboxes),
      [p.readsSmall, p.readsLarge],
    );
    for (const x of r.reads) {
      assertSane(`get@${x.sandboxes}`, x.get, p.getSamples!);
      assertSane(`list@${x.sandboxes}`, x.listPage, p.listSamples!);
      assertSane(`listAll@${x.sandboxes}`, x.listAll, p.listAllSamples!);
    }

    // 4: watch fan-out, every client got every change
    assert.equal(r.watch.missed, 0);
    assertSane("watch delivery", r.watch.deliveryMs, p.watchers! * p.watchChanges!);
    assertSane("watch all clients", r.watch.allClientsMs, p.watchChanges!);
    assertSane("raw watch", r.watch.rawWatchMs, p.watchChanges!);
    assert.equal(r.watch.sandboxesKnown, p.readsLarge);

    // 5: memory
    assert.ok(r.memory.idleRssMiB > 10 && r.memory.loadedRssMiB > 10, JSON.stringify(r.memory));
    assert.ok(r.memory.loadedPeakRssMiB >= r.memory.loadedRssMiB);

    // 6: time to ready, with the container's own start time read from its log
    assert.equal(r.timeToReady.runs.length, p.readyRuns);
    assertSane("ready after container start", r.timeToReady.readyAfterContainerStartMs, p.readyRuns!);
    for (const run of r.timeToReady.runs) {
      assert.ok(
        run.containerStartMs! > run.createSentMs,
        `container started before the create: ${JSON.stringify(run)}`,
      );
      assert.ok(
        run.gatewayReadyMs > run.containerStartMs!,
        `READY before the container started: ${JSON.stringify(run)}`,
      );
    }

    for (const file of ["report.md", "latency.svg"])
      assert.ok(existsSync(join(out, file)), `${file} missing`);
    assert.match(readFileSync(join(out, "report.md"), "utf8"), /## Targets[\s\S]*## 6\. Time to ready/);
    assert.match(readFileSync(join(out, "latency.svg"), "utf8"), /^<svg [\s\S]*<\/svg>\n$/);
  });
});
