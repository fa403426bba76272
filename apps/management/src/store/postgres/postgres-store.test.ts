import { readdirSync, readFileSync } from "node:fs";
import { type PostgresCluster, startPostgres } from "@starling/lab";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FreshStore, runStoreConformance } from "../conformance/conformance.js";
import * as f from "../conformance/fixtures.js";
import { postgresDialect } from "../sql/dialect.js";
import {
	BASELINE_VERSION,
	LATEST_SCHEMA_VERSION,
	SHARED_MIGRATIONS,
	type SharedMigration,
} from "../sql/migrations.js";
import { type Store, StoreConflictError, StoreUnavailableError } from "../store.js";
import { MAX_WRITE_ATTEMPTS, PostgresStore, UNIQUE_RACE_ATTEMPTS } from "./postgres-store.js";

// The store conformance suite and PostgreSQL-only checks on a real
// PostgreSQL 15 cluster started for this file (packages/lab/src/postgres.ts):
// a fresh database per test, every instance closed after it.

/** The pids whose parent is `pid` (PostgreSQL's backends and helpers under its postmaster). */
function childrenOf(pid: number): number[] {
	return readdirSync("/proc")
		.filter((e) => /^\d+$/.test(e))
		.filter((e) => {
			try {
				const stat = readFileSync(`/proc/${e}/stat`, "utf8");
				return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid;
			} catch {
				return false;
			}
		})
		.map(Number);
}

let cluster: PostgresCluster;
/** A database migrated once; each test's database is a copy (no migration per test). */
const TEMPLATE = "migrated";
beforeAll(async () => {
	cluster = await startPostgres();
	await (await PostgresStore.open(await cluster.createDatabase(TEMPLATE), { poolSize: 1 })).close();
}, 60_000);
afterAll(async () => {
	await cluster?.destroy();
});

async function freshPostgres(): Promise<FreshStore> {
	const dsn = await cluster.createDatabase(undefined, { template: TEMPLATE });
	const opened: Store[] = [await PostgresStore.open(dsn, { poolSize: 8 })];
	return {
		store: opened[0]!,
		async openAnother() {
			const another = await PostgresStore.open(dsn, { poolSize: 8 });
			opened.push(another);
			return another;
		},
		async destroy() {
			for (const s of opened) await s.close();
		},
	};
}

runStoreConformance("postgres", freshPostgres);

