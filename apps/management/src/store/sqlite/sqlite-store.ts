import { AsyncLocalStorage } from "node:async_hooks";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import type { CompiledQuery } from "kysely";
import { SingleReads } from "../single-reads.js";
import { sqliteDialect } from "../sql/dialect.js";
import { SHARED_MIGRATIONS, type SharedMigration } from "../sql/migrations.js";
import { type QueryRunner, SqlReader, SqlWriter } from "../sql/queries.js";
import type { Row } from "../sql/rows.js";
import {
	StoreConflictError,
	type StoreReader,
	StoreReferenceError,
	type StoreWriter,
} from "../store.js";
import { MIGRATIONS } from "./migrations.js";

/** How long a write waits for another connection (process) to release the file's write lock. */
const WRITE_LOCK_WAIT_MS = 10_000;

/**
 * Executes the shared queries (../sql/queries.ts) on the connection, inside
 * whatever transaction the store has open. Prepared statements are cached
 * per SQL text: the compiled text of a query is the same on every call.
 */
class SqliteRunner implements QueryRunner {
	private readonly statements = new Map<string, Database.Statement>();

	constructor(private readonly db: Database.Database) {}

	private statement(text: string): Database.Statement {
		let s = this.statements.get(text);
		if (!s) {
			s = this.db.prepare(text);
			this.statements.set(text, s);
		}
		return s;
	}

	async rows(query: CompiledQuery): Promise<Row[]> {
		return this.statement(query.sql).all(...query.parameters) as Row[];
	}

	async run(query: CompiledQuery): Promise<number> {
		try {
			return this.statement(query.sql).run(...query.parameters).changes;
		} catch (err) {
			translate(err);
		}
	}
}

/** Turns constraint failures into the store's errors; anything else is re-thrown. */
function translate(err: unknown): never {
	const code = (err as { code?: unknown }).code;
	if (code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
		throw new StoreConflictError((err as Error).message);
	}
	if (code === "SQLITE_CONSTRAINT_FOREIGNKEY") {
		throw new StoreReferenceError("the change names a row that does not exist");
	}
	throw err;
}

/**
 * SQLite (better-sqlite3) store: one file, WAL mode, versioned migrations.
 *
 * better-sqlite3 is synchronous but `read`/`write` callbacks are async: while
 * one awaits, another caller could run statements on the same connection and
 * land inside the open transaction. So every transaction of an instance runs
 * alone, in call order, through `queue`; reads are DEFERRED transactions (in
 * WAL mode their first SELECT fixes one snapshot), writes are IMMEDIATE
 * (they take the file's write lock first, which also serializes them with
 * other connections and processes on the same file).
 */
export class SqliteStore extends SingleReads {
	private readonly db: Database.Database;
	private readonly reader: SqlReader;
	private readonly writer: SqlWriter;
	private queue: Promise<unknown> = Promise.resolve();
	private closing = false;
	private readonly inside = new AsyncLocalStorage<true>();

	private constructor(db: Database.Database) {
		super();
		this.db = db;
		const runner = new SqliteRunner(db);
		this.reader = new SqlReader(sqliteDialect, runner);
		this.writer = new SqlWriter(sqliteDialect, runner);
	}

	/** Opens (creating if needed) the database file and applies pending migrations. */
	static open(path: string, shared: readonly SharedMigration[] = SHARED_MIGRATIONS): SqliteStore {
		if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
		const db = new Database(path);
		db.pragma("journal_mode = WAL");
		db.pragma("synchronous = NORMAL");
		db.pragma("foreign_keys = ON");
		// Several processes may share the file (two management instances, the
		// CLI); short waits for their locks block, the write lock is awaited.
		db.pragma("busy_timeout = 5000");
		migrate(db, shared);
		return new SqliteStore(db);
	}

	/** The highest migration applied to the file. */
	schemaVersion(): number {
		const row = this.db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as Row;
		return Number(row.v ?? 0);
	}

	/** Lets the transactions already asked for finish, refuses new ones, then closes the file. */
	async close(): Promise<void> {
		this.closing = true;
		await this.queue;
		if (this.db.open) this.db.close();
	}

	read<T>(fn: (tx: StoreReader) => Promise<T>): Promise<T> {
		return this.exclusive(async () => {
			this.db.exec("BEGIN DEFERRED");
			return this.finish(fn(this.reader));
		});
	}

	write<T>(fn: (tx: StoreWriter) => Promise<T>): Promise<T> {
		return this.exclusive(async () => {
			await this.beginImmediate();
			return this.finish(fn(this.writer));
		});
	}

	private async finish<T>(work: Promise<T>): Promise<T> {
		try {
			const result = await work;
			this.db.exec("COMMIT");
			return result;
		} catch (err) {
			if (this.db.inTransaction) this.db.exec("ROLLBACK");
			throw err;
		}
	}

	/** Runs `job` after every earlier transaction of this instance has finished. */
	private exclusive<T>(job: () => Promise<T>): Promise<T> {
		if (this.inside.getStore()) {
			return Promise.reject(
				new Error("store.read/write called inside a transaction: use the transaction's reads"),
			);
		}
		if (this.closing) return Promise.reject(new Error("the store is closed"));
		const run = this.queue.then(() => this.inside.run(true, job));
		this.queue = run.catch(() => undefined);
		return run;
	}

	/**
	 * Takes the file's write lock without blocking the event loop: another
	 * connection in this process may hold it while it awaits, and a blocking
	 * wait (busy_timeout) would keep that holder from ever finishing.
	 */
	private async beginImmediate(): Promise<void> {
		const deadline = Date.now() + WRITE_LOCK_WAIT_MS;
		let pause = 1;
		this.db.pragma("busy_timeout = 0");
		try {
			for (;;) {
				try {
					this.db.exec("BEGIN IMMEDIATE");
					return;
				} catch (err) {
					if ((err as { code?: unknown }).code !== "SQLITE_BUSY" || Date.now() > deadline)
						throw err;
				}
				await sleep(pause + Math.random() * pause);
				pause = Math.min(pause * 2, 50);
			}
		} finally {
			this.db.pragma("busy_timeout = 5000");
		}
	}
}

/**
 * Applies SQLite's own migrations (1-4, SQL text) and then the shared ones
 * (../sql/migrations.ts, compiled for SQLite), each in one IMMEDIATE
 * transaction: another instance on the same file waits for the write lock
 * and then finds the version applied.
 */
function migrate(db: Database.Database, shared: readonly SharedMigration[]): void {
	db.exec(
		"CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
	);
	const applied = new Set(
		(db.prepare("SELECT version FROM schema_migrations").all() as Row[]).map((r) =>
			Number(r.version),
		),
	);
	const appliedNow = db.prepare("SELECT 1 FROM schema_migrations WHERE version = ?");
	const steps = [
		...MIGRATIONS.map((m) => ({ ...m, apply: () => db.exec(m.sql) })),
		...shared.map((m) => ({
			version: m.version,
			name: m.name,
			apply: () => {
				for (const statement of m.statements(sqliteDialect)) {
					const q = statement.compile();
					db.prepare(q.sql).run(...q.parameters);
				}
			},
		})),
	];
	for (const m of steps) {
		if (applied.has(m.version)) continue;
		db.transaction(() => {
			// Another instance starting on the same file may have applied it
			// while this one waited for the write lock (its ALTER TABLE would fail).
			if (appliedNow.get(m.version)) return;
			m.apply();
			db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(
				m.version,
				m.name,
				Date.now(),
			);
		}).immediate();
	}
}
