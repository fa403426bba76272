import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { MIGRATIONS } from "./migrations.js";
import { SqliteStore } from "./sqlite-store.js";

describe("migration 2", () => {
	it("gives accounts made before policies the Default policy, so nothing changes for them", async () => {
		const dir = mkdtempSync(join(tmpdir(), "starling-migrate-"));
		try {
			const path = join(dir, "m.db");
			const db = new Database(path);
			db.exec(
				"CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
			);
			db.exec(MIGRATIONS[0]!.sql);
			db.prepare("INSERT INTO schema_migrations VALUES (1, 'initial schema', 0)").run();
			db.prepare(
				"INSERT INTO accounts VALUES ('acc1', '100.64.0.0/16', 'starling.internal', 0, '{}')",
			).run();
			db.prepare("INSERT INTO groups VALUES ('all1', 'acc1', 'All', 'all')").run();
			db.prepare("INSERT INTO users VALUES ('u1', 'acc1', 'admin', 'a@b', 'owner', 0, 0, 0)").run();
			db.close();
			const store = SqliteStore.open(path);
			expect(store.schemaVersion()).toBe(MIGRATIONS.at(-1)?.version);
			const [policy] = await store.listPolicies("acc1");
			expect(policy).toMatchObject({
				name: "Default",
				enabled: true,
				rules: [
					{
						enabled: true,
						action: "accept",
						bidirectional: true,
						protocol: "all",
						sources: ["all1"],
						destinations: ["all1"],
						ports: [],
						portRanges: [],
					},
				],
			});
			expect((await store.getUser("u1"))?.autoGroups).toEqual([]);
			await store.close();
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});
});
