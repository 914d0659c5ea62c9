// Crash safety: the real gateway process (SQLite, real test bed) is killed with SIGKILL at random points
// while creates and deletes are in flight, and restarted each time. After the last restart and one
// reconcile period, what the gateway acknowledged must hold: every acknowledged create exists exactly
// once (one record, one Sandbox object), every acknowledged delete is gone, and no object with our label
// lacks a record (nor a record its object).
//
// Sizes: OPENSHELL_CRASH_KILLS (default 20; `make soak` runs 100), OPENSHELL_CRASH_OPS (default 200),
// OPENSHELL_CRASH_SEED (default: random, printed) replays a run's random choices.
//
// The namespace has a ResourceQuota of zero pods: the agent-sandbox controller's pod creations are refused,
// so the kubelet is not loaded; the Sandbox objects and the records are what this test is about.

import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { DeletionOutcome, SandboxPhase, type OpenShell } from "../../src/gen/openshell/v1/openshell_pb.js";
import { LABELS } from "../../src/render/sandbox.js";
import { requireCluster } from "../support/cluster.js";
import { GatewayProcess } from "../support/gateway-process.js";
import {
  faultTestArgs,
  listRecords,
  listSandboxObjects,
  noPodNamespace,
  scope,
  type SandboxObject,
} from "../support/reliability.js";

