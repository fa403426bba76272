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

export const SHARED_MIGRATIONS: readonly SharedMigration[] = [
	{
		version: 5,
		name: "Sync sessions per management instance, with instance heartbeats",
		// A peer is connected while it holds a session; peers.connected is kept
		// equal to that by the writes that add and remove sessions (in the same
		// transaction, app/sessions.ts), so listings and the revision triggers
		// work as before. Sessions do not change a map themselves, so they move
		// no revision. No session survives the upgrade: every instance restarts.
		statements: ({ db, columnType, flag }) => [
			db.schema
				.createTable("management_instances")
				.addColumn("id", "text", (c) => c.primaryKey())
				.addColumn("started_at", columnType.ms, (c) => c.notNull())
				.addColumn("heartbeat_at", columnType.ms, (c) => c.notNull()),
			db.schema
				.createTable("sync_sessions")
				.addColumn("stream_id", "text", (c) => c.primaryKey())
				.addColumn("account_id", "text", (c) =>
					c.notNull().references("accounts.id").onDelete("cascade"),
				)
				.addColumn("peer_id", "text", (c) => c.notNull().references("peers.id").onDelete("cascade"))
				.addColumn("instance_id", "text", (c) =>
					c.notNull().references("management_instances.id").onDelete("cascade"),
				)
				.addColumn("since", columnType.ms, (c) => c.notNull()),
			db.schema.createIndex("sync_sessions_peer").on("sync_sessions").column("peer_id"),
			db.schema.createIndex("sync_sessions_instance").on("sync_sessions").column("instance_id"),
			db
				.updateTable("peers")
				.set({ connected: flag(false) })
				.where("connected", "=", flag(true)),
		],
	},
];

/** The schema version a store is at once every migration is applied. */
export const LATEST_SCHEMA_VERSION = SHARED_MIGRATIONS.at(-1)?.version ?? BASELINE_VERSION;
