// `starling-management migrate --from sqlite:PATH --to postgres:DSN`: an
// installation made on SQLite through the real APIs, copied by the built
// executable into PostgreSQL: every table compared, the source untouched,
// then a management on the copy logs agents in and syncs them; a second run,
// a target that is not empty and a copy failing midway are refused or rolled
// back with one line saying what state the target is in.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { encodeKey } from "@starling/crypto";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { PostgresInspector } from "../src/store/postgres/inspect.js";
import { PostgresStore } from "../src/store/postgres/postgres-store.js";
import { dumpRows } from "../src/store/sqlite/inspect.js";
import {
	makeSetupKey,
	meta,
	newAgent,
	startSync,
	startTestManagement,
	tempDir,
} from "./helpers.js";
import { MAIN, postgresForFile } from "./helpers-process.js";

const run = promisify(execFile);

const cluster = postgresForFile();

async function migrate(args: string[]) {
	return run(process.execPath, [MAIN, "migrate", ...args], { timeout: 60_000 }).then(
		(r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
		(e: { code: number; stdout: string; stderr: string }) => e,
	);
}

/** Every file of the folder, hashed: the source must not change by a byte. */
function folderHash(dir: string): string {
	const h = createHash("sha256");
	for (const f of readdirSync(dir).sort()) h.update(f).update(readFileSync(join(dir, f)));
	return h.digest("hex");
}

/** Rows made comparable across backends: booleans and numbers as text, no `seq`, sorted. */
function comparable(tables: Record<string, Record<string, unknown>[]>) {
	const out: Record<string, string[]> = {};
	for (const [t, rows] of Object.entries(tables)) {
		if (t === "schema_migrations") continue;
		out[t] = rows
			.map((r) => {
				const copy: Record<string, unknown> = {};
				for (const [k, v] of Object.entries(r)) {
					if (k === "seq") continue;
					copy[k] =
						typeof v === "boolean" ? String(Number(v)) : typeof v === "number" ? String(v) : v;
				}
				return JSON.stringify(copy, Object.keys(copy).sort());
			})
			.sort();
	}
	return out;
}

describe("starling-management migrate", () => {
	it("copies a SQLite installation into PostgreSQL: every table equal, source untouched, agents log in and sync on the copy", async () => {
		const dir = tempDir();
		const dir2 = tempDir();
		try {
			// An installation on SQLite, made through the real APIs.
			const m = await startTestManagement(dir.path, { STARLING_STORE: "sqlite" });
			const adminToken = m.bootstrap!.plainToken;
			const key = await makeSetupKey(m);
			const a = newAgent(m.port);
			const b = newAgent(m.port);
			await a.client.login(key, meta("alpha"));
			await b.client.login(key, meta("beta"));
			const peers = (
				await m.rest.inject({
					method: "GET",
					url: "/api/peers",
					headers: { authorization: `Token ${adminToken}` },
				})
			).json() as { id: string }[];
			const group = await m.rest.inject({
				method: "POST",
				url: "/api/groups",
				headers: { authorization: `Token ${adminToken}`, "content-type": "application/json" },
				payload: JSON.stringify({ name: "both", peers: peers.map((p) => p.id) }),
			});
			expect(group.statusCode).toBe(200);
			// Routing rows too (migration 6): a route, a network with a resource and a router.
			const groupId = (group.json() as { id: string }).id;
			const post = async (url: string, body: object) => {
				const res = await m.rest.inject({
					method: "POST",
					url,
					headers: { authorization: `Token ${adminToken}`, "content-type": "application/json" },
					payload: JSON.stringify(body),
				});
				expect(res.statusCode, res.body).toBe(200);
				return res.json() as { id: string };
			};
			await post("/api/routes", {
				description: "lan",
				network_id: "lan",
				enabled: true,
				peer: peers[0]!.id,
				network: "198.18.10.0/24",
				metric: 10,
				masquerade: true,
				groups: [groupId],
			});
			const network = await post("/api/networks", { name: "office" });
			await post(`/api/networks/${network.id}/resources`, {
				name: "db",
				address: "198.18.20.5",
				enabled: true,
				groups: [groupId],
			});
			await post(`/api/networks/${network.id}/routers`, {
				peer_groups: [groupId],
				metric: 10,
				masquerade: false,
				enabled: true,
			});
			const serverKey = encodeKey(m.serverKey.publicKey);
			a.close();
			b.close();
			await m.close();

			const source = join(dir.path, "management.db");
			const before = folderHash(dir.path);
			const dsn = await cluster().createDatabase();
			const done = await migrate(["--from", `sqlite:${source}`, "--to", `postgres:${dsn}`]);
			expect(done.code, done.stderr).toBe(0);
			const lines = done.stdout.trim().split("\n");
			expect(lines).toHaveLength(1);
			expect(lines[0]).toMatch(
				/migrated \d+ rows to 127\.0\.0\.1:\d+\/\S+; the target is complete/,
			);
			expect(folderHash(dir.path)).toBe(before);

			const inspector = new PostgresInspector(dsn);
			try {
				const copied = comparable(await inspector.dumpRows());
				const original = comparable(dumpRows(source));
				expect(Object.keys(copied).sort()).toEqual(Object.keys(original).sort());
				for (const table of Object.keys(original)) {
					expect(copied[table], table).toEqual(original[table]);
				}
				expect(original.peers).toHaveLength(2);
				expect(original.group_peers).toHaveLength(4); // All and "both", two peers each
				for (const t of ["routes", "networks", "network_resources", "network_routers"])
					expect(original[t], t).toHaveLength(1);

				// A second run finds the target full and changes nothing.
				const again = await migrate(["--from", `sqlite:${source}`, "--to", `postgres:${dsn}`]);
				expect(again.code).toBe(1);
				expect(again.stderr.trim().split("\n")).toHaveLength(1);
				expect(again.stderr).toMatch(/is not empty .*refused, nothing was copied/);
				expect(comparable(await inspector.dumpRows())).toEqual(copied);
			} finally {
				await inspector.close();
			}

			// Management on the copy: the same server key, the admin token works,
			// known agents log in again and sync, a new one registers.
			const onPg = await startTestManagement(dir2.path, {
				STARLING_STORE: "postgres",
				STARLING_POSTGRES_DSN: dsn,
			});
			try {
				expect(onPg.bootstrap).toBeUndefined();
				expect(encodeKey(onPg.serverKey.publicKey)).toBe(serverKey);
				const listed = await onPg.rest.inject({
					method: "GET",
					url: "/api/peers",
					headers: { authorization: `Token ${adminToken}` },
				});
				expect(listed.statusCode).toBe(200);
				expect((listed.json() as unknown[]).length).toBe(2);
				const a2 = newAgent(onPg.port, a.keyPair);
				const c = newAgent(onPg.port);
				try {
					const login = await a2.client.login(key, meta("alpha"));
					expect(login.self?.address).toBeDefined();
					await startSync(a2, "alpha");
					await a2.waitForMap((map) => map.peers.some((p) => p.name === "beta"));
					const newcomer = await c.client.login(key, meta("gamma"));
					expect(newcomer.self?.address).not.toBe(login.self?.address);
					await a2.waitForMap((map) => map.peers.some((p) => p.name === "gamma"));
				} finally {
					a2.close();
					c.close();
				}
			} finally {
				await onPg.close();
			}
		} finally {
			dir.remove();
			dir2.remove();
		}
	}, 120_000);

	it("a copy failing midway rolls back and says the target is empty; bad arguments are one line", async () => {
		const dir = tempDir();
		try {
			const m = await startTestManagement(dir.path, { STARLING_STORE: "sqlite" });
			const key = await makeSetupKey(m);
			const a = newAgent(m.port);
			await a.client.login(key, meta("alpha"));
			a.close();
			await m.close();
			const source = join(dir.path, "management.db");
			const before = folderHash(dir.path);

			// A target whose schema refuses peers: the copy fails after accounts and users went in.
			const dsn = await cluster().createDatabase();
			(await PostgresStore.open(dsn)).close();
			const client = new pg.Client({ connectionString: dsn });
			await client.connect();
			try {
				await client.query(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
					BEGIN RAISE EXCEPTION 'peers refused by the test'; END $$`);
				await client.query(
					"CREATE TRIGGER refuse_peers BEFORE INSERT ON peers FOR EACH ROW EXECUTE FUNCTION refuse()",
				);
				const failed = await migrate(["--from", `sqlite:${source}`, "--to", `postgres:${dsn}`]);
				expect(failed.code).toBe(1);
				const lines = failed.stderr.trim().split("\n");
				expect(lines).toHaveLength(1);
				expect(lines[0]).toMatch(/peers refused by the test.*rolled back, the target \S+ is empty/);
				for (const table of ["accounts", "users", "server_keys", "peers", "audit_events"]) {
					const { rows } = await client.query(`SELECT COUNT(*) AS n FROM ${table}`);
					expect(Number(rows[0].n), table).toBe(0);
				}
			} finally {
				await client.end();
			}
			expect(folderHash(dir.path)).toBe(before);

			for (const args of [
				["--to", `postgres:${cluster().dsn("x")}`],
				["--from", `sqlite:${source}`, "--to", "mysql://h/db"],
				["--from", `sqlite:${source}`, "--to", "postgres:not a url"],
				[
					"--from",
					`sqlite:${join(dir.path, "missing.db")}`,
					"--to",
					`postgres:${cluster().dsn("x")}`,
				],
			]) {
				const r = await migrate(args);
				expect(r.code, args.join(" ")).toBe(1);
				expect(r.stderr.trim().split("\n"), r.stderr).toHaveLength(1);
			}
		} finally {
			dir.remove();
		}
	}, 120_000);
});
