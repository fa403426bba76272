import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { recordPeerLogin } from "../src/app/peers.js";
import { openSyncSession } from "../src/app/sessions.js";
import type { Account, Peer } from "../src/domain/types.js";
import { account, at, peer } from "../src/store/conformance/fixtures.js";
import { GroupCommit } from "../src/store/group-commit.js";
import { StoreUnavailableError, type StoreWrites } from "../src/store/store.js";
import { openTestStore, type TestStoreHandle } from "./test-store.js";

// Group commit against the real test store (SQLite file, or PostgreSQL in
// `pnpm test:postgres`): writes that pile up behind one in flight share a
// transaction, and each still gets its own result or error.

let dir: string;
let handle: TestStoreHandle;
let acc: Account;
let peers: Peer[];

beforeEach(async () => {
	dir = mkdtempSync(join(tmpdir(), "starling-group-commit-"));
	handle = await openTestStore(dir);
	acc = account();
	peers = Array.from({ length: 60 }, (_, i) => peer(acc, i + 1));
	await handle.store.write(async (tx) => {
		await tx.insertAccount(acc);
		for (const p of peers) await tx.insertPeer(p);
	});
});

afterEach(async () => {
	await handle.close();
	rmSync(dir, { recursive: true, force: true });
});

const session = (p: Peer, i: number) => ({
	streamId: `stream-${i}`,
	accountId: p.accountId,
	peerId: p.id,
	instanceId: "i1",
	since: at(1000 + i),
});

describe("GroupCommit", () => {
	it("commits a burst of session opens and logins in a few transactions, each with its own result", async () => {
		await handle.store.write((tx) =>
			tx.putInstance({ id: "i1", startedAt: at(), heartbeatAt: at() }),
		);
		const writes = new GroupCommit(handle.store);
		const opened = await Promise.all(
			peers.map((p, i) => openSyncSession(writes, p, session(p, i))),
		);
		const logins = await Promise.all(
			peers.map((p) =>
				recordPeerLogin(writes, p, { ...p.system, hostname: `renamed-${p.name}` }, at(5000)),
			),
		);
		expect(opened.map((p) => p?.id)).toEqual(peers.map((p) => p.id));
		expect(opened.every((p) => p?.connected)).toBe(true);
		expect(logins.map((p) => p?.system.hostname)).toEqual(peers.map((p) => `renamed-${p.name}`));
		const stored = await handle.store.listPeers(acc.id);
		expect(stored.every((p) => p.connected && p.system.hostname.startsWith("renamed-"))).toBe(true);
		expect(await handle.store.countSyncSessionsOfPeer(peers[7]!.id)).toBe(1);
		const { batches, writes: carried } = writes.stats();
		expect(carried).toBe(120);
		// The first write of each burst runs alone; the rest pile up behind it.
		expect(batches).toBeLessThanOrEqual(6);
	});

	it("a failing write rolls back alone: the others of its batch commit, it gets its own error", async () => {
		const writes = new GroupCommit(handle.store);
		const boom = new Error("refused by a rule");
		const rename = (p: Peer, name: string) =>
			writes.write(async (tx) => {
				await tx.updatePeer({ ...p, name });
				return name;
			});
		// The first runs alone; the next three share one transaction, the middle one throwing
		// after its own update (which must not be committed).
		const first = rename(peers[0]!, "first");
		const batch = [
			rename(peers[1]!, "kept-1"),
			writes.write(async (tx) => {
				await tx.updatePeer({ ...peers[2]!, name: "must-not-stay" });
				throw boom;
			}),
			rename(peers[3]!, "kept-3"),
		];
		const settled = await Promise.allSettled([first, ...batch]);
		expect(settled.map((s) => s.status)).toEqual([
			"fulfilled",
			"fulfilled",
			"rejected",
			"fulfilled",
		]);
		expect((settled[2] as PromiseRejectedResult).reason).toBe(boom);
		const names = new Map((await handle.store.listPeers(acc.id)).map((p) => [p.id, p.name]));
		expect(names.get(peers[1]!.id)).toBe("kept-1");
		expect(names.get(peers[2]!.id)).toBe(peers[2]!.name);
		expect(names.get(peers[3]!.id)).toBe("kept-3");
	});

	it("a store that fails a batch fails each of its writes with the store's error, and keeps serving", async () => {
		let failNext = false;
		const flaky: StoreWrites = {
			write: (fn) => {
				if (failNext) {
					failNext = false;
					return Promise.reject(new StoreUnavailableError("database is unavailable"));
				}
				return handle.store.write(fn);
			},
		};
		const writes = new GroupCommit(flaky);
		const first = writes.write(async () => "alone");
		failNext = true;
		const failed = await Promise.allSettled([
			first,
			writes.write(async () => "a"),
			writes.write(async () => "b"),
		]);
		expect(failed.map((s) => s.status)).toEqual(["fulfilled", "rejected", "rejected"]);
		expect(await writes.write(async () => "after")).toBe("after");
	});
});
