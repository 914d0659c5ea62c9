// Turns driver errors (better-sqlite3, pg, sockets) into the store's own errors with one-line messages that
// name the database but never its password.

import { StoreUnavailableError } from "./types.js";
import type { StoreDialect } from "./schema.js";

/** Which database a store talks to, for messages. */
export interface StoreTarget {
  readonly dialect: StoreDialect;
  /** e.g. `SQLite /var/lib/openshell/openshell.db` or `PostgreSQL openshell@db:5432/openshell`. */
  readonly description: string;
  /** Strings that must never appear in a message (the password, raw and URL-decoded). */
  readonly secrets: readonly string[];
  /** SQLite's busy timeout, quoted when a write gave up waiting for a lock. */
  readonly busyTimeoutMs?: number;
}

interface DriverError {
  message?: unknown;
  code?: unknown;
  constraint?: unknown;
  errors?: unknown;
}

function fields(err: unknown): DriverError {
  return typeof err === "object" && err !== null ? err : {};
}

/** The key a unique violation hit, or undefined when `err` is something else. */
export function uniqueViolation(err: unknown): "id" | "name" | undefined {
  const { code, constraint } = fields(err);
  if (code === "SQLITE_CONSTRAINT_PRIMARYKEY") return "id";
  if (code === "SQLITE_CONSTRAINT_UNIQUE") return "name";
  if (code === "23505") return constraint === "sandboxes_pkey" ? "id" : "name";
  return undefined;
}

function reasonOf(err: unknown, target: StoreTarget): string {
  const { message, code, errors } = fields(err);
  let text = typeof message === "string" ? message : "";
  // Connecting to a name with several addresses fails with an AggregateError whose own message is empty.
  if (text === "" && Array.isArray(errors)) {
    text = [...new Set(errors.map((e) => reasonOf(e, target)))].join("; ");
  }
  if (text === "") text = typeof code === "string" ? code : String(err);
  if (typeof code === "string" && !text.includes(code)) text += ` (${code})`;
  if (typeof code === "string" && code.startsWith("SQLITE_BUSY") && target.busyTimeoutMs !== undefined) {
    text += `: another connection held the lock for longer than the ${target.busyTimeoutMs} ms busy timeout`;
  }
  return text;
}

export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret !== "") out = out.split(secret).join("***");
  return out;
}

/** `<database>: <operation> failed: <driver's reason>`, on one line. */
export function unavailable(target: StoreTarget, operation: string, err: unknown): StoreUnavailableError {
  const reason = reasonOf(err, target).replace(/\s+/g, " ").trim();
  return new StoreUnavailableError(
    redact(`${target.description}: ${operation} failed: ${reason}`, target.secrets),
  );
}