describe("PostgresStore", () => {
	it("refuses read or write from inside its own transaction instead of waiting forever", async () => {
		const fresh = await freshPostgres();
		try {
			const { store } = fresh;
			await expect(store.write(() => store.countUsers())).rejects.toThrow(/inside a transaction/);
			await expect(store.read(() => store.read(async () => 1))).rejects.toThrow(
				/inside a transaction/,
			);
			expect(await store.countUsers()).toBe(0);
		} finally {
			await fresh.destroy();
		}
	});

	it("two instances inserting the same free address: the loser runs again on a fresh snapshot and picks another", async () => {
		// Found at 10,000 agents (pnpm bench sync-scale-out): PostgreSQL told the
		// race as a unique violation, not a serialization failure.
		const fresh = await freshPostgres();
		try {
			const { store } = fresh;
			const other = await fresh.openAnother();
			const acc = f.account();
			await store.write((tx) => tx.insertAccount(acc));
			let attempts = 0;
			await store.write(async (tx) => {
				attempts += 1;
				const taken = new Set((await tx.listPeerAddresses(acc.id)).map((p) => p.ip));
				const n = 1 + taken.size;
				if (attempts === 1) {
					// The other instance takes the same "next free" address and commits first.
					await other.write((o) => o.insertPeer(f.peer(acc, n)));
				}
				await tx.insertPeer(f.peer(acc, n + 100 * (attempts - 1), { ip: f.peer(acc, n).ip }));
			});
			expect(attempts).toBe(2);
			const ips = (await store.listPeers(acc.id)).map((p) => p.ip);
			expect(ips).toHaveLength(2);
			expect(new Set(ips).size).toBe(2);

			// A key that is really taken stays a conflict (after a few runs).
			let tries = 0;
			const dup = f.peer(acc, 50);
			await store.write((tx) => tx.insertPeer(dup));
			await expect(
				store.write(async (tx) => {
					tries += 1;
					await tx.insertPeer({ ...dup, id: `${dup.id}-again` });
				}),
			).rejects.toBeInstanceOf(StoreConflictError);
			expect(tries).toBe(UNIQUE_RACE_ATTEMPTS);
		} finally {
			await fresh.destroy();
		}
	});

	it("a busy pool is not an unreachable database: callers wait their turn for a connection", async () => {
		// 24 transactions on 2 connections, each holding one 100 ms, against a
		// 300 ms connect timeout: waiting in the pool would count against it
		// and answer "unreachable" (503) to a burst of logins.
		const dsn = await cluster.createDatabase(undefined, { template: TEMPLATE });
		const changes: boolean[] = [];
		const store = await PostgresStore.open(dsn, {
			poolSize: 2,
			connectTimeoutMs: 300,
			onAvailabilityChange: (available) => changes.push(available),
		});
		try {
			const acc = f.account();
			await store.write((tx) => tx.insertAccount(acc));
			const hold = () => new Promise((r) => setTimeout(r, 100));
			const results = await Promise.allSettled(
				Array.from({ length: 24 }, (_, i) =>
					i % 3 === 0
						? store.write(async (tx) => {
								await tx.getAccount(acc.id);
								await hold();
							})
						: store.read(async (tx) => {
								await tx.getAccount(acc.id);
								await hold();
							}),
				),
			);
			expect(results.filter((r) => r.status === "rejected")).toEqual([]);
			expect(changes).toEqual([]);
		} finally {
			await store.close();
		}
	});

	it("an urgent write (the heartbeat) goes ahead of a backlog of writes and reads", async () => {
		// A 4 s backlog: 10 writes of 300 ms each, behind them reads filling
		// the one connection. The heartbeat must not wait for them, or another
		// instance takes this one for dead (its expiry is 15 s).
		const dsn = await cluster.createDatabase(undefined, { template: TEMPLATE });
		const store = await PostgresStore.open(dsn, { poolSize: 1 });
		try {
			await store.write((tx) =>
				tx.putInstance({ id: "i1", startedAt: f.at(), heartbeatAt: f.at() }),
			);
			const hold = () => new Promise((r) => setTimeout(r, 300));
			const backlog = [
				...Array.from({ length: 10 }, () => store.write(async () => hold())),
				...Array.from({ length: 5 }, () => store.read(async () => hold())),
			];
			await new Promise((r) => setTimeout(r, 50));
			const t0 = Date.now();
			const touched = await store.write((tx) => tx.touchInstance("i1", f.at(60)), {
				urgent: true,
			});
			const waited = Date.now() - t0;
			expect(touched).toBe(true);
			// It waits only for the transaction holding the one connection.
			expect(waited).toBeLessThan(1_500);
			await Promise.all(backlog);
			expect((await store.listInstances())[0]?.heartbeatAt).toEqual(f.at(60));
		} finally {
			await store.close();
		}
	}, 30_000);

	it("a write that loses a race runs again on a fresh snapshot; one that never serializes gives up after the bound", async () => {
		const fresh = await freshPostgres();
		try {
			const { store } = fresh;
			const other = await fresh.openAnother();
			const acc = f.account();
			await store.write((tx) => tx.insertAccount(acc));
			// Attempt 1 reads the account, another instance commits a change to it,
			// then attempt 1 writes the same row: SQLSTATE 40001, and `fn` runs again.
			let attempts = 0;
			await store.write(async (tx) => {
				attempts += 1;
				const seen = await tx.getAccount(acc.id);
				if (attempts === 1) {
					await other.write((o) =>
						o.updateAccount({
							...acc,
							settings: { ...acc.settings, peerLoginExpirationSeconds: 7 },
						}),
					);
				}
				await tx.updateAccount({ ...seen!, dnsDomain: seen!.dnsDomain, network: "10.250.0.0/24" });
			});
			expect(attempts).toBe(2);
			const after = await store.getAccount(acc.id);
			expect(after?.network).toBe("10.250.0.0/24");
			expect(after?.settings.peerLoginExpirationSeconds).toBe(7);

			let tries = 0;
			await expect(
				store.write(async () => {
					tries += 1;
					throw Object.assign(new Error("could not serialize access"), { code: "40001" });
				}),
			).rejects.toBeInstanceOf(StoreUnavailableError);
			expect(tries).toBe(MAX_WRITE_ATTEMPTS);
			// Any other error is thrown at once, unchanged.
			tries = 0;
			const mine = new Error("mine");
			await expect(
				store.write(async () => {
					tries += 1;
					throw mine;
				}),
			).rejects.toBe(mine);
			expect(tries).toBe(1);
		} finally {
			await fresh.destroy();
		}
	});

	it("a server that stops answering (frozen, not gone) fails calls within the timeouts instead of hanging", async () => {
		const own = await startPostgres();
		const changes: boolean[] = [];
		const store = await PostgresStore.open(await own.createDatabase(), {
			connectTimeoutMs: 1_000,
			statementTimeoutMs: 1_000,
			onAvailabilityChange: (available) => changes.push(available),
		});
		const frozen: number[] = [];
		try {
			expect(await store.countUsers()).toBe(0); // a connection now waits idle in the pool
			// Every process of the cluster: the postmaster and its children.
			const postmaster = own.pid()!;
			frozen.push(postmaster, ...childrenOf(postmaster));
			for (const pid of frozen) process.kill(pid, "SIGSTOP");
			for (let i = 0; i < 2; i++) {
				const started = Date.now();
				await expect(store.countUsers()).rejects.toBeInstanceOf(StoreUnavailableError);
				expect(Date.now() - started).toBeLessThan(6_000);
			}
			expect(changes).toEqual([false]);
		} finally {
			for (const pid of frozen) process.kill(pid, "SIGCONT");
		}
		try {
			for (let i = 0; i < 50 && !changes.includes(true); i++) {
				await store.countUsers().catch(() => undefined);
				if (!changes.includes(true)) await new Promise((r) => setTimeout(r, 200));
			}
			expect(await store.countUsers()).toBe(0);
			expect(changes).toEqual([false, true]);
		} finally {
			await store.close();
			await own.destroy();
		}
	}, 60_000);

	it("two instances migrating the same empty database at once both start, and it is migrated once", async () => {
		const dsn = await cluster.createDatabase();
		const stores = await Promise.all([1, 2, 3].map(() => PostgresStore.open(dsn, { poolSize: 2 })));
		try {
			for (const s of stores) expect(await s.schemaVersion()).toBe(LATEST_SCHEMA_VERSION);
			const client = new pg.Client({ connectionString: dsn });
			await client.connect();
			try {
				const { rows } = await client.query(
					"SELECT version FROM schema_migrations ORDER BY version",
				);
				expect(rows.map((r) => r.version)).toEqual([
					BASELINE_VERSION,
					...SHARED_MIGRATIONS.map((m) => m.version),
				]);
			} finally {
				await client.end();
			}
		} finally {
			for (const s of stores) await s.close();
		}
	});

	it("applies a shared migration (kysely's schema builder) after the baseline, once", async () => {
		const dsn = await cluster.createDatabase();
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
		const first = await PostgresStore.open(dsn, { sharedMigrations: [extra] });
		const second = await PostgresStore.open(dsn, { sharedMigrations: [extra] });
		try {
			expect(await first.schemaVersion()).toBe(5);
			const client = new pg.Client({ connectionString: dsn });
			await client.connect();
			try {
				const { rows } = await client.query(
					"SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'shared_probe' ORDER BY ordinal_position",
				);
				expect(rows).toEqual([
					{ column_name: "id", data_type: "text" },
					{ column_name: "at", data_type: "bigint" },
					{ column_name: "flag", data_type: "boolean" },
					{ column_name: "bytes", data_type: "bytea" },
				]);
			} finally {
				await client.end();
			}
		} finally {
			await first.close();
			await second.close();
		}
		expect(postgresDialect.name).toBe("postgres");
	});

	it("stores times as BIGINT milliseconds beyond 32 bits and addresses above 2^31", async () => {
		const fresh = await freshPostgres();
		try {
			const acc = f.account({ network: "200.1.2.0/24", createdAt: new Date(Date.UTC(2100, 0, 1)) });
			const p = f.peer(acc, 254);
			await fresh.store.write(async (tx) => {
				await tx.insertAccount(acc);
				await tx.insertPeer(p);
			});
			expect(await fresh.store.getAccount(acc.id)).toEqual(acc);
			expect(await fresh.store.getPeer(acc.id, p.id)).toEqual(p);
		} finally {
			await fresh.destroy();
		}
	});

	it("an unreachable server fails the open with its host:port, and calls fail with StoreUnavailableError while it is down", async () => {
		await expect(PostgresStore.open("postgres://postgres@127.0.0.1:1/none")).rejects.toThrow(
			/cannot reach PostgreSQL at 127\.0\.0\.1:1/,
		);

		// A second cluster of its own: stopping it must not disturb the other tests.
		const own = await startPostgres();
		const changes: string[] = [];
		const store = await PostgresStore.open(await own.createDatabase(), {
			onAvailabilityChange: (available) => changes.push(available ? "available" : "unavailable"),
		});
		try {
			expect(await store.countUsers()).toBe(0);
			await own.stopServer();
			for (let i = 0; i < 3; i++) {
				await expect(store.countUsers()).rejects.toBeInstanceOf(StoreUnavailableError);
				await expect(store.write((tx) => tx.insertAccount(f.account()))).rejects.toBeInstanceOf(
					StoreUnavailableError,
				);
			}
			expect(changes).toEqual(["unavailable"]);
			await own.startServer();
			expect(await store.countUsers()).toBe(0);
			expect(changes).toEqual(["unavailable", "available"]);
		} finally {
			await store.close();
			await own.destroy();
		}
	});
});
