// Which store the management tests run on: SQLite files (the default) or,
// with STARLING_TEST_STORE=postgres (`pnpm test:postgres`), a fresh database
// per data directory on the PostgreSQL cluster that
// test/postgres-global-setup.ts starts for the run.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { inject } from "vitest";
import { PostgresInspector } from "../src/store/postgres/inspect.js";
import { PostgresStore } from "../src/store/postgres/postgres-store.js";
import * as sqliteInspect from "../src/store/sqlite/inspect.js";
import { SqliteStore } from "../src/store/sqlite/sqlite-store.js";
import type { Store } from "../src/store/store.js";

export const TEST_STORE: "sqlite" | "postgres" =
	process.env.STARLING_TEST_STORE === "postgres" ? "postgres" : "sqlite";

declare module "vitest" {
	export interface ProvidedContext {
		/** The test cluster's maintenance database (STARLING_TEST_STORE=postgres). */
		postgresAdminDsn: string;
		/** A database already migrated, copied for each test's database. */
		postgresTemplate: string;
	}
}

/** One database per data directory: a management restarted on the same directory finds its data. */
const databases = new Map<string, string>();
let counter = 0;

async function databaseFor(dataDir: string): Promise<string> {
	const known = databases.get(dataDir);
	if (known) return known;
	const admin = inject("postgresAdminDsn");
	if (!admin) {
		throw new Error("STARLING_TEST_STORE=postgres needs the cluster of `pnpm test:postgres`");
	}
	counter += 1;
	const name = `m${process.pid}_${counter}_${Date.now().toString(36)}`;
	const client = new pg.Client({ connectionString: admin });
	await client.connect();
	try {
		// A copy of the migrated template the global setup made: no migration per test.
		await client.query(`CREATE DATABASE "${name}" TEMPLATE "${inject("postgresTemplate")}"`);
	} finally {
		await client.end();
	}
	const url = new URL(admin);
	url.pathname = `/${name}`;
	databases.set(dataDir, url.toString());
	return url.toString();
}

/** The STARLING_* variables that put a management on the test store of `dataDir`. */
export async function testStoreEnv(dataDir: string): Promise<Record<string, string>> {
	if (TEST_STORE === "sqlite") return {};
	return { STARLING_STORE: "postgres", STARLING_POSTGRES_DSN: await databaseFor(dataDir) };
}

/** A store of the test backend for `dataDir`, with test-only inspection of what it holds. */
export interface TestStoreHandle {
	store: Store;
	/** Another instance on the same database (a second management process). */
	openAnother(): Promise<Store>;
	count(table: string): Promise<number>;
	dump(): Promise<Record<string, Record<string, unknown>[]>>;
	/** Whether `needle` is stored anywhere (SQLite: the bytes of the files; PostgreSQL: every value). */
	contains(needle: string): Promise<boolean>;
	/** Closes the store and what inspected it. */
	close(): Promise<void>;
}

export async function openTestStore(dataDir: string): Promise<TestStoreHandle> {
	if (TEST_STORE === "sqlite") {
		const path = join(dataDir, "m.db");
		const store = SqliteStore.open(path);
		return {
			store,
			close: () => store.close(),
			openAnother: async () => SqliteStore.open(path),
			count: async (table) => sqliteInspect.countRows(path, table),
			dump: async () => sqliteInspect.dumpRows(path),
			async contains(needle) {
				sqliteInspect.checkpoint(path);
				const bytes = Buffer.from(needle, "utf8");
				return readdirSync(dataDir).some((f) => readFileSync(join(dataDir, f)).includes(bytes));
			},
		};
	}
	const dsn = await databaseFor(dataDir);
	const store = await PostgresStore.open(dsn, { poolSize: 4 });
	const inspector = new PostgresInspector(dsn);
	return {
		store,
		openAnother: () => PostgresStore.open(dsn, { poolSize: 4 }),
		count: (table) => inspector.countRows(table),
		dump: () => inspector.dumpRows(),
		contains: (needle) => inspector.databaseContains(needle),
		async close() {
			await inspector.close();
			await store.close();
		},
	};
}
