import type { Compilable } from "kysely";
import type { SqlDialect } from "./dialect.js";

// Migrations both backends share, from version 5 on. Up to version 4 the
// SQLite schema grew by hand-written SQL (sqlite/migrations.ts, kept so that
// existing files keep upgrading); PostgreSQL starts from one baseline equal to
// SQLite's version 4 (postgres/migrations.ts). From there a change is written
// once here, with kysely's schema builder on `dialect.db.schema`, and each
// backend compiles and applies it in its own migration transaction.
//
// Append only: never edit a migration that has shipped; add a new one. Use
// `dialect.columnType` for times (BIGINT milliseconds), bytes and flags.
// A table whose rows change what an account's network map is must also move
// `accounts.revision`: add the triggers for it to both backends' trigger
// helpers in the same migration (store/README.md, "Account revision").

export interface SharedMigration {
	version: number;
	name: string;
	/** The statements, in order, built for `dialect`. */
	statements(dialect: SqlDialect): Compilable[];
}

/** The version both schemas are equal at before the shared migrations. */
export const BASELINE_VERSION = 4;

export const SHARED_MIGRATIONS: readonly SharedMigration[] = [];
