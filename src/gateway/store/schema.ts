// The tables and their migrations. Migrations live in code (not files read at runtime) so the compiled gateway
// carries its schema with it; Kysely's Migrator records what ran and serialises gateways that start together.

import { inspect } from "node:util";
import { Migrator, sql, type ColumnType, type Kysely, type Migration } from "kysely";

export type StoreDialect = "sqlite" | "postgres";

export interface SandboxesTable {
  id: string;
  workspace: string;
  name: string;
  object_name: string;
  /** JSON text. */
  spec: string;
  /** JSON text: an object of string values. */
  labels: string;
  /** bigint; pg returns int8 as a string, SQLite as a number. */
  created_at_ms: ColumnType<number | string, number, number>;
  desired_state: string;
  /** JSON text, or NULL when there is no failure. */
  failure: string | null;
  version: number;
}

export interface StoreSchema {
  sandboxes: SandboxesTable;
}

function migrations(dialect: StoreDialect): Record<string, Migration> {
  return {
    "0001_sandboxes": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("sandboxes")
          // Byte order for ids on PostgreSQL too, so (created_at_ms, id) pages the same way as on SQLite
          // whatever the database's locale.
          .addColumn("id", "text", (col) =>
            dialect === "postgres" ? col.modifyFront(sql`collate "C"`).notNull() : col.notNull(),
          )
          .addColumn("workspace", "text", (col) => col.notNull())
          .addColumn("name", "text", (col) => col.notNull())
          .addColumn("object_name", "text", (col) => col.notNull())
          .addColumn("spec", "text", (col) => col.notNull())
          .addColumn("labels", "text", (col) => col.notNull())
          .addColumn("created_at_ms", "bigint", (col) => col.notNull())
          .addColumn("desired_state", "text", (col) => col.notNull())
          .addColumn("failure", "text")
          .addColumn("version", "integer", (col) => col.notNull())
          // Named, so a unique violation says which key it hit on both dialects.
          .addPrimaryKeyConstraint("sandboxes_pkey", ["id"])
          .addUniqueConstraint("sandboxes_workspace_name_key", ["workspace", "name"])
          .execute();
        await db.schema
          .createIndex("sandboxes_created_at_ms_id_idx")
          .on("sandboxes")
          .columns(["created_at_ms", "id"])
          .execute();
        // Listing one workspace walks this index in page order instead of sorting the workspace.
        await db.schema
          .createIndex("sandboxes_workspace_created_at_ms_id_idx")
          .on("sandboxes")
          .columns(["workspace", "created_at_ms", "id"])
          .execute();
      },
    },
  };
}

/** Runs pending migrations; throws the first failure (the Migrator itself never throws). */
export async function migrateToLatest(db: Kysely<StoreSchema>, dialect: StoreDialect): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: () => Promise.resolve(migrations(dialect)) },
    migrationTableName: "openshell_migration",
    migrationLockTableName: "openshell_migration_lock",
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error === undefined) return;
  const failed = results?.find((r) => r.status === "Error")?.migrationName;
  const reason = error instanceof Error ? error : new Error(inspect(error));
  if (failed) reason.message = `migration ${failed}: ${reason.message}`;
  throw reason;
}
