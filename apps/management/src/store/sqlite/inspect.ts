import Database from "better-sqlite3";

// For tests only: looks at a SQLite store's file through a connection of its
// own (never the store's), to check what is on disk — that a refused request
// changed nothing, that a secret is stored only as its hash.

function withFile<T>(path: string, fn: (db: Database.Database) => T): T {
	const db = new Database(path, { fileMustExist: true });
	try {
		return fn(db);
	} finally {
		db.close();
	}
}

/** The number of rows of `table` (one of the schema's tables). */
export function countRows(path: string, table: string): number {
	return withFile(path, (db) => {
		const known = db
			.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
			.get(table);
		if (!known) throw new Error(`no table ${table}`);
		return Number((db.prepare(`SELECT COUNT(*) AS n FROM "${table}"`).get() as { n: number }).n);
	});
}

/** Every row of every table (blobs as hex), by table name. */
export function dumpRows(path: string): Record<string, Record<string, unknown>[]> {
	return withFile(path, (db) => {
		const tables = (
			db
				.prepare(
					"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
				)
				.all() as { name: string }[]
		).map((r) => r.name);
		const out: Record<string, Record<string, unknown>[]> = {};
		for (const t of tables) {
			out[t] = (db.prepare(`SELECT * FROM "${t}"`).all() as Record<string, unknown>[]).map((r) => {
				const copy = { ...r };
				for (const [k, v] of Object.entries(copy))
					if (Buffer.isBuffer(v)) copy[k] = v.toString("hex");
				return copy;
			});
		}
		return out;
	});
}

/** Copies the write-ahead log into the main file, so a byte search of the files sees everything. */
export function checkpoint(path: string): void {
	withFile(path, (db) => db.pragma("wal_checkpoint(FULL)"));
}
