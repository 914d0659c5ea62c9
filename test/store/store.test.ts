// One behaviour suite for SandboxStore, run against SQLite (a temporary file) and a real PostgreSQL started by
// scripts/postgres.sh, plus each dialect's outage: a SQLite write lock held by another connection, and the
// PostgreSQL server stopped under a live store. PostgreSQL that cannot start fails the run; it is never skipped.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type Socket } from "node:net";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import {
  InvalidPageTokenError,
  openStore,
  type KyselySandboxStore,
  type OpenStoreOptions,
} from "../../src/gateway/store/database.js";
import {
  AlreadyExistsError,
  ConflictError,
  NotFoundError,
  StoreUnavailableError,
  type SandboxRecord,
} from "../../src/gateway/store/types.js";

const POSTGRES_SH = resolve(import.meta.dirname, "../../scripts/postgres.sh");
const DATABASE_TS = resolve(import.meta.dirname, "../../src/gateway/store/database.ts");

type NewRecord = Omit<SandboxRecord, "version">;
type ErrorClass = new (...args: never[]) => Error;

interface Backend {
  readonly name: string;
  /** A new empty database; returns its URL. */
  fresh(): Promise<string>;
  /** Options that make in-process lock contention short (SQLite's busy wait blocks the event loop). */
  readonly contention: Partial<OpenStoreOptions>;
  setup(): Promise<void>;
  teardown(): Promise<void>;
}

/** Every error message a test provoked, checked at the end for the PostgreSQL password. */
const messages: string[] = [];
const opened: KyselySandboxStore[] = [];

function open(dbUrl: string, extra: Partial<OpenStoreOptions> = {}): KyselySandboxStore {
  const store = openStore({ dbUrl, dataDir: "", ...extra });
  opened.push(store);
  return store;
}

async function rejectsWith<E extends ErrorClass>(
  promise: Promise<unknown>,
  type: E,
  pattern?: RegExp,
): Promise<InstanceType<E>> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof Error, `expected an Error, got ${String(err)}`);
    messages.push(err.message);
    assert.ok(err instanceof type, `expected ${type.name}, got ${err.constructor.name}: ${err.message}`);
    assert.doesNotMatch(err.message, /\n/, "messages are one line");
    if (pattern) assert.match(err.message, pattern);
    return err as InstanceType<E>;
  }
  assert.fail(`expected ${type.name}, but it resolved`);
}

async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await promise;
  } finally {
    const took = performance.now() - started;
    assert.ok(took < ms, `${what} took ${Math.round(took)} ms, expected under ${ms} ms`);
  }
}

let counter = 0;
/** A workspace no other test uses, so list results only hold this test's records. */
function workspace(): string {
  return `ws-${++counter}-${randomBytes(3).toString("hex")}`;
}

function record(ws: string, name: string, extra: Partial<NewRecord> = {}): NewRecord {
  return {
    id: randomUUID(),
    workspace: ws,
    name,
    objectName: `${ws}--${name}`,
    spec: { image: "registry.example/agent:1.0" },
    labels: {},
    createdAtMs: 1_760_000_000_000,
    desiredState: "running",
    failure: null,
    ...extra,
  };
}

