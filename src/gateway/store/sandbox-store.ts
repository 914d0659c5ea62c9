// SandboxStore over Kysely: the same queries for SQLite and PostgreSQL. Every write is one statement (an
// UPDATE ... RETURNING bumps the version in place), so a failed write leaves nothing half done.

import { sql, type Expression, type Kysely, type Selectable, type SqlBool, type Updateable } from "kysely";
import { decodePageToken, encodePageToken } from "./page-token.js";
import { migrateToLatest, type SandboxesTable, type StoreSchema } from "./schema.js";
import { uniqueViolation, unavailable, type StoreTarget } from "./errors.js";
import {
  AlreadyExistsError,
  ConflictError,
  NotFoundError,
  StoreUnavailableError,
  type DesiredState,
  type ListOptions,
  type ListPage,
  type PullFailure,
  type RecordPatch,
  type SandboxRecord,
  type SandboxStore,
} from "./types.js";

type Row = Selectable<SandboxesTable>;

/** Errors the store means; anything else thrown inside an operation is the database's and becomes unavailable. */
const OWN_ERRORS = [AlreadyExistsError, NotFoundError, ConflictError, StoreUnavailableError];

// SQLite reports a lost lock race as SQLITE_BUSY when two connections in one process migrate together (the
// busy handler blocks the thread the lock holder needs); a later attempt finds the work done.
const MIGRATE_ATTEMPTS = 5;

function toJson(value: unknown): string {
  return JSON.stringify(value) ?? "null";
}

function fromRow(row: Row): SandboxRecord {
  return {
    id: row.id,
    workspace: row.workspace,
    name: row.name,
    objectName: row.object_name,
    spec: JSON.parse(row.spec) as unknown,
    labels: JSON.parse(row.labels) as Record<string, string>,
    createdAtMs: Number(row.created_at_ms),
    desiredState: row.desired_state as DesiredState,
    failure: row.failure === null ? null : (JSON.parse(row.failure) as PullFailure),
    version: Number(row.version),
  };
}

export class KyselySandboxStore implements SandboxStore {
  readonly #db: Kysely<StoreSchema>;
  readonly #target: StoreTarget;
  #closed = false;

  constructor(db: Kysely<StoreSchema>, target: StoreTarget) {
    this.#db = db;
    this.#target = target;
  }

  /** Where the data lives, for logs (never includes the password). */
  get description(): string {
    return this.#target.description;
  }

