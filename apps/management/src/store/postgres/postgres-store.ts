import { AsyncLocalStorage } from "node:async_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { CompiledQuery } from "kysely";
import pg from "pg";
import { SingleReads } from "../single-reads.js";
import { postgresDialect } from "../sql/dialect.js";
import { BASELINE_VERSION, SHARED_MIGRATIONS, type SharedMigration } from "../sql/migrations.js";
import { type QueryRunner, SqlReader, SqlWriter } from "../sql/queries.js";
import type { Row } from "../sql/rows.js";
import {
	StoreConflictError,
	type StoreReader,
	StoreReferenceError,
	StoreUnavailableError,
	type StoreWriter,
	type WriteOptions,
} from "../store.js";
import { isConnectionFailure, isSerializationFailure, sqlState } from "./errors.js";
import { POSTGRES_BASELINE } from "./migrations.js";

/** How many times a write runs `fn` before giving up on serialization failures. */
export const MAX_WRITE_ATTEMPTS = 40;
/** How many times a write that hit a unique constraint runs before the conflict is final. */
export const UNIQUE_RACE_ATTEMPTS = 5;

const WRITE_BEGIN = "BEGIN ISOLATION LEVEL SERIALIZABLE";
/**
 * Turns in arrival order: at most `size` holders at a time. The store hands
 * out pool connections through it, so a caller waits here, in this process,
 * rather than in the pool, whose wait counts against the connect timeout:
 * a busy pool (a burst of logins) must never read as "PostgreSQL is
 * unreachable".
 */
class Turns {
	private active = 0;
	private readonly waiting: Array<() => void> = [];

	constructor(private readonly size: number) {}

	/** Waits for a turn; an `urgent` caller goes before everyone waiting. */
	async take(urgent = false): Promise<() => void> {
		if (this.active < this.size) this.active += 1;
		else
			await new Promise<void>((resolve) =>
				urgent ? this.waiting.unshift(resolve) : this.waiting.push(resolve),
			);
		let given = false;
		return () => {
			if (given) return;
			given = true;
			const next = this.waiting.shift();
			if (next) next();
			else this.active -= 1;
		};
	}
}

/** Held while migrating, so instances starting together migrate one after the other. */
const MIGRATION_LOCK = 0x5354_4d47; // "STMG"
const CONNECT_TIMEOUT_MS = 5_000;
/** No statement holds a connection longer: a hung database answers 503, not a hang. */
const STATEMENT_TIMEOUT_MS = 15_000;

export interface PostgresStoreOptions {
	/** Connections in the pool (default 10). */
	poolSize?: number;
	/**
	 * Told once per change: the database became unreachable (with why) or
	 * reachable again. Management logs it; no call per failed attempt.
	 */
	onAvailabilityChange?: (available: boolean, detail: string) => void;
	/** Longest wait for a new connection (default 5 s). */
	connectTimeoutMs?: number;
	/** Longest a statement may run (default 15 s); the driver gives up 2 s later if the server is silent. */
	statementTimeoutMs?: number;
	/** Migrations after the baseline (tests pass their own). */
	sharedMigrations?: readonly SharedMigration[];
}

/** "host:port" of a DSN, for messages (never the DSN itself: it may hold a password). */
export function serverOf(dsn: string): string {
	const url = new URL(dsn);
	return `${url.hostname || "localhost"}:${url.port || "5432"}`;
}

/** Executes the shared queries on one pooled client, inside its open transaction. */
class PostgresRunner implements QueryRunner {
	/** Set once a statement of this attempt failed to serialize: the whole attempt is retried. */
	serializationFailed = false;
	/**
	 * Set once a statement of this attempt hit a unique constraint. Under
	 * SERIALIZABLE, PostgreSQL reports a race of two inserts of the same key
	 * (two instances giving a new peer the same free address) as a unique
	 * violation rather than a serialization failure: the attempt is run
	 * again a few times on a fresh snapshot, where the use case sees the
	 * other row and chooses again. A key that is really taken stays taken
	 * and surfaces as StoreConflictError after those attempts.
	 */
	uniqueViolated = false;

	constructor(private readonly client: pg.PoolClient) {}

	private async query(query: CompiledQuery): Promise<pg.QueryResult> {
		try {
			return await this.client.query({ text: query.sql, values: query.parameters as unknown[] });
		} catch (err) {
			if (isSerializationFailure(err)) this.serializationFailed = true;
			const code = sqlState(err);
			if (code === "23505") {
				this.uniqueViolated = true;
				throw new StoreConflictError((err as Error).message);
			}
			if (code === "23503") {
				throw new StoreReferenceError("the change names a row that does not exist");
			}
			throw err;
		}
	}

