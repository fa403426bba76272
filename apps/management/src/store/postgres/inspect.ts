import pg from "pg";
import { DATA_TABLES, RUNNING_STATE_TABLES } from "../sql/schema.js";

// For tests only: looks at a PostgreSQL store's database through a
// connection of its own (never the store's pool), the counterpart of
// sqlite/inspect.ts: count or dump rows (a refused request changed nothing),
// search every stored value for a secret. One connection per inspector,
// opened on first use: property tests compare dumps around every request.

const TABLES: readonly string[] = [...DATA_TABLES, ...RUNNING_STATE_TABLES, "schema_migrations"];

export class PostgresInspector {
	private client: Promise<pg.Client> | undefined;

	constructor(private readonly dsn: string) {}

	private connection(): Promise<pg.Client> {
		this.client ??= (async () => {
			const client = new pg.Client({ connectionString: this.dsn });
			client.on("error", () => undefined);
			await client.connect();
			return client;
		})();
		return this.client;
	}

	/** The number of rows of `table` (one of the schema's tables). */
	async countRows(table: string): Promise<number> {
		if (!TABLES.includes(table)) throw new Error(`no table ${table}`);
		const { rows } = await (await this.connection()).query(`SELECT COUNT(*) AS n FROM "${table}"`);
		return Number(rows[0].n);
	}

	/** Every row of every table (bytes as hex; BIGINTs as pg returns them, strings), by table name. */
	async dumpRows(): Promise<Record<string, Record<string, unknown>[]>> {
		const client = await this.connection();
		const out: Record<string, Record<string, unknown>[]> = {};
		for (const t of TABLES) {
			const { rows } = await client.query(`SELECT * FROM "${t}"`);
			out[t] = rows.map((r: Record<string, unknown>) => {
				const copy = { ...r };
				for (const [k, v] of Object.entries(copy)) {
					if (Buffer.isBuffer(v)) copy[k] = v.toString("hex");
				}
				return copy;
			});
		}
		return out;
	}

	/** Whether `needle` occurs in any stored value of any table (bytes searched as bytes). */
	async databaseContains(needle: string): Promise<boolean> {
		const client = await this.connection();
		const bytes = Buffer.from(needle, "utf8");
		for (const t of [...DATA_TABLES, ...RUNNING_STATE_TABLES]) {
			const { rows } = await client.query(`SELECT * FROM "${t}"`);
			for (const r of rows as Record<string, unknown>[]) {
				for (const v of Object.values(r)) {
					if (Buffer.isBuffer(v) ? v.includes(bytes) : String(v).includes(needle)) return true;
				}
			}
		}
		return false;
	}

	async close(): Promise<void> {
		const client = this.client;
		this.client = undefined;
		if (client) await (await client).end();
	}
}
