// Opens the gateway's database: SQLite in the data directory by default, a given SQLite file with sqlite:PATH,
// or PostgreSQL with postgres://. Only the connection differs; the store's queries are the same for both.

import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import {
  CompiledQuery,
  Kysely,
  PostgresDialect,
  SqliteAdapter,
  SqliteDialect,
  SqliteDriver,
  type DatabaseConnection,
  type SqliteDialectConfig,
} from "kysely";
import { redact, unavailable, type StoreTarget } from "./errors.js";
import type { StoreSchema } from "./schema.js";
import { KyselySandboxStore } from "./sandbox-store.js";
import { StoreUnavailableError } from "./types.js";

export { InvalidPageTokenError } from "./page-token.js";
export { KyselySandboxStore } from "./sandbox-store.js";

export interface OpenStoreOptions {
  /** `""` (SQLite in dataDir), `sqlite:PATH`, or `postgres://user:password@host:port/database`. */
  readonly dbUrl: string;
  /** Holds `openshell.db` when dbUrl is empty; created 0700 if missing. */
  readonly dataDir: string;
  /** SQLite: how long a statement waits for another connection's lock before failing. Default 5000. */
  readonly busyTimeoutMs?: number;
  /** PostgreSQL: how long to wait for a new connection. Default 5000. */
  readonly connectTimeoutMs?: number;
  /** PostgreSQL: client-side limit for one query, so a server that stops answering cannot hang a call. Default 30000. */
  readonly queryTimeoutMs?: number;
  /** PostgreSQL: pool size. Default 10. */
  readonly maxConnections?: number;
}

export const SQLITE_FILE_NAME = "openshell.db";

/**
 * Opens the store without touching a PostgreSQL server (the first query connects, and a pool reconnects after
 * outages); call migrate() next. Throws StoreUnavailableError when the SQLite file cannot be opened or the URL
 * cannot be used.
 */
export function openStore(options: OpenStoreOptions): KyselySandboxStore {
  const { dbUrl } = options;
  if (dbUrl.startsWith("postgres://") || dbUrl.startsWith("postgresql://")) return openPostgres(options);
  if (dbUrl === "") {
    if (options.dataDir === "") {
      throw new StoreUnavailableError("no database configured: set the data directory or a database URL");
    }
    try {
      mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new StoreUnavailableError(
        `data directory ${resolve(options.dataDir)} cannot be created: ${(err as Error).message}`,
      );
    }
    return openSqlite(join(options.dataDir, SQLITE_FILE_NAME), options);
  }
  if (dbUrl.startsWith("sqlite:") && dbUrl.length > "sqlite:".length) {
    return openSqlite(dbUrl.slice("sqlite:".length), options);
  }
  // Not echoed: a malformed URL may still hold a password.
  throw new StoreUnavailableError(
    "database URL must be sqlite:PATH or postgres://user:password@host:port/database",
  );
}

/** SQLite transactions take the write lock at BEGIN: a deferred one that read first fails at once (SQLITE_BUSY
 * without waiting) when another connection wrote meanwhile, while BEGIN IMMEDIATE waits out the busy timeout. */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("begin immediate"));
  }
}

/** Kysely runs SQLite migrations outside a transaction by default; SQLite can roll DDL back, so a migration
 * that fails halfway leaves nothing behind, and BEGIN IMMEDIATE is the cross-process migration lock. */
class TransactionalSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class GatewaySqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;
  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }
  override createDriver(): SqliteDriver {
    return new ImmediateSqliteDriver(this.#config);
  }
  override createAdapter(): SqliteAdapter {
    return new TransactionalSqliteAdapter();
  }
}

function openSqlite(path: string, options: OpenStoreOptions): KyselySandboxStore {
  const file = path === ":memory:" ? path : resolve(path);
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  const target: StoreTarget = {
    dialect: "sqlite",
    description: `SQLite ${file}`,
    secrets: [],
    busyTimeoutMs,
  };
  let database: Database.Database | undefined;
  try {
    // `timeout` is SQLite's busy timeout. better-sqlite3 is synchronous, so a wait blocks the event loop;
    // only another process (or connection) holding the write lock makes it wait.
    database = new Database(file, { timeout: busyTimeoutMs });
    database.pragma("journal_mode = WAL");
    database.pragma("foreign_keys = ON");
  } catch (err) {
    database?.close();
    throw unavailable(target, "open", err);
  }
  return new KyselySandboxStore(
    new Kysely<StoreSchema>({ dialect: new GatewaySqliteDialect({ database }) }),
    target,
  );
}

function postgresTarget(dbUrl: string): StoreTarget {
  let url: URL;
  try {
    url = new URL(dbUrl);
  } catch {
    throw new StoreUnavailableError(
      "database URL is not a valid postgres://user:password@host:port/database URL (not shown: it may hold a password)",
    );
  }
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const user = decode(url.username);
  const host = url.searchParams.get("host") ?? (url.hostname || "localhost");
  const database = decode(url.pathname.replace(/^\//, "")) || user;
  const secrets = url.password === "" ? [] : [url.password, decode(url.password)];
  const description = `PostgreSQL ${user ? `${user}@` : ""}${host}:${url.port || "5432"}/${database}`;
  return { dialect: "postgres", description: redact(description, secrets), secrets };
}

function openPostgres(options: OpenStoreOptions): KyselySandboxStore {
  const target = postgresTarget(options.dbUrl);
  let pool: pg.Pool;
  try {
    pool = new pg.Pool({
      connectionString: options.dbUrl,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      query_timeout: options.queryTimeoutMs ?? 30_000,
      max: options.maxConnections ?? 10,
      keepAlive: true,
      application_name: "openshell-gateway",
    });
  } catch (err) {
    throw unavailable(target, "open", err);
  }
  // A client whose server went away emits 'error'; unhandled, that would crash the gateway. The pool drops
  // broken clients, and the next query reports the outage as StoreUnavailableError.
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  return new KyselySandboxStore(new Kysely<StoreSchema>({ dialect: new PostgresDialect({ pool }) }), target);
}