	async rows(query: CompiledQuery): Promise<Row[]> {
		return (await this.query(query)).rows as Row[];
	}

	async run(query: CompiledQuery): Promise<number> {
		return (await this.query(query)).rowCount ?? 0;
	}
}

/**
 * PostgreSQL (pg) store: a connection pool; `read` is a REPEATABLE READ READ
 * ONLY transaction, `write` a SERIALIZABLE one that runs `fn` again after a
 * serialization failure or deadlock (other instances write the same rows), at
 * most MAX_WRITE_ATTEMPTS times. Writes of one instance go one at a time. Queries are the shared ones (../sql/).
 *
 * When the database is out of reach every call fails with
 * StoreUnavailableError (bounded by the connect and statement timeouts); a
 * probe with backoff notices when it is back.
 */
export class PostgresStore extends SingleReads {
	private readonly inside = new AsyncLocalStorage<true>();
	private closing = false;
	private available = true;
	private probe: NodeJS.Timeout | undefined;

	/** One pool connection per turn. */
	private readonly connections: Turns;
	/**
	 * Writes of this instance go one at a time. Every write changes its
	 * account's row (the revision triggers), so concurrent writes to one
	 * account always conflict: a burst of them (registrations) re-ran until
	 * the retry bound gave up (`pnpm bench sync-scale-out`). One at a time,
	 * they conflict only with other instances' writes. Waiting writes hold
	 * no connection, so reads keep the rest of the pool.
	 */
	private readonly writes = new Turns(1);

	private constructor(
		private readonly pool: pg.Pool,
		private readonly server: string,
		private readonly onAvailabilityChange: (available: boolean, detail: string) => void,
		poolSize: number,
	) {
		super();
		this.connections = new Turns(poolSize);
	}

	/**
	 * Connects and applies pending migrations (under an advisory lock: two
	 * instances starting on an empty database migrate it once). Throws
	 * StoreUnavailableError naming host:port when the server cannot be reached.
	 */
	static async open(dsn: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
		const server = serverOf(dsn);
		const connectTimeout = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
		const statementTimeout = options.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS;
		const pool = new pg.Pool({
			connectionString: dsn,
			max: options.poolSize ?? 10,
			// Waiting for a free connection happens in Turns, not here: this
			// timeout then measures only opening a connection to the server.
			connectionTimeoutMillis: connectTimeout,
			statement_timeout: statementTimeout,
			// A server that stops answering altogether (host gone, process frozen):
			// the driver's own clock ends the wait.
			query_timeout: statementTimeout + 2_000,
			idle_in_transaction_session_timeout: statementTimeout * 2,
			keepAlive: true,
			application_name: "starling-management",
		});
		// An idle client whose server went away emits here; without a listener
		// the process would crash. The next call reports the failure.
		pool.on("error", () => undefined);
		const store = new PostgresStore(
			pool,
			server,
			options.onAvailabilityChange ?? (() => undefined),
			options.poolSize ?? 10,
		);
		try {
			await store.migrate(options.sharedMigrations ?? SHARED_MIGRATIONS);
		} catch (err) {
			await pool.end().catch(() => undefined);
			if (isConnectionFailure(err)) {
				throw new StoreUnavailableError(
					`cannot reach PostgreSQL at ${server}: ${(err as Error).message || sqlState(err)}`,
				);
			}
			throw err;
		}
		return store;
	}

