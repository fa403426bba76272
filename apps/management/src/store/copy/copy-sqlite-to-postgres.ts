import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { PostgresStore, serverOf } from "../postgres/postgres-store.js";
import { SHARED_MIGRATIONS } from "../sql/migrations.js";
import { DATA_TABLES } from "../sql/schema.js";
import { MIGRATIONS } from "../sqlite/migrations.js";

// `starling-management migrate --from sqlite:PATH --to postgres:DSN`: copies
// every row of an installation's SQLite file into an empty PostgreSQL
// database, in one transaction, so the target ends complete or empty. The
// source is only read (from a private copy, see openSource). Values change type on the
// way (0/1 to BOOLEAN, INTEGER to BIGINT), nothing else: ids, hashes,
// server key, audit event ids and the accounts' revisions are kept.

/** A copy refused or failed; `message` is one line saying what state the target is in. */
export class CopyError extends Error {
	override name = "CopyError";
}

export interface CopyResult {
	/** Rows copied, per table. */
	rows: Record<string, number>;
	/** "host:port/database" of the target. */
	target: string;
}

const BATCH_ROWS = 500;

function describeTarget(dsn: string): string {
	return `${serverOf(dsn)}${new URL(dsn).pathname}`;
}

/**
 * The source, at the schema version this build writes (else refused). Even a
 * read-only connection to a WAL-mode file creates its -wal and -shm files,
 * so the file (with its write-ahead log, if any) is read byte for byte into
 * a private folder and opened there: the installation is never touched.
 * Management must be stopped meanwhile (the file and its log are read one
 * after the other).
 */
function openSource(path: string, scratch: string): Database.Database {
	if (!existsSync(path)) throw new CopyError(`no SQLite file at ${path}`);
	const copy = join(scratch, "source.db");
	let db: Database.Database;
	try {
		writeFileSync(copy, readFileSync(path));
		if (existsSync(`${path}-wal`)) writeFileSync(`${copy}-wal`, readFileSync(`${path}-wal`));
		db = new Database(copy, { fileMustExist: true });
	} catch (err) {
		throw new CopyError(`cannot read the SQLite file ${path}: ${(err as Error).message}`);
	}
	const latest = Math.max(
		...MIGRATIONS.map((m) => m.version),
		...SHARED_MIGRATIONS.map((m) => m.version),
	);
	let version = 0;
	try {
		version = Number(
			(db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number }).v ?? 0,
		);
	} catch {
		db.close();
		throw new CopyError(`${path} is not a Starling management database`);
	}
	if (version !== latest) {
		db.close();
		throw new CopyError(
			`${path} is at schema version ${version}, this build writes ${latest}: start this management version on it once, stop it, then migrate`,
		);
	}
	return db;
}

/** PostgreSQL's column types of `table`, by column name. */
async function columnTypes(client: pg.PoolClient, table: string): Promise<Map<string, string>> {
	const { rows } = await client.query(
		"SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1",
		[table],
	);
	return new Map(rows.map((r) => [String(r.column_name), String(r.data_type)]));
}

/** A SQLite value as the PostgreSQL column of `type` takes it. */
function convert(value: unknown, type: string): unknown {
	if (value === null || value === undefined) return null;
	if (type === "boolean") return value === 1 || value === 1n || value === true;
	if (type === "bigint" || type === "integer")
		return typeof value === "bigint" ? value.toString() : value;
	return value;
}

export async function copySqliteToPostgres(sqlitePath: string, dsn: string): Promise<CopyResult> {
	const target = describeTarget(dsn);
	const scratch = mkdtempSync(join(tmpdir(), "starling-migrate-"));
	let source: Database.Database;
	try {
		source = openSource(sqlitePath, scratch);
	} catch (err) {
		rmSync(scratch, { recursive: true, force: true });
		throw err;
	}
	try {
		// Creates the schema on an empty database (its own transactions: tables, no rows).
		let schema: PostgresStore;
		try {
			schema = await PostgresStore.open(dsn, { poolSize: 1 });
		} catch (err) {
			throw new CopyError(`${(err as Error).message}; nothing was copied`);
		}
		await schema.close();

		const pool = new pg.Pool({ connectionString: dsn, max: 1, connectionTimeoutMillis: 5_000 });
		pool.on("error", () => undefined);
		const client = await pool.connect().catch((err: Error) => {
			throw new CopyError(
				`cannot reach PostgreSQL at ${serverOf(dsn)}: ${err.message}; nothing was copied`,
			);
		});
		const rows: Record<string, number> = {};
		let committing = false;
		try {
			await client.query("BEGIN ISOLATION LEVEL SERIALIZABLE");
			for (const table of DATA_TABLES) {
				const { rows: found } = await client.query(`SELECT COUNT(*) AS n FROM "${table}"`);
				if (Number(found[0].n) > 0) {
					throw new CopyError(
						`the target ${target} is not empty (${found[0].n} rows in ${table}): refused, nothing was copied`,
					);
				}
			}
			for (const table of DATA_TABLES) {
				const types = await columnTypes(client, table);
				// In insertion order (rowid), so PostgreSQL's `seq` columns order rows of equal
				// creation time as SQLite did.
				const all = source.prepare(`SELECT * FROM "${table}" ORDER BY rowid`).all() as Record<
					string,
					unknown
				>[];
				rows[table] = all.length;
				if (all.length === 0) continue;
				const columns = Object.keys(all[0]!).filter((c) => types.has(c));
				for (let start = 0; start < all.length; start += BATCH_ROWS) {
					const batch = all.slice(start, start + BATCH_ROWS);
					const values: unknown[] = [];
					const tuples = batch.map((row) => {
						const marks = columns.map((c) => {
							values.push(convert(row[c], types.get(c)!));
							return `$${values.length}`;
						});
						return `(${marks.join(", ")})`;
					});
					await client.query(
						`INSERT INTO "${table}" (${columns.map((c) => `"${c}"`).join(", ")}) VALUES ${tuples.join(", ")}`,
						values,
					);
				}
			}
			// Sync sessions are not copied (they belong to the source's running
			// instances), so no peer holds one: none is connected, as after a
			// clean stop. Before the revisions are set back below.
			await client.query("UPDATE peers SET connected = false WHERE connected");
			// The inserts moved the revisions (triggers); the copy keeps the source's.
			for (const a of source.prepare("SELECT id, revision FROM accounts").all() as {
				id: string;
				revision: number;
			}[]) {
				await client.query("UPDATE accounts SET revision = $1 WHERE id = $2", [a.revision, a.id]);
			}
			// New audit events continue after the copied ids.
			await client.query(
				"SELECT setval(pg_get_serial_sequence('audit_events', 'id'), COALESCE((SELECT MAX(id) FROM audit_events), 0) + 1, false)",
			);
			committing = true;
			await client.query("COMMIT");
			return { rows, target };
		} catch (err) {
			if (committing) {
				throw new CopyError(
					`the connection failed during COMMIT (${(err as Error).message}): the target ${target} is either complete or empty; check it before starting management on it`,
				);
			}
			await client.query("ROLLBACK").catch(() => undefined);
			if (err instanceof CopyError) throw err;
			throw new CopyError(
				`copy failed: ${(err as Error).message}; rolled back, the target ${target} is empty`,
			);
		} finally {
			client.release();
			await pool.end();
		}
	} finally {
		source.close();
		rmSync(scratch, { recursive: true, force: true });
	}
}
