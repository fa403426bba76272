import pg from "pg";
import { DATA_TABLES } from "../sql/schema.js";

// For tests only: looks at a PostgreSQL store's database through a
// connection of its own (never the store's pool), the counterpart of
// sqlite/inspect.ts: count or dump rows (a refused request changed nothing),
// search every stored value for a secret.

async function withClient<T>(dsn: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
	const client = new pg.Client({ connectionString: dsn });
	await client.connect();
	try {
		return await fn(client);
	} finally {
		await client.end();
	}
}

const KNOWN = new Set<string>([...DATA_TABLES, "schema_migrations"]);

/** The number of rows of `table` (one of the schema's tables). */
export function countRows(dsn: string, table: string): Promise<number> {
	if (!KNOWN.has(table)) throw new Error(`no table ${table}`);
	return withClient(dsn, async (c) => {
		const { rows } = await c.query(`SELECT COUNT(*) AS n FROM "${table}"`);
		return Number(rows[0].n);
	});
}

/** Every row of every data table (bytes as hex, numbers as numbers), by table name. */
export function dumpRows(dsn: string): Promise<Record<string, Record<string, unknown>[]>> {
	return withClient(dsn, async (c) => {
		const out: Record<string, Record<string, unknown>[]> = {};
		for (const t of [...DATA_TABLES, "schema_migrations"]) {
			const { rows } = await c.query(`SELECT * FROM "${t}"`);
			out[t] = rows.map((r: Record<string, unknown>) => {
				const copy = { ...r };
				for (const [k, v] of Object.entries(copy)) {
					if (Buffer.isBuffer(v)) copy[k] = v.toString("hex");
				}
				return copy;
			});
		}
		return out;
	});
}

/** Whether `needle` occurs in any stored value of any table (bytes searched as bytes). */
export function databaseContains(dsn: string, needle: string): Promise<boolean> {
	const bytes = Buffer.from(needle, "utf8");
	return withClient(dsn, async (c) => {
		for (const t of DATA_TABLES) {
			const { rows } = await c.query(`SELECT * FROM "${t}"`);
			for (const r of rows as Record<string, unknown>[]) {
				for (const v of Object.values(r)) {
					if (Buffer.isBuffer(v) ? v.includes(bytes) : String(v).includes(needle)) return true;
				}
			}
		}
		return false;
	});
}