	private async migrate(shared: readonly SharedMigration[]): Promise<void> {
		const client = await this.pool.connect();
		try {
			await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK]);
			try {
				await client.query(
					"CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
				);
				const applied = new Set(
					(await client.query("SELECT version FROM schema_migrations")).rows.map((r) =>
						Number(r.version),
					),
				);
				const steps: {
					version: number;
					name: string;
					statements: { text: string; values: unknown[] }[];
				}[] = [
					{ ...POSTGRES_BASELINE, statements: [{ text: POSTGRES_BASELINE.sql, values: [] }] },
					...shared.map((m) => {
						if (m.version <= BASELINE_VERSION)
							throw new Error(`shared migration ${m.version} is not after the baseline`);
						return {
							version: m.version,
							name: m.name,
							statements: m.statements(postgresDialect).map((s) => {
								const q = s.compile();
								return { text: q.sql, values: [...q.parameters] };
							}),
						};
					}),
				];
				for (const step of steps) {
					if (applied.has(step.version)) continue;
					await client.query("BEGIN");
					try {
						for (const s of step.statements) await client.query(s.text, s.values);
						await client.query(
							"INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
							[step.version, step.name, Date.now()],
						);
						await client.query("COMMIT");
					} catch (err) {
						await client.query("ROLLBACK").catch(() => undefined);
						throw err;
					}
				}
			} finally {
				await client
					.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK])
					.catch(() => undefined);
			}
		} finally {
			client.release();
		}
	}

	/** The highest migration applied to the database. */
	async schemaVersion(): Promise<number> {
		const { rows } = await this.pool.query("SELECT MAX(version) AS v FROM schema_migrations");
		return Number(rows[0]?.v ?? 0);
	}

	async close(): Promise<void> {
		if (this.closing) return;
		this.closing = true;
		if (this.probe) clearTimeout(this.probe);
		await this.pool.end();
	}

	read<T>(fn: (tx: StoreReader) => Promise<T>): Promise<T> {
		return this.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 1, (runner) =>
			fn(new SqlReader(postgresDialect, runner)),
		);
	}

	async write<T>(fn: (tx: StoreWriter) => Promise<T>, options?: WriteOptions): Promise<T> {
		if (this.inside.getStore()) {
			throw new Error("store.read/write called inside a transaction: use the transaction's reads");
		}
		const urgent = options?.urgent === true;
		// An urgent write does not wait for this instance's write turn (it may
		// then conflict with the write holding it; SERIALIZABLE re-runs the loser).
		const done = urgent ? () => {} : await this.writes.take();
		try {
			return await this.transaction(
				WRITE_BEGIN,
				MAX_WRITE_ATTEMPTS,
				(runner) => fn(new SqlWriter(postgresDialect, runner)),
				urgent,
			);
		} finally {
			done();
		}
	}

	private async transaction<T>(
		begin: string,
		maxAttempts: number,
		fn: (runner: PostgresRunner) => Promise<T>,
		urgent = false,
	): Promise<T> {
		if (this.inside.getStore()) {
			throw new Error("store.read/write called inside a transaction: use the transaction's reads");
		}
		if (this.closing) throw new Error("the store is closed");
		let pause = 2;
		for (let attempt = 1; ; attempt++) {
			let client: pg.PoolClient;
			const giveBack = await this.connections.take(urgent);
			try {
				client = await this.pool.connect();
			} catch (err) {
				giveBack();
				throw this.unavailable(err);
			}
			const runner = new PostgresRunner(client);
			let broken: unknown;
			try {
				await client.query(begin);
				const result = await this.inside.run(true, () => fn(runner));
				await client.query("COMMIT");
				this.reachable();
				return result;
			} catch (err) {
				if (isConnectionFailure(err)) {
					broken = err;
					throw this.unavailable(err);
				}
				await client.query("ROLLBACK").catch((rollbackErr: unknown) => {
					broken = rollbackErr;
				});
				this.reachable();
				const lostUniqueRace = runner.uniqueViolated && attempt < UNIQUE_RACE_ATTEMPTS;
				if (!runner.serializationFailed && !isSerializationFailure(err) && !lostUniqueRace)
					throw err;
				if (attempt >= maxAttempts) {
					throw new StoreUnavailableError(
						`the database stayed too busy: ${maxAttempts} attempts of one write failed to serialize`,
					);
				}
			} finally {
				// A client whose connection broke is discarded, not returned to the pool.
				client.release(broken instanceof Error ? broken : broken === undefined ? undefined : true);
				giveBack();
			}
			// Another transaction won the race: let it finish, then run `fn` again.
			await sleep(pause * (0.5 + Math.random()));
			pause = Math.min(pause * 2, 100);
		}
	}

	/** The error callers get while the database is out of reach; tells the change once. */
	private unavailable(err: unknown): StoreUnavailableError {
		const reason = err instanceof Error && err.message ? err.message : String(sqlState(err) ?? err);
		if (this.available && !this.closing) {
			this.available = false;
			this.onAvailabilityChange(false, `PostgreSQL at ${this.server} is unreachable: ${reason}`);
			this.scheduleProbe(1_000);
		}
		return new StoreUnavailableError(`the database is unavailable (PostgreSQL at ${this.server})`);
	}

	private reachable(): void {
		if (this.available) return;
		this.available = true;
		if (this.probe) clearTimeout(this.probe);
		this.probe = undefined;
		this.onAvailabilityChange(true, `PostgreSQL at ${this.server} is reachable again`);
	}

	/** Checks the database with backoff until it answers, so "available again" is told without traffic. */
	private scheduleProbe(delayMs: number): void {
		if (this.probe) clearTimeout(this.probe);
		this.probe = setTimeout(() => {
			this.probe = undefined;
			if (this.available || this.closing) return;
			this.pool.query("SELECT 1").then(
				() => this.reachable(),
				() => {
					if (!this.available && !this.closing) this.scheduleProbe(Math.min(delayMs * 2, 30_000));
				},
			);
		}, delayMs);
		this.probe.unref();
	}
}
