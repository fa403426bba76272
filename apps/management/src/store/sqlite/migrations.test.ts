import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { LATEST_SCHEMA_VERSION } from "../sql/migrations.js";
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
			expect(store.schemaVersion()).toBe(LATEST_SCHEMA_VERSION);
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

describe("migration 4", () => {
	it("gives a version-3 file with data its account revisions, which every writer then moves", async () => {
		const dir = mkdtempSync(join(tmpdir(), "starling-migrate-"));
		try {
			const path = join(dir, "m.db");
			const db = new Database(path);
			db.exec(
				"CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
			);
			for (const m of MIGRATIONS.filter((m) => m.version <= 3)) {
				db.exec(m.sql);
				db.prepare("INSERT INTO schema_migrations VALUES (?, ?, 0)").run(m.version, m.name);
			}
			db.prepare(
				"INSERT INTO accounts VALUES ('acc1', '100.64.0.0/16', 'starling.internal', 0, '{}')",
			).run();
			db.prepare("INSERT INTO groups VALUES ('all1', 'acc1', 'All', 'all')").run();
			db.prepare(
				`INSERT INTO peers (id, account_id, wg_public_key, name, dns_label, ip, hostname, os,
					os_version, kernel_version, agent_version, setup_key_id, user_id, ephemeral, ssh_enabled,
					login_expiration_enabled, connected, created_at, last_login, last_seen)
				VALUES ('p1', 'acc1', 'k1', 'one', 'one', 1681915905, 'one', 'linux', '', '', '', NULL, NULL,
					0, 0, 0, 0, 0, 0, 0)`,
			).run();
			db.prepare("INSERT INTO group_peers VALUES ('all1', 'p1')").run();
			db.close();

			const store = SqliteStore.open(path);
			expect(store.schemaVersion()).toBe(LATEST_SCHEMA_VERSION);
			// The data is there, at revision 0.
			expect((await store.listPeers("acc1")).map((p) => [p.id, p.ip])).toEqual([
				["p1", "100.64.0.1"],
			]);
			expect(await store.getAccountRevision("acc1")).toBe(0);
			await store.write(async (tx) => {
				const peer = (await tx.getPeer("acc1", "p1"))!;
				await tx.updatePeer({ ...peer, connected: true });
			});
			expect(await store.getAccountRevision("acc1")).toBe(1);
			// A writer that knows nothing of revisions (an older tool, the sqlite3 shell) moves it too.
			const raw = new Database(path);
			raw.prepare("UPDATE peers SET name = 'renamed' WHERE id = 'p1'").run();
			raw.prepare("DELETE FROM group_peers WHERE peer_id = 'p1'").run();
			raw.close();
			expect(await store.getAccountRevision("acc1")).toBe(3);
			await store.close();
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});
});

describe("two instances starting on a file that needs a migration", () => {
	it("apply it once: the one that waited for the write lock finds it applied and starts", async () => {
		// The second instance runs in a worker (the built store: pnpm build first)
		// so that it can wait on the lock while this thread holds it.
		const dir = mkdtempSync(join(tmpdir(), "starling-migrate-"));
		try {
			const path = join(dir, "m.db");
			const db = new Database(path);
			db.pragma("journal_mode = WAL");
			db.exec(
				"CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
			);
			const last = MIGRATIONS.at(-1)!;
			for (const m of MIGRATIONS.slice(0, -1)) {
				db.exec(m.sql);
				db.prepare("INSERT INTO schema_migrations VALUES (?, ?, 0)").run(m.version, m.name);
			}
			// This "instance" takes the write lock to apply the last migration.
			db.exec("BEGIN IMMEDIATE");
			const store = pathToFileURL(
				resolve(__dirname, "../../../dist/store/sqlite/sqlite-store.js"),
			).href;
			const worker = new Worker(
				`const { parentPort, workerData } = require("node:worker_threads");
				import(workerData.store).then(({ SqliteStore }) => {
					parentPort.postMessage("loaded");
					try {
						const s = SqliteStore.open(workerData.path);
						parentPort.postMessage("started at " + s.schemaVersion());
					} catch (err) {
						parentPort.postMessage("failed: " + err.message);
					}
				});`,
				{ eval: true, workerData: { store, path } },
			);
			const messages: string[] = [];
			const answered = new Promise<void>((done) =>
				worker.on("message", (m: string) => {
					messages.push(m);
					if (m !== "loaded") done();
				}),
			);
			while (messages.length === 0) await sleep(20);
			// The worker has read which migrations are applied and waits for the lock.
			await sleep(500);
			db.exec(last.sql);
			db.prepare("INSERT INTO schema_migrations VALUES (?, ?, 0)").run(last.version, last.name);
			db.exec("COMMIT");
			await answered;
			await worker.terminate();
			db.close();
			// It then applies the shared migrations after the one it waited for.
			expect(messages).toEqual(["loaded", `started at ${LATEST_SCHEMA_VERSION}`]);
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});
});
