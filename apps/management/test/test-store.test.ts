import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { PostgresStore } from "../src/store/postgres/postgres-store.js";
import { SqliteStore } from "../src/store/sqlite/sqlite-store.js";
import { startTestManagement, tempDir } from "./helpers.js";
import { RestHarness } from "./helpers-rest.js";
import { TEST_STORE } from "./test-store.js";

// `pnpm test:postgres` must really run these tests on PostgreSQL, and
// `pnpm test` on SQLite: the harnesses open the store STARLING_TEST_STORE names.

const expected = process.env.STARLING_TEST_STORE === "postgres" ? PostgresStore : SqliteStore;
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
	for (const c of cleanup.splice(0)) await c();
});

describe(`the management tests' store (${TEST_STORE})`, () => {
	it("the REST harness runs on the selected backend", async () => {
		const h = await RestHarness.create();
		cleanup.push(() => h.close());
		expect(h.store).toBeInstanceOf(expected);
	});

	it("a management started by the helpers runs on the selected backend, and a restart on the same directory finds its data", async () => {
		const dir = tempDir();
		cleanup.push(async () => dir.remove());
		const first = await startTestManagement(dir.path);
		const owner = await first.store.getFirstOwner();
		await first.close();
		const again = await startTestManagement(dir.path);
		cleanup.push(() => again.close());
		expect(await again.store.getFirstOwner()).toEqual(owner);
		// SQLite keeps a file in the data directory; PostgreSQL nothing.
		expect(existsSync(join(dir.path, "management.db"))).toBe(TEST_STORE === "sqlite");
	});
});
