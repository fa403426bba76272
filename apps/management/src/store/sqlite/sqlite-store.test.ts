import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { type FreshStore, runStoreConformance } from "../conformance/conformance.js";
import type { SharedMigration } from "../sql/migrations.js";
import type { Store } from "../store.js";
import { SqliteStore } from "./sqlite-store.js";

/** A new SQLite file in a temp dir; every instance opened on it is closed on destroy. */
async function freshSqlite(): Promise<FreshStore> {
	const dir = mkdtempSync(join(tmpdir(), "starling-store-"));
	const path = join(dir, "management.db");
	const opened: Store[] = [SqliteStore.open(path)];
	return {
		store: opened[0]!,
		async openAnother() {
			const another = SqliteStore.open(path);
			opened.push(another);
			return another;
		},
		async destroy() {
			for (const s of opened) await s.close();
			rmSync(dir, { recursive: true, force: true });
		},
	};
}

runStoreConformance("sqlite", freshSqlite);

describe("SqliteStore", () => {
	it("refuses read or write from inside its own transaction instead of waiting forever", async () => {
		const fresh = await freshSqlite();
		try {
			const { store } = fresh;
			await expect(store.write(() => store.countUsers())).rejects.toThrow(/inside a transaction/);
			await expect(store.read(() => store.read(async () => 1))).rejects.toThrow(
				/inside a transaction/,
			);
			// The store is still usable afterwards.
			expect(await store.countUsers()).toBe(0);
		} finally {
			await fresh.destroy();
		}
	});

	it("applies a shared migration (kysely's schema builder) after its own, once", async () => {
		const dir = mkdtempSync(join(tmpdir(), "starling-store-"));
		const path = join(dir, "management.db");
		const extra: SharedMigration = {
			version: 5,
			name: "test: a table written once",
			statements: (d) => [
				d.db.schema
					.createTable("shared_probe")
					.addColumn("id", "text", (c) => c.primaryKey())
					.addColumn("at", d.columnType.ms, (c) => c.notNull())
					.addColumn("flag", d.columnType.flag, (c) => c.notNull())
					.addColumn("bytes", d.columnType.bytes),
			],
		};
		try {
			const first = SqliteStore.open(path, [extra]);
			const second = SqliteStore.open(path, [extra]);
			expect(first.schemaVersion()).toBe(5);
			await first.close();
			await second.close();
			const db = new Database(path);
			try {
				expect(
					db
						.prepare(
							"SELECT name, upper(type) AS type FROM pragma_table_info('shared_probe') ORDER BY cid",
						)
						.all(),
				).toEqual([
					{ name: "id", type: "TEXT" },
					{ name: "at", type: "BIGINT" },
					{ name: "flag", type: "INTEGER" },
					{ name: "bytes", type: "BLOB" },
				]);
				expect(
					db.prepare("SELECT COUNT(*) AS n FROM schema_migrations WHERE version = 5").get(),
				).toEqual({ n: 1 });
			} finally {
				db.close();
			}
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});

	it("a closed store refuses work with a readable error", async () => {
		const fresh = await freshSqlite();
		await fresh.store.close();
		await expect(fresh.store.countUsers()).rejects.toThrow(/closed/);
		await fresh.destroy();
	});
});
