import { type Compilable, CompiledQuery, type CreateTableBuilder } from "kysely";
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
	{
		version: 6,
		name: "Routes and networks (resources, routers), moving the account revision",
		// Group lists (peer_groups, groups, access_control_groups) are JSON
		// text, like a policy's rules and a user's auto_groups: they are read
		// and written whole with their row, the rule that a group in use cannot
		// be deleted is core's (core/group-rules.ts) as for policies, and no
		// query selects by member. Routing peers (peer_id) are plain ids: what
		// deleting a peer does to them is a domain rule (core/route-rules.ts),
		// applied by app/peers.ts in the same transaction. Resources and
		// routers belong to their network (deleted with it, explicitly, in
		// queries.ts, so that every deleted row moves the revision the same
		// way on both backends).
		statements: (dialect) => {
			const { db, columnType } = dialect;
			/** PostgreSQL lists "in creation order" by a `seq` identity column; SQLite by rowid. */
			const ordered = <T extends string>(t: CreateTableBuilder<T, never>) =>
				dialect.insertionOrder === "seq"
					? t.addColumn("seq", "bigint", (c) => c.generatedByDefaultAsIdentity())
					: t;
			const owned = <T extends string>(t: CreateTableBuilder<T, never>) =>
				t
					.addColumn("id", "text", (c) => c.primaryKey())
					.addColumn("account_id", "text", (c) =>
						c.notNull().references("accounts.id").onDelete("cascade"),
					);
			return [
				ordered(
					owned(db.schema.createTable("routes"))
						.addColumn("network_id", "text", (c) => c.notNull())
						.addColumn("description", "text", (c) => c.notNull())
						.addColumn("enabled", columnType.flag, (c) => c.notNull())
						.addColumn("peer_id", "text")
						.addColumn("peer_groups", "text", (c) => c.notNull())
						.addColumn("network", "text", (c) => c.notNull())
						.addColumn("metric", "integer", (c) => c.notNull())
						.addColumn("masquerade", columnType.flag, (c) => c.notNull())
						.addColumn("groups", "text", (c) => c.notNull())
						.addColumn("keep_route", columnType.flag, (c) => c.notNull())
						.addColumn("access_control_groups", "text", (c) => c.notNull())
						.addColumn("skip_auto_apply", columnType.flag, (c) => c.notNull()),
				),
				db.schema.createIndex("routes_account").on("routes").column("account_id"),
				ordered(
					owned(db.schema.createTable("networks"))
						.addColumn("name", "text", (c) => c.notNull())
						.addColumn("description", "text", (c) => c.notNull()),
				),
				db.schema.createIndex("networks_account").on("networks").column("account_id"),
				ordered(
					owned(db.schema.createTable("network_resources"))
						.addColumn("network_id", "text", (c) =>
							c.notNull().references("networks.id").onDelete("cascade"),
						)
						.addColumn("name", "text", (c) => c.notNull())
						.addColumn("description", "text", (c) => c.notNull())
						.addColumn("address", "text", (c) => c.notNull())
						.addColumn("type", "text", (c) => c.notNull())
						.addColumn("prefix", "text", (c) => c.notNull())
						.addColumn("enabled", columnType.flag, (c) => c.notNull())
						.addColumn("groups", "text", (c) => c.notNull()),
				),
				db.schema
					.createIndex("network_resources_account")
					.on("network_resources")
					.column("account_id"),
				db.schema
					.createIndex("network_resources_network")
					.on("network_resources")
					.column("network_id"),
				ordered(
					owned(db.schema.createTable("network_routers"))
						.addColumn("network_id", "text", (c) =>
							c.notNull().references("networks.id").onDelete("cascade"),
						)
						.addColumn("peer_id", "text")
						.addColumn("peer_groups", "text", (c) => c.notNull())
						.addColumn("metric", "integer", (c) => c.notNull())
						.addColumn("masquerade", columnType.flag, (c) => c.notNull())
						.addColumn("enabled", columnType.flag, (c) => c.notNull()),
				),
				db.schema.createIndex("network_routers_account").on("network_routers").column("account_id"),
				db.schema.createIndex("network_routers_network").on("network_routers").column("network_id"),
				...revisionTriggers(dialect, [
					"routes",
					"networks",
					"network_resources",
					"network_routers",
				]),
			];
		},
	},
];

/**
 * The row triggers that move `accounts.revision` on every insert, update
 * and delete of `tables` (each has `account_id`), one step per row, as the
 * triggers of migration 4 (SQLite) and of PostgreSQL's baseline do, reusing
 * the baseline's `starling_bump_revision()`.
 */
function revisionTriggers(dialect: SqlDialect, tables: readonly string[]): Compilable[] {
	const raw = (text: string): Compilable => ({ compile: () => CompiledQuery.raw(text) });
	return tables.flatMap((table) =>
		dialect.name === "postgres"
			? [
					raw(
						`CREATE TRIGGER ${table}_revision AFTER INSERT OR UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION starling_bump_revision()`,
					),
				]
			: (["INSERT", "UPDATE", "DELETE"] as const).map((op) =>
					raw(
						`CREATE TRIGGER ${table}_${op.toLowerCase()}_revision AFTER ${op} ON ${table} BEGIN UPDATE accounts SET revision = revision + 1 WHERE id = ${op === "DELETE" ? "OLD" : "NEW"}.account_id; END`,
					),
				),
	);
}

/** The schema version a store is at once every migration is applied. */
export const LATEST_SCHEMA_VERSION = SHARED_MIGRATIONS.at(-1)?.version ?? BASELINE_VERSION;
