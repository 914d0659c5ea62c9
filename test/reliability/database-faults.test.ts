// Database faults under the real gateway process (test/store covers the store alone): the SQLite file
// locked by another process, and the PostgreSQL server stopped (a PostgreSQL instance of this test's own,
// on its own port, so the shared one on 55432 is not disturbed). While the database is out: /readyz is
// 503 naming the database, creates and deletes fail with UNAVAILABLE and a message within a bound, and
// nothing reaches Kubernetes. After recovery: no record without its object, no object without its record,
// and the same calls succeed.

import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { SandboxPhase, type OpenShell } from "../../src/gen/openshell/v1/openshell_pb.js";
import { REPO_ROOT, requireCluster, waitFor } from "../support/cluster.js";
import { GatewayProcess } from "../support/gateway-process.js";
import { freePort } from "../support/ports.js";
import {
  faultTestArgs,
  listRecords,
  listSandboxObjects,
  mismatches,
  noPodNamespace,
  scope,
  timed,
} from "../support/reliability.js";

const execFileP = promisify(execFile);
const POSTGRES_SH = join(REPO_ROOT, "scripts", "postgres.sh");
/** The store's defaults: SQLite's busy timeout and PostgreSQL's connect timeout are both 5 s. */
const STORE_TIMEOUT_MS = 5000;
/** A failing call may take the store's timeout, twice (a lookup, then the write), plus scheduling. */
const FAIL_BOUND_MS = 2 * STORE_TIMEOUT_MS + 3000;

async function createOk(client: Client<typeof OpenShell>, name: string): Promise<void> {
  await client.createSandbox({ name, workspaceScope: scope, spec: { template: {} } }, { timeoutMs: 30_000 });
}

/** The database is out: readiness says so, and a create and a delete fail cleanly, in bounded time. */
async function assertOutage(
  t: { diagnostic(msg: string): void },
  gw: GatewayProcess,
  client: Client<typeof OpenShell>,
  namespace: string,
  expect: RegExp,
): Promise<void> {
  const ready = await timed(gw.readyz(FAIL_BOUND_MS + 5000));
  assert.ok(ready.value, `readyz did not answer: ${String(ready.error)}`);
  assert.equal(ready.value.status, 503, JSON.stringify(ready.value.body));
  assert.match(String(ready.value.body.database), expect);

  const create = await timed(
    client.createSandbox(
      { name: "during-outage", workspaceScope: scope, spec: { template: {} } },
      { timeoutMs: 60_000 },
    ),
  );
  const del = await timed(
    client.deleteSandbox({ name: "to-delete", workspaceScope: scope }, { timeoutMs: 60_000 }),
  );
  t.diagnostic(
    `readyz 503 in ${Math.round(ready.ms)} ms; create failed in ${Math.round(create.ms)} ms, delete in ${Math.round(del.ms)} ms`,
  );
  for (const [what, outcome] of [
    ["create", create],
    ["delete", del],
  ] as const) {
    assert.ok(outcome.error, `${what} succeeded during the outage`);
    const err = ConnectError.from(outcome.error);
    assert.equal(err.code, Code.Unavailable, `${what}: ${Code[err.code]} ${err.rawMessage}`);
    assert.match(err.rawMessage, /the database is unavailable: /);
    assert.match(err.rawMessage, expect);
    assert.doesNotMatch(err.rawMessage, /\n|\bat .*\.js:\d+/, "a one-line message, no stack");
    assert.ok(
      outcome.ms < FAIL_BOUND_MS,
      `${what} took ${Math.round(outcome.ms)} ms (bound ${FAIL_BOUND_MS})`,
    );
  }
  // Nothing reached Kubernetes for the refused create, and the refused delete left its object alone.
  const names = (await listSandboxObjects(namespace)).map((o) => o.metadata.name).sort();
  assert.deepEqual(names, ["kept", "to-delete"]);
}