  async #run<T>(operation: string, body: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      throw new StoreUnavailableError(
        `${this.#target.description}: ${operation} failed: the store is closed`,
      );
    }
    try {
      return await body();
    } catch (err) {
      if (OWN_ERRORS.some((type) => err instanceof type)) throw err;
      throw unavailable(this.#target, operation, err);
    }
  }

  migrate(): Promise<void> {
    return this.#run("migrate", async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await migrateToLatest(this.#db, this.#target.dialect);
        } catch (err) {
          const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
          const busy = typeof code === "string" && code.startsWith("SQLITE_BUSY");
          if (!busy || attempt === MIGRATE_ATTEMPTS) throw err;
          await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 80 * attempt));
        }
      }
    });
  }

  // Argument errors (RangeError, TypeError from JSON, InvalidPageTokenError) are thrown before #run, so they
  // reject as themselves instead of looking like an unavailable database.
  async create(record: Omit<SandboxRecord, "version">): Promise<SandboxRecord> {
    if (!Number.isSafeInteger(record.createdAtMs)) {
      throw new RangeError(`createdAtMs must be an integer of milliseconds, got ${record.createdAtMs}`);
    }
    const row = {
      id: record.id,
      workspace: record.workspace,
      name: record.name,
      object_name: record.objectName,
      spec: toJson(record.spec),
      labels: toJson(record.labels),
      created_at_ms: record.createdAtMs,
      desired_state: record.desiredState,
      failure: record.failure === null ? null : toJson(record.failure),
      version: 1,
    };
    return await this.#run("create", async () => {
      try {
        return fromRow(
          await this.#db.insertInto("sandboxes").values(row).returningAll().executeTakeFirstOrThrow(),
        );
      } catch (err) {
        const key = uniqueViolation(err);
        if (key === "id") throw new AlreadyExistsError(`sandbox id ${record.id} is already taken`);
        if (key === "name") {
          throw new AlreadyExistsError(
            `sandbox "${record.name}" already exists in workspace "${record.workspace}": pick another name or delete it first`,
          );
        }
        throw err;
      }
    });
  }

  getById(id: string): Promise<SandboxRecord | undefined> {
    return this.#run("getById", async () => {
      const row = await this.#db.selectFrom("sandboxes").selectAll().where("id", "=", id).executeTakeFirst();
      return row && fromRow(row);
    });
  }

  getByName(workspace: string, name: string): Promise<SandboxRecord | undefined> {
    return this.#run("getByName", async () => {
      const row = await this.#db
        .selectFrom("sandboxes")
        .selectAll()
        .where("workspace", "=", workspace)
        .where("name", "=", name)
        .executeTakeFirst();
      return row && fromRow(row);
    });
  }

  /** A condition true when the row's labels contain every pair of `wanted`. */
  #labelsContain(wanted: Readonly<Record<string, string>>): Expression<SqlBool> {
    if (this.#target.dialect === "postgres") {
      return sql<SqlBool>`${sql.ref("labels")}::jsonb @> ${toJson(wanted)}::jsonb`;
    }
    // json_each takes the key as a bound value, so label keys need no JSON-path quoting.
    const pairs = Object.entries(wanted).map(
      ([key, value]) =>
        sql<SqlBool>`exists (select 1 from json_each(${sql.ref("labels")}) where key = ${key} and value = ${value})`,
    );
    return sql<SqlBool>`(${sql.join(pairs, sql` and `)})`;
  }

  async list(options: ListOptions): Promise<ListPage> {
    const { workspace, labels, limit, pageToken } = options;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`list limit must be a positive integer, got ${limit}`);
    }
    const after = pageToken ? decodePageToken(pageToken) : undefined;
    return await this.#run("list", async () => {
      let query = this.#db.selectFrom("sandboxes").selectAll();
      if (workspace !== undefined) query = query.where("workspace", "=", workspace);
      if (labels && Object.keys(labels).length > 0) query = query.where(this.#labelsContain(labels));
      if (after) {
        query = query.where((eb) =>
          eb.or([
            eb("created_at_ms", ">", after.createdAtMs),
            eb.and([eb("created_at_ms", "=", after.createdAtMs), eb("id", ">", after.id)]),
          ]),
        );
      }
      // One row more than the page tells whether another page follows without a second query.
      const rows = await query
        .orderBy("created_at_ms")
        .orderBy("id")
        .limit(limit + 1)
        .execute();
      const records = rows.slice(0, limit).map(fromRow);
      const last = records.at(-1);
      return { records, nextPageToken: rows.length > limit && last ? encodePageToken(last) : "" };
    });
  }

  all(): Promise<SandboxRecord[]> {
    return this.#run("all", async () => {
      const rows = await this.#db
        .selectFrom("sandboxes")
        .selectAll()
        .orderBy("created_at_ms")
        .orderBy("id")
        .execute();
      return rows.map(fromRow);
    });
  }

  async update(id: string, patch: RecordPatch, expectedVersion?: number): Promise<SandboxRecord> {
    const changes: Updateable<SandboxesTable> = {};
    if (patch.desiredState !== undefined) changes.desired_state = patch.desiredState;
    if (patch.failure !== undefined) changes.failure = patch.failure === null ? null : toJson(patch.failure);
    if (patch.spec !== undefined) changes.spec = toJson(patch.spec);
    if (patch.labels !== undefined) changes.labels = toJson(patch.labels);
    return await this.#run("update", async () => {
      let query = this.#db
        .updateTable("sandboxes")
        .set((eb) => ({ ...changes, version: eb("version", "+", 1) }))
        .where("id", "=", id);
      if (expectedVersion !== undefined) query = query.where("version", "=", expectedVersion);
      const row = await query.returningAll().executeTakeFirst();
      if (row) return fromRow(row);
      // Nothing matched: tell a missing record from a stale version.
      const current = await this.#db
        .selectFrom("sandboxes")
        .select("version")
        .where("id", "=", id)
        .executeTakeFirst();
      if (!current) throw new NotFoundError(`sandbox id ${id} not found`);
      throw new ConflictError(
        `sandbox id ${id} is at version ${current.version}, not ${expectedVersion}: read it again and retry`,
      );
    });
  }

  delete(id: string): Promise<boolean> {
    return this.#run("delete", async () => {
      const result = await this.#db.deleteFrom("sandboxes").where("id", "=", id).executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }

  ping(timeoutMs: number): Promise<void> {
    return this.#run("ping", async () => {
      if (this.#target.dialect === "sqlite") return this.#pingSqlite(timeoutMs);
      const probe = sql`select 1`;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      });
      const answer = probe.execute(this.#db);
      answer.catch(() => {}); // it may fail after the timeout has already answered
      try {
        await Promise.race([answer, timeout]);
      } finally {
        clearTimeout(timer);
      }
    });
  }

  /**
   * Readable is not enough for SQLite: while another process holds the write lock, reads still work (WAL)
   * but every write fails after the busy timeout. So the probe takes the write lock and gives it back at
   * once, with a short busy timeout: better-sqlite3 is synchronous, and the wait blocks the event loop.
   */
  async #pingSqlite(timeoutMs: number): Promise<void> {
    const wait = Math.max(0, Math.min(timeoutMs, 500));
    await this.#db.connection().execute(async (db) => {
      await sql.raw(`pragma busy_timeout = ${wait}`).execute(db);
      try {
        await sql.raw("begin immediate").execute(db);
        await sql.raw("rollback").execute(db);
      } finally {
        await sql.raw(`pragma busy_timeout = ${this.#target.busyTimeoutMs ?? 5000}`).execute(db);
      }
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#db.destroy();
  }
}