/** Byte order, as both dialects sort ids. */
function byCreatedThenId(a: { createdAtMs: number; id: string }, b: { createdAtMs: number; id: string }) {
  return a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

async function listAll(
  store: KyselySandboxStore,
  options: { workspace?: string; labels?: Record<string, string>; limit: number },
) {
  const pages: SandboxRecord[][] = [];
  let pageToken = "";
  do {
    const page = await store.list({ ...options, pageToken });
    pages.push([...page.records]);
    pageToken = page.nextPageToken;
    assert.ok(pages.length < 100, "pagination does not end");
  } while (pageToken !== "");
  return pages;
}

function behaviour(backend: Backend): void {
  let store: KyselySandboxStore;

  before(async () => {
    store = open(await backend.fresh());
    await store.migrate();
  });

  test("migrate twice keeps the schema and the data", async () => {
    const url = await backend.fresh();
    const first = open(url);
    await first.migrate();
    const kept = await first.create(record(workspace(), "kept"));
    await first.migrate();
    const second = open(url);
    await second.migrate();
    assert.deepEqual(await second.getById(kept.id), kept);
  });

  test("gateways migrating one database at once all succeed", async () => {
    const url = await backend.fresh();
    const stores = Array.from({ length: 4 }, () => open(url, backend.contention));
    await Promise.all(stores.map((s) => s.migrate()));
    const ws = workspace();
    for (const [i, s] of stores.entries()) await s.create(record(ws, `from-${i}`, { createdAtMs: i }));
    const names = (await stores[0]!.list({ workspace: ws, limit: 10 })).records.map((r) => r.name);
    assert.deepEqual(names, ["from-0", "from-1", "from-2", "from-3"]);
  });

  test("create returns version 1 and the record reads back by id and by name", async () => {
    const ws = workspace();
    const input = record(ws, "alpha", { labels: { team: "a" } });
    const created = await store.create(input);
    assert.deepEqual(created, { ...input, version: 1 });
    assert.deepEqual(await store.getById(input.id), created);
    assert.deepEqual(await store.getByName(ws, "alpha"), created);
    assert.equal(await store.getById(randomUUID()), undefined);
    assert.equal(await store.getByName(ws, "beta"), undefined);
    assert.equal(await store.getByName(workspace(), "alpha"), undefined);
  });

  test("a taken name or id is AlreadyExistsError; the same name in another workspace is fine", async () => {
    const ws = workspace();
    const original = await store.create(record(ws, "dup"));
    const err = await rejectsWith(
      store.create(record(ws, "dup", { spec: { image: "other" } })),
      AlreadyExistsError,
      /"dup".*workspace/,
    );
    assert.ok(!(err instanceof StoreUnavailableError));
    await rejectsWith(
      store.create(record(workspace(), "other", { id: original.id })),
      AlreadyExistsError,
      /id/,
    );
    assert.deepEqual(await store.getByName(ws, "dup"), original, "the failed create changed nothing");
    const elsewhere = await store.create(record(workspace(), "dup"));
    assert.equal(elsewhere.name, "dup");
  });

  test("list pages in (createdAtMs, id) order, with ties, across pages and workspaces", async () => {
    const ws = workspace();
    const other = workspace();
    const times = [5, 3, 3, 9, 1, 3, 7];
    const mine = await Promise.all(
      times.map((t, i) => store.create(record(ws, `r${i}`, { createdAtMs: t }))),
    );
    await store.create(record(other, "x", { createdAtMs: 4 }));
    await store.create(record(other, "y", { createdAtMs: 3 }));
    const expected = [...mine].sort(byCreatedThenId).map((r) => r.id);

    const pages = await listAll(store, { workspace: ws, limit: 3 });
    assert.deepEqual(
      pages.map((p) => p.length),
      [3, 3, 1],
    );
    assert.deepEqual(
      pages.flat().map((r) => r.id),
      expected,
    );
    assert.deepEqual(
      (await listAll(store, { workspace: ws, limit: 1 })).flat().map((r) => r.id),
      expected,
    );

    const exact = await store.list({ workspace: ws, limit: 7 });
    assert.equal(exact.records.length, 7);
    assert.equal(exact.nextPageToken, "", "no empty trailing page");

    const everything = (await listAll(store, { limit: 4 })).flat();
    assert.deepEqual(everything, [...everything].sort(byCreatedThenId));
    assert.deepEqual(
      everything.filter((r) => r.workspace === ws).map((r) => r.id),
      expected,
    );
    assert.deepEqual(
      (await store.all()).map((r) => r.id),
      everything.map((r) => r.id),
    );
  });

  test("a page token stays valid while records are added and removed", async () => {
    const ws = workspace();
    const made = await Promise.all(
      [10, 20, 30, 40].map((t) => store.create(record(ws, `t${t}`, { createdAtMs: t }))),
    );
    const first = await store.list({ workspace: ws, limit: 2 });
    assert.deepEqual(
      first.records.map((r) => r.name),
      ["t10", "t20"],
    );
    await store.create(record(ws, "early", { createdAtMs: 15 }));
    await store.create(record(ws, "late", { createdAtMs: 50 }));
    await store.delete(made[2]!.id);
    const rest = await store.list({ workspace: ws, limit: 10, pageToken: first.nextPageToken });
    assert.deepEqual(
      rest.records.map((r) => r.name),
      ["t40", "late"],
    );
  });

  test("list filters by labels in the database, with pagination", async () => {
    const ws = workspace();
    const suite = randomBytes(4).toString("hex");
    const odd = { "app.kubernetes.io/name": "agent", 'we"ird': "ü 🚀", suite };
    const inputs = [
      record(ws, "a", { createdAtMs: 1, labels: { ...odd, team: "red" } }),
      record(ws, "b", { createdAtMs: 2, labels: { suite, team: "blue" } }),
      record(ws, "c", { createdAtMs: 3, labels: { ...odd, team: "red", tier: "gold" } }),
      record(ws, "d", { createdAtMs: 4, labels: { suite } }),
      record(workspace(), "e", { createdAtMs: 5, labels: { ...odd, team: "red" } }),
    ];
    for (const input of inputs) await store.create(input);
    const names = async (labels: Record<string, string>, limit = 10, inWs: string | null = ws) =>
      (await listAll(store, { workspace: inWs ?? undefined, labels, limit })).flat().map((r) => r.name);

    assert.deepEqual(await names({ team: "red" }), ["a", "c"]);
    assert.deepEqual(await names({ team: "red" }, 1), ["a", "c"]);
    assert.deepEqual(await names({ team: "red", tier: "gold" }), ["c"]);
    assert.deepEqual(await names({ 'we"ird': "ü 🚀", "app.kubernetes.io/name": "agent" }), ["a", "c"]);
    assert.deepEqual(await names({ team: "green" }), []);
    assert.deepEqual(await names({ tier: "" }), [], "an empty value does not match a missing key");
    assert.deepEqual(await names({}), ["a", "b", "c", "d"]);
    assert.deepEqual(await names({ suite, team: "red" }, 2, null), ["a", "c", "e"], "across workspaces");
    const [page] = await listAll(store, { workspace: ws, labels: { team: "red" }, limit: 2 });
    assert.equal(page?.length, 2, "a full last page has no next token");
  });

  test("a page token that is not one of ours is InvalidPageTokenError", async () => {
    const ws = workspace();
    await store.create(record(ws, "one", { createdAtMs: 1 }));
    await store.create(record(ws, "two", { createdAtMs: 2 }));
    const { nextPageToken } = await store.list({ workspace: ws, limit: 1 });
    assert.notEqual(nextPageToken, "");
    const forged = Buffer.from(JSON.stringify({ createdAtMs: 1 })).toString("base64url");
    const notJson = Buffer.from("1:abc").toString("base64url");
    for (const token of ["not a token", `${nextPageToken}!`, `${nextPageToken}AA`, forged, notJson]) {
      await rejectsWith(
        store.list({ workspace: ws, limit: 1, pageToken: token }),
        InvalidPageTokenError,
        /page token/,
      );
    }
    await assert.rejects(store.list({ workspace: ws, limit: 0 }), RangeError);
  });

  test("update patches fields and bumps the version; a stale expectedVersion is ConflictError", async () => {
    const created = await store.create(record(workspace(), "upd", { labels: { a: "1" } }));
    const stopped = await store.update(created.id, { desiredState: "stopped" });
    assert.deepEqual(stopped, { ...created, desiredState: "stopped", version: 2 });

    const failure = { reason: "ImagePullAuthFailed", message: "401 from registry.example", observedAtMs: 7 };
    const failed = await store.update(created.id, { failure, labels: { b: "2" }, spec: { image: "x" } }, 2);
    assert.deepEqual(failed, { ...stopped, failure, labels: { b: "2" }, spec: { image: "x" }, version: 3 });

    await rejectsWith(store.update(created.id, { desiredState: "running" }, 2), ConflictError, /version 3/);
    assert.deepEqual(await store.getById(created.id), failed, "a conflict changes nothing");

    const cleared = await store.update(created.id, { failure: null }, 3);
    assert.equal(cleared.failure, null);
    assert.equal(cleared.version, 4);
    assert.equal((await store.update(created.id, {})).version, 5, "every update counts");

    await rejectsWith(store.update(randomUUID(), { desiredState: "stopped" }), NotFoundError);
    await rejectsWith(store.update(randomUUID(), { desiredState: "stopped" }, 1), NotFoundError);
  });

  test("delete says whether there was a record", async () => {
    const ws = workspace();
    const created = await store.create(record(ws, "gone"));
    assert.equal(await store.delete(created.id), true);
    assert.equal(await store.delete(created.id), false);
    assert.equal(await store.getById(created.id), undefined);
    assert.equal((await store.create(record(ws, "gone"))).version, 1, "the name is free again");
  });

  test("JSON fields round-trip exactly", async () => {
    const spec = {
      image: "registry.example/ägent:1.0",
      env: [{ name: "GREETING", value: 'こんにちは 🚀 "quoted" back\\slash\nnewline \u0000 nul' }],
      resources: { limits: { cpu: 0.5, memory: "1Gi" }, requests: null },
      nested: { deeper: { deepest: [1, [2, [3, { ok: true, no: false }]]] } },
      empty: {},
      none: [],
    };
    const labels = { "owner.example.com/team": "Ωmega", emoji: "🧪" };
    const failure = {
      reason: "ImagePullBackOff",
      message: "manifest ünknown: „tag“",
      observedAtMs: 1_760_000_000_123,
    };
    const created = await store.create(record(workspace(), "json", { spec, labels, failure }));
    const read = await store.getById(created.id);
    assert.deepEqual(read?.spec, spec);
    assert.deepEqual(read?.labels, labels);
    assert.deepEqual(read?.failure, failure);
    const scalar = await store.create(record(workspace(), "scalar", { spec: "just a string" }));
    assert.equal((await store.getById(scalar.id))?.spec, "just a string");
  });

  test("createdAtMs and version come back as numbers", async () => {
    const ws = workspace();
    for (const ms of [1_893_456_000_123, Number.MAX_SAFE_INTEGER, 0]) {
      const created = await store.create(record(ws, `t${ms}`, { createdAtMs: ms }));
      for (const read of [
        created,
        await store.getById(created.id),
        (await store.list({ workspace: ws, limit: 5 })).records[0],
      ]) {
        assert.equal(typeof read?.createdAtMs, "number");
        assert.equal(typeof read?.version, "number");
      }
      assert.equal((await store.getById(created.id))?.createdAtMs, ms);
    }
    await assert.rejects(store.create(record(ws, "frac", { createdAtMs: 1.5 })), RangeError);
  });

  test("ping answers; a closed store is unavailable", async () => {
    await within(1000, "ping", store.ping(1000));
    const closing = open(await backend.fresh());
    await closing.migrate();
    await closing.close();
    await closing.close();
    await rejectsWith(closing.ping(500), StoreUnavailableError, /closed/);
    await rejectsWith(closing.create(record(workspace(), "late")), StoreUnavailableError, /closed/);
  });
}

function sqliteBackend(): Backend & { dir(): string } {
  let dir = "";
  let n = 0;
  return {
    name: "SQLite",
    dir: () => dir,
    contention: { busyTimeoutMs: 100 },
    fresh: () => Promise.resolve(`sqlite:${join(dir, `db-${++n}.sqlite`)}`),
    setup: () => {
      dir = mkdtempSync(join(tmpdir(), "store-test-"));
      return Promise.resolve();
    },
    teardown: () => {
      rmSync(dir, { recursive: true, force: true });
      return Promise.resolve();
    },
  };
}

function postgres(command: "start" | "stop" | "url"): string {
  try {
    // A cold start installs the server with apt-get, so allow minutes.
    return execFileSync(POSTGRES_SH, [command], { encoding: "utf8", timeout: 600_000, stdio: "pipe" }).trim();
  } catch (err) {
    const { stderr, message } = err as { stderr?: string; message: string };
    throw new Error(`scripts/postgres.sh ${command} failed: ${stderr?.trim() || message}`);
  }
}

function postgresBackend(): Backend & { url(): URL } {
  let admin: URL | undefined;
  const created: string[] = [];
  // Short-lived admin connections: a long-lived one would die when a test stops the server.
  async function adminQuery(text: string): Promise<void> {
    const client = new pg.Client({ connectionString: admin!.href });
    client.on("error", () => {});
    await client.connect();
    try {
      await client.query(text);
    } finally {
      await client.end();
    }
  }
  return {
    name: "PostgreSQL",
    url: () => admin!,
    contention: {},
    async fresh() {
      const db = `store_test_${randomBytes(6).toString("hex")}`;
      await adminQuery(`create database ${db}`);
      created.push(db);
      const url = new URL(admin!.href);
      url.pathname = `/${db}`;
      return url.href;
    },
    setup() {
      postgres("start");
      admin = new URL(postgres("url"));
      return Promise.resolve();
    },
    async teardown() {
      if (!admin) return;
      for (const db of created) await adminQuery(`drop database if exists ${db} with (force)`);
    },
  };
}

after(async () => {
  await Promise.all(opened.map((s) => s.close()));
});

describe("SQLite store", () => {
  const backend = sqliteBackend();
  before(() => backend.setup());
  after(() => backend.teardown());
  behaviour(backend);

  test("an empty database URL means openshell.db in a 0700 data directory", async () => {
    const dataDir = join(backend.dir(), "data", "nested");
    const store = openStore({ dbUrl: "", dataDir });
    opened.push(store);
    await store.migrate();
    assert.equal(statSync(dataDir).mode & 0o777, 0o700);
    assert.ok(existsSync(join(dataDir, "openshell.db")));
    assert.equal(store.description, `SQLite ${join(dataDir, "openshell.db")}`);
  });

  test("a file that cannot be opened is StoreUnavailableError naming the file", () => {
    const file = join(backend.dir(), "missing-dir", "x.db");
    assert.throws(
      () => openStore({ dbUrl: `sqlite:${file}`, dataDir: "" }),
      (err: Error) => err instanceof StoreUnavailableError && err.message.includes(file),
    );
    assert.throws(() => openStore({ dbUrl: "mysql://x", dataDir: "" }), StoreUnavailableError);
  });

  test("gateway processes migrating one file at once all succeed", { timeout: 60_000 }, async () => {
    const url = await backend.fresh();
    // Each child is a gateway: its own process and connection, waiting out SQLite's busy timeout for the lock.
    // They load first, then migrate on the same "go" so the migrations overlap.
    const code = (i: number) => `
      import { openStore } from ${JSON.stringify(DATABASE_TS)};
      const store = openStore({ dbUrl: ${JSON.stringify(url)}, dataDir: "" });
      process.stdout.write("ready\\n");
      await new Promise((go) => process.stdin.once("data", go));
      await store.migrate();
      await store.create({ id: "id-${i}", workspace: "procs", name: "p${i}", objectName: "p${i}", spec: {},
        labels: {}, createdAtMs: ${i}, desiredState: "running", failure: null });
      await store.close();
      process.stdin.destroy();`;
    const children = [0, 1].map((i) =>
      spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code(i)], {
        stdio: ["pipe", "pipe", "pipe"],
      }),
    );
    const outcomes = children.map(
      (child) =>
        new Promise<string>((done) => {
          let stderr = "";
          child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
          child.on("exit", (status) => done(status === 0 ? "" : `exit ${status}: ${stderr}`));
        }),
    );
    const ready = children.map((child) => once(child.stdout, "data"));
    try {
      // A child that exits before "go" has failed; stop waiting for the others to be ready.
      await Promise.race([Promise.all(ready), Promise.race(outcomes)]);
      for (const child of children) child.stdin.write("go\n");
      assert.deepEqual(await Promise.all(outcomes), ["", ""]);
    } finally {
      for (const child of children) child.kill();
    }
    const names = (await open(url).list({ workspace: "procs", limit: 10 })).records.map((r) => r.name);
    assert.deepEqual(names, ["p0", "p1"]);
  });

  test("a write lock held elsewhere fails writes within the busy timeout, and nothing is half written", async () => {
    const url = await backend.fresh();
    const file = url.slice("sqlite:".length);
    const store = open(url, { busyTimeoutMs: 300 });
    await store.migrate();
    const ws = workspace();
    const existing = await store.create(record(ws, "existing"));
    const blocked = record(ws, "blocked");

    const holder = new Database(file);
    holder.exec("begin exclusive");
    try {
      const started = performance.now();
      const err = await rejectsWith(store.create(blocked), StoreUnavailableError, /database is locked/);
      const waited = performance.now() - started;
      assert.ok(waited >= 250 && waited < 3000, `waited ${Math.round(waited)} ms for a 300 ms busy timeout`);
      assert.ok(err.message.includes(file), err.message);
      assert.match(err.message, /300 ms busy timeout/);
      await rejectsWith(store.update(existing.id, { desiredState: "stopped" }), StoreUnavailableError);
      await rejectsWith(store.delete(existing.id), StoreUnavailableError);
    } finally {
      holder.exec("rollback");
      holder.close();
    }

    assert.equal(await store.getById(blocked.id), undefined);
    assert.deepEqual(await store.getById(existing.id), existing);
    assert.equal((await store.create(blocked)).version, 1);
    assert.equal((await store.update(existing.id, { desiredState: "stopped" })).version, 2);
  });
});