/** After recovery: ready again, records and objects agree, and the refused calls now succeed. */
async function assertRecovered(
  t: { diagnostic(msg: string): void },
  gw: GatewayProcess,
  namespace: string,
): Promise<void> {
  const outageEnded = Date.now();
  await gw.waitReady(30_000);
  const readyMs = Date.now() - outageEnded;
  const client = gw.client();
  await sleep(3000); // one reconcile period (2 s)
  const records = await listRecords(client);
  const objects = await listSandboxObjects(namespace);
  const problems = mismatches(records, objects);
  t.diagnostic(
    `after recovery (ready again in ${readyMs} ms): records ${records.length}, objects ${objects.length}, ` +
      `partial (a record without its object or an object without its record) ${problems.length}`,
  );
  assert.deepEqual(records.map((r) => r.metadata!.name).sort(), ["kept", "to-delete"]);
  assert.deepEqual(problems, []);

  await createOk(client, "during-outage");
  await client.deleteSandbox({ name: "to-delete", workspaceScope: scope });
  let last = "";
  await waitFor(
    async () => {
      const r = await listRecords(client);
      const o = await listSandboxObjects(namespace);
      const names = r.map((x) => `${x.metadata!.name}:${SandboxPhase[x.status!.phase]}`).sort();
      const problems = mismatches(r, o);
      last = `records ${names.join(",")}; objects ${o.map((x) => x.metadata.name).join(",")}; ${problems.join("; ")}`;
      return (
        last === "records during-outage:PROVISIONING,kept:PROVISIONING; objects during-outage,kept; " ||
        (r.length === 2 && problems.length === 0 && !r.some((x) => x.metadata!.name === "to-delete"))
      );
    },
    { timeoutMs: 15_000, description: "records and objects after recovery" },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}: ${last}; log: ${gw.recentLog()}`);
  });
}

test("SQLite locked by another process: not ready, UNAVAILABLE, nothing half done", async (t) => {
  const cluster = await requireCluster("full");
  const namespace = await noPodNamespace(t, "rel-sqlite");
  const gw = await GatewayProcess.create(t, { namespace, args: faultTestArgs(cluster) });
  await gw.start();
  await gw.waitReady();
  const client = gw.client();
  await createOk(client, "kept");
  await createOk(client, "to-delete");

  // Another process (a backup, an operator's sqlite3 shell) holds the write lock: reads still work (WAL),
  // every write waits out the busy timeout and fails.
  const file = join(gw.dataDir, "openshell.db");
  const holder: ChildProcess = spawn(
    process.execPath,
    [
      "-e",
      `const db = new (require("better-sqlite3"))(process.argv[1], { timeout: 10000 });
       db.exec("begin exclusive");
       db.exec("create table if not exists lock_probe (x)");
       process.stdout.write("locked\\n");
       process.stdin.on("end", () => { db.exec("rollback"); db.close(); process.exit(0); });
       process.stdin.resume();`,
      file,
    ],
    { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "inherit"] },
  );
  t.after(() => {
    holder.kill("SIGKILL");
  });
  await new Promise<void>((resolve, reject) => {
    holder.stdout!.once("data", () => resolve());
    holder.once("exit", (code) => reject(new Error(`the lock holder exited (${code})`)));
  });

  try {
    await assertOutage(t, gw, client, namespace, /SQLite .*openshell\.db.*database is locked/);
  } finally {
    holder.stdin!.end();
    await new Promise((r) => holder.once("exit", r));
  }
  await assertRecovered(t, gw, namespace);
});

test("PostgreSQL stopped: not ready, UNAVAILABLE, nothing half done, recovers on restart", async (t) => {
  const cluster = await requireCluster("full");
  const namespace = await noPodNamespace(t, "rel-pg");
  // A PostgreSQL of our own: scripts/postgres.sh with its own state directory and port.
  const state = mkdtempSync(join(tmpdir(), "osgw-pg-"));
  const env = { ...process.env, PG_STATE: state, PG_PORT: String(await freePort()) };
  const pg = async (command: "start" | "stop" | "url") => {
    try {
      const { stdout } = await execFileP(POSTGRES_SH, [command], { env, timeout: 600_000 });
      return stdout.trim();
    } catch (err) {
      const { stderr, message } = err as { stderr?: string; message: string };
      throw new Error(`scripts/postgres.sh ${command} failed: ${stderr?.trim() || message}`);
    }
  };
  t.after(async () => {
    await pg("stop").catch(() => undefined);
    rmSync(state, { recursive: true, force: true });
  });
  await pg("start");
  const dbUrl = await pg("url");

  const gw = await GatewayProcess.create(t, { namespace, dbUrl, args: faultTestArgs(cluster) });
  await gw.start();
  await gw.waitReady();
  const client = gw.client();
  await createOk(client, "kept");
  await createOk(client, "to-delete");

  await pg("stop");
  const where = new RegExp(`PostgreSQL openshell@127\\.0\\.0\\.1:${env.PG_PORT}/openshell`);
  await assertOutage(t, gw, client, namespace, where);
  assert.doesNotMatch(JSON.stringify((await gw.readyz()).body), /openshell-test-pw/, "password in /readyz");

  await pg("start");
  await assertRecovered(t, gw, namespace);
});