const KILLS = Number(process.env.OPENSHELL_CRASH_KILLS ?? 20);
const OPS = Number(process.env.OPENSHELL_CRASH_OPS ?? 200);
const SEED = Number(process.env.OPENSHELL_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const NAMES = 40;
const CONCURRENCY = 8;
const RECONCILE_SECONDS = 2;
const ORPHAN_GRACE_SECONDS = 2;
const CALL_TIMEOUT_MS = 15_000;

/** mulberry32: small, seedable, good enough to pick names and moments. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Belief = "present" | "absent" | "unknown";

test(
  `crash safety: ${KILLS} SIGKILLs during ${OPS} creates and deletes; acknowledged work survives`,
  { timeout: 30 * 60_000 },
  async (t) => {
    t.diagnostic(`seed ${SEED} (replay with OPENSHELL_CRASH_SEED=${SEED})`);
    const random = rng(SEED);
    const cluster = await requireCluster("full");
    const namespace = await noPodNamespace(t, "rel-crash");
    const gw = await GatewayProcess.create(t, {
      namespace,
      args: faultTestArgs(cluster, RECONCILE_SECONDS, ORPHAN_GRACE_SECONDS),
    });

    const names = Array.from({ length: NAMES }, (_, i) => `c${String(i).padStart(2, "0")}`);
    const belief = new Map<string, Belief>(names.map((n) => [n, "absent"]));
    const busy = new Set<string>();
    const counts = {
      kills: 0,
      createsAcked: 0,
      createsUnacked: 0,
      createsRefused: 0,
      deletesAcked: 0,
      deletesAccepted: 0,
      deletesUnacked: 0,
      inFlightAtKill: 0,
    };
    const unexpected: string[] = [];

    // One "life" of the gateway at a time: workers issue calls only while it is up and its quota lasts.
    interface Life {
      client: Client<typeof OpenShell>;
      quota: number;
      started: number;
      finished: number;
      killed: boolean;
    }
    let life: Life | undefined;
    let issued = 0;
    let inFlight = 0;
    let wakeWorkers: () => void = () => undefined;
    let lifeChanged = new Promise<void>((r) => (wakeWorkers = r));
    const signalWorkers = () => {
      const wake = wakeWorkers;
      lifeChanged = new Promise<void>((r) => (wakeWorkers = r));
      wake();
    };

    const one = async (current: Life, name: string) => {
      const { client } = current;
      const b = belief.get(name)!;
      const create = b === "absent" || (b === "unknown" && random() < 0.5);
      inFlight++;
      try {
        if (create) {
          await client.createSandbox(
            { name, workspaceScope: scope, spec: { template: {} } },
            { timeoutMs: CALL_TIMEOUT_MS },
          );
          belief.set(name, "present");
          counts.createsAcked++;
        } else {
          const res = await client.deleteSandbox(
            { name, workspaceScope: scope, allowMissing: true },
            { timeoutMs: CALL_TIMEOUT_MS },
          );
          // An acknowledged create the gateway no longer knows is a lost record.
          if (b === "present" && res.outcome === DeletionOutcome.ALREADY_ABSENT)
            unexpected.push(`delete ${name}: the acknowledged create was already absent`);
          belief.set(name, "absent");
          counts.deletesAcked++;
          if (res.outcome === DeletionOutcome.ACCEPTED) counts.deletesAccepted++;
        }
      } catch (err) {
        const e = ConnectError.from(err);
        if (create && e.code === Code.AlreadyExists) {
          // Refused before anything changed: the name's record still exists (an unacknowledged create
          // that went through, or an acknowledged delete Kubernetes has not finished). Belief stands.
          counts.createsRefused++;
          return;
        }
        belief.set(name, "unknown");
        if (create) counts.createsUnacked++;
        else counts.deletesUnacked++;
        // Only the kill may break a call: anything else the gateway answers is a finding.
        const killed = [Code.Unavailable, Code.Canceled, Code.Unknown, Code.Internal, Code.Aborted].includes(
          e.code,
        );
        if (!(killed && current.killed)) {
          unexpected.push(`${create ? "create" : "delete"} ${name}: ${Code[e.code]} ${e.rawMessage}`);
        }
      } finally {
        inFlight--;
        current.finished++;
      }
    };

    const worker = async () => {
      for (;;) {
        if (issued >= OPS) return;
        const current = life;
        const idle = names.filter((n) => !busy.has(n));
        if (!current || current.started >= current.quota || idle.length === 0) {
          await Promise.race([lifeChanged, sleep(20)]);
          continue;
        }
        const name = idle[Math.floor(random() * idle.length)]!;
        current.started++;
        issued++;
        busy.add(name);
        await one(current, name).finally(() => busy.delete(name));
      }
    };

    const started = Date.now();
    const workers = Array.from({ length: CONCURRENCY }, () => worker());
    let startupMs = 0;
    for (let k = 0; k < KILLS; k++) {
      const startAt = Date.now();
      await gw.start();
      await gw.waitReady();
      startupMs += Date.now() - startAt;
      const quota = Math.max(1, Math.ceil((OPS - issued) / (KILLS - k)));
      life = { client: gw.client(), quota, started: 0, finished: 0, killed: false };
      signalWorkers();
      // Kill once a random share of this life's calls has finished, a random moment later: others are in
      // flight then, at different steps of their handlers.
      const killAfter = Math.floor(quota * (0.2 + 0.6 * random()));
      const deadline = Date.now() + 20_000;
      while (life.finished < killAfter && issued < OPS && Date.now() < deadline) await sleep(2);
      await sleep(random() * 60);
      counts.inFlightAtKill += inFlight;
      life.killed = true;
      await gw.kill("SIGKILL");
      counts.kills++;
      life = undefined;
    }
    // The last restart: the workers finish what is left of the budget against it, then stop.
    await gw.start();
    await gw.waitReady();
    life = { client: gw.client(), quota: Number.POSITIVE_INFINITY, started: 0, finished: 0, killed: false };
    signalWorkers();
    await Promise.all(workers);
    const workloadMs = Date.now() - started;

    // One reconcile period (and the orphan grace) after the last restart, everything must agree.
    await sleep((RECONCILE_SECONDS + ORPHAN_GRACE_SECONDS + 1) * 1000);
    const client = gw.client();
    const records = await listRecords(client);
    const objects = await listSandboxObjects(namespace);
    const pods = await cluster.core.listNamespacedPod({ namespace });

    const log = readFileSync(gw.logFile, "utf8");
    const lines = log
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { msg?: string; sandboxId?: string });
    const recreated = lines.filter((l) => l.msg?.startsWith("re-created a sandbox")).length;
    const orphanIds = lines
      .filter((l) => l.msg === "deleted a sandbox object that has no record")
      .map((l) => l.sandboxId ?? "");
    const resumed = lines.filter((l) => l.msg?.startsWith("resumed the deletion")).length;
    t.diagnostic(
      `kills ${counts.kills}; creates acked ${counts.createsAcked}, unacked ${counts.createsUnacked}, ` +
        `refused as existing ${counts.createsRefused}; deletes acked ${counts.deletesAcked} (${counts.deletesAccepted} still finishing in Kubernetes), unacked ${counts.deletesUnacked}; ` +
        `calls in flight at the kills ${counts.inFlightAtKill}; objects ${objects.length}, records ${records.length}; ` +
        `reconcile re-created ${recreated}, resumed ${resumed} deletions, deleted ${orphanIds.length} orphans; workload ${workloadMs} ms (${startupMs} ms of it starting the gateway)`,
    );

    assert.equal(counts.kills, KILLS);
    assert.equal(issued, OPS);
    assert.deepEqual(unexpected, [], "calls failed for a reason other than the kill");
    // The quota kept the kubelet out of it: no pod exists, and the controller was refused (not idle).
    assert.equal(pods.items.length, 0, "the zero-pod quota let a pod through");
    if (objects.length > 0) {
      assert.ok(
        objects.some((o) => o.status?.conditions?.some((c) => /exceeded quota/.test(c.message ?? ""))),
        "no Sandbox reports the quota refusing its pod",
      );
    }

    const problems: string[] = [];
    const recordsByName = new Map<string, typeof records>();
    for (const r of records) {
      const list = recordsByName.get(r.metadata!.name) ?? [];
      list.push(r);
      recordsByName.set(r.metadata!.name, list);
    }
    const objectsById = new Map<string, SandboxObject[]>();
    for (const o of objects) {
      const id = o.metadata.labels?.[LABELS.sandboxId] ?? "";
      objectsById.set(id, [...(objectsById.get(id) ?? []), o]);
    }
    const recordIds = new Set(records.map((r) => r.metadata!.id));
    for (const [name, b] of belief) {
      const rs = recordsByName.get(name) ?? [];
      const os = objects.filter((o) => o.metadata.labels?.[LABELS.sandboxName] === name);
      if (b === "present") {
        if (rs.length !== 1) problems.push(`acknowledged create ${name}: ${rs.length} records`);
        if (os.length !== 1) problems.push(`acknowledged create ${name}: ${os.length} objects`);
        else if (os[0]!.metadata.deletionTimestamp)
          problems.push(`acknowledged create ${name}: being deleted`);
        if (
          rs.length === 1 &&
          os.length === 1 &&
          os[0]!.metadata.labels?.[LABELS.sandboxId] !== rs[0]!.metadata!.id
        )
          problems.push(`acknowledged create ${name}: the object belongs to another record`);
      } else if (b === "absent") {
        if (rs.length !== 0) problems.push(`acknowledged delete ${name}: ${rs.length} records remain`);
        if (os.length !== 0) problems.push(`acknowledged delete ${name}: ${os.length} objects remain`);
      } else if (rs.length > 1 || os.length > 1) {
        problems.push(`${name}: ${rs.length} records, ${os.length} objects`);
      }
    }
    for (const o of objects) {
      if (!recordIds.has(o.metadata.labels?.[LABELS.sandboxId] ?? ""))
        problems.push(`object ${o.metadata.name} has no record`);
    }
    for (const r of records) {
      if ((objectsById.get(r.metadata!.id) ?? []).length !== 1)
        problems.push(
          `record ${r.metadata!.name} has ${(objectsById.get(r.metadata!.id) ?? []).length} objects`,
        );
    }
    // Every delete finishes within the reconcile period (nothing holds these objects back: no pods).
    for (const r of records) {
      if (r.status?.phase === SandboxPhase.DELETING)
        problems.push(`record ${r.metadata!.name} is still DELETING`);
    }
    // In this workload nothing makes an object without its record: a create writes the record first, and
    // every failed call failed because of a kill (asserted above), which runs no rollback. So reconcile
    // has no orphan to delete; one it deletes is the object of a sandbox that was being created or
    // deleted at that moment (a reconcile acting on a stale view).
    for (const id of orphanIds) problems.push(`reconcile deleted the object of sandbox ${id} as an orphan`);
    assert.deepEqual(problems, [], `seed ${SEED}`);
  },
);