describe("PostgreSQL store", () => {
  const backend = postgresBackend();
  before(() => backend.setup());
  after(() => backend.teardown());
  behaviour(backend);

  test("unreachable servers and wrong passwords are StoreUnavailableError naming host, port and database", async () => {
    const refused = open("postgres://someone:hunter2-secret@127.0.0.1:1/inventory", {
      connectTimeoutMs: 1000,
    });
    const err = await within(3000, "refused connect", rejectsWith(refused.ping(2000), StoreUnavailableError));
    assert.match(err.message, /^PostgreSQL someone@127\.0\.0\.1:1\/inventory: ping failed: .*ECONNREFUSED/);
    await rejectsWith(refused.migrate(), StoreUnavailableError, /127\.0\.0\.1:1\/inventory/);

    const wrong = new URL(backend.url().href);
    wrong.password = "Wr0ng-p@ss%word";
    const denied = open(wrong.href);
    const authErr = await rejectsWith(denied.create(record(workspace(), "x")), StoreUnavailableError);
    assert.match(authErr.message, /password authentication failed/);
    assert.match(authErr.message, /127\.0\.0\.1:55432/);
    for (const message of messages) {
      assert.ok(!message.includes("hunter2-secret") && !message.includes("Wr0ng-p@ss"), message);
    }
    assert.throws(() => openStore({ dbUrl: "postgres://user:pw@[bad", dataDir: "" }), StoreUnavailableError);
  });

  test(
    "a stopped server makes calls fail fast, and the same store recovers after a restart",
    { timeout: 60_000 },
    async () => {
      const store = open(await backend.fresh(), { connectTimeoutMs: 1000, queryTimeoutMs: 3000 });
      await store.migrate();
      const ws = workspace();
      const existing = await store.create(record(ws, "existing"));
      const blocked = record(ws, "blocked");
      await store.ping(1000); // leaves an idle pooled connection for the shutdown to break

      try {
        postgres("stop");
        const where = /PostgreSQL openshell@127\.0\.0\.1:55432\/store_test_[0-9a-f]+: /;
        await within(2500, "ping", rejectsWith(store.ping(1000), StoreUnavailableError, where));
        await within(2500, "create", rejectsWith(store.create(blocked), StoreUnavailableError, where));
        await within(2500, "getById", rejectsWith(store.getById(existing.id), StoreUnavailableError, where));
        await within(
          2500,
          "update",
          rejectsWith(store.update(existing.id, { desiredState: "stopped" }), StoreUnavailableError),
        );
        await within(2500, "list", rejectsWith(store.list({ limit: 5 }), StoreUnavailableError));
      } finally {
        postgres("start");
      }

      await within(5000, "ping after restart", store.ping(3000));
      assert.equal(await store.getById(blocked.id), undefined, "the failed create left nothing");
      assert.deepEqual(await store.getById(existing.id), existing, "the failed update left nothing");
      assert.equal((await store.create(blocked)).version, 1);
    },
  );

  test("a server that accepts but never answers times out instead of hanging", async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((done) => silent.listen(0, "127.0.0.1", done));
    const { port } = silent.address() as { port: number };
    try {
      const store = open(`postgres://someone:hunter2-secret@127.0.0.1:${port}/silent`, {
        connectTimeoutMs: 500,
      });
      const err = await within(2000, "connect", rejectsWith(store.getById("x"), StoreUnavailableError));
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}/silent: getById failed: .*timeout`, "i"));
      await within(
        1000,
        "ping",
        rejectsWith(store.ping(200), StoreUnavailableError, /no answer within 200 ms/),
      );
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  test("no error message contains the password", () => {
    const password = decodeURIComponent(backend.url().password);
    assert.ok(password.length > 0);
    assert.ok(messages.length > 10, `only ${messages.length} messages were collected`);
    for (const message of messages) assert.ok(!message.includes(password), message);
  });
});
