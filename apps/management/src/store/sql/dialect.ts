import {
	DummyDriver,
	Kysely,
	PostgresAdapter,
	PostgresIntrospector,
	PostgresQueryCompiler,
	SqliteAdapter,
	SqliteIntrospector,
	SqliteQueryCompiler,
} from "kysely";
import type { Flag, StoreSchema } from "./schema.js";

/**
 * What the shared queries (queries.ts, migrations.ts) need to know of a
 * backend's SQL. `db` only builds and compiles queries (its driver is a
 * dummy): the backend executes them on its own connections, inside its own
 * transactions (sqlite/, postgres/).
 */
export interface SqlDialect {
	readonly name: "sqlite" | "postgres";
	readonly db: Kysely<StoreSchema>;
	/** A boolean as the dialect stores it. */
	flag(value: boolean): Flag;
	/**
	 * The column that orders rows of equal creation time by insertion:
	 * SQLite's implicit rowid; PostgreSQL's tables that need it have a `seq`
	 * identity column (postgres/migrations.ts).
	 */
	readonly insertionOrder: "rowid" | "seq";
	/** Column types for shared migrations (migrations.ts) written with kysely's schema builder. */
	readonly columnType: {
		/** Epoch milliseconds and counters. */
		readonly ms: "bigint";
		readonly bytes: "blob" | "bytea";
		readonly flag: "integer" | "boolean";
	};
}

export const sqliteDialect: SqlDialect = {
	name: "sqlite",
	db: new Kysely<StoreSchema>({
		dialect: {
			createAdapter: () => new SqliteAdapter(),
			createDriver: () => new DummyDriver(),
			createIntrospector: (db) => new SqliteIntrospector(db),
			createQueryCompiler: () => new SqliteQueryCompiler(),
		},
	}),
	flag: (value) => (value ? 1 : 0),
	insertionOrder: "rowid",
	columnType: { ms: "bigint", bytes: "blob", flag: "integer" },
};

export const postgresDialect: SqlDialect = {
	name: "postgres",
	db: new Kysely<StoreSchema>({
		dialect: {
			createAdapter: () => new PostgresAdapter(),
			createDriver: () => new DummyDriver(),
			createIntrospector: (db) => new PostgresIntrospector(db),
			createQueryCompiler: () => new PostgresQueryCompiler(),
		},
	}),
	flag: (value) => value,
	insertionOrder: "seq",
	columnType: { ms: "bigint", bytes: "bytea", flag: "boolean" },
};
