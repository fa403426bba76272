import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { recordPeerMeta } from "../src/app/peers.js";
import type { Account, Peer } from "../src/domain/types.js";
import { account, peer } from "../src/store/conformance/fixtures.js";
import { openTestStore, type TestStoreHandle } from "./test-store.js";

// A Sync stream's system info is written only when it differs from the
// stored one: after a Login that stored it, a reconnecting agent's Sync
// writes nothing (no revision move, no reload on other instances).

let dir: string;
let handle: TestStoreHandle;
let acc: Account;
let p: Peer;

beforeEach(async () => {
	dir = mkdtempSync(join(tmpdir(), "starling-peer-meta-"));
	handle = await openTestStore(dir);
	acc = account();
	p = peer(acc, 1);
	await handle.store.write(async (tx) => {
		await tx.insertAccount(acc);
		await tx.insertPeer(p);
	});
});

afterEach(async () => {
	await handle.close();
	rmSync(dir, { recursive: true, force: true });
});

it("writes nothing for the same system info, and the new info (login time kept) when it changed", async () => {
	const before = await handle.store.getAccountRevision(acc.id);
	expect(await recordPeerMeta(handle.store, p, { ...p.system })).toBe(p);
	expect(await handle.store.getAccountRevision(acc.id)).toBe(before);

	const upgraded = { ...p.system, agentVersion: "2.0.0" };
	const after = await recordPeerMeta(handle.store, p, upgraded);
	expect(after?.system).toEqual(upgraded);
	const stored = await handle.store.getPeer(acc.id, p.id);
	expect(stored?.system).toEqual(upgraded);
	expect(stored?.lastLogin).toEqual(p.lastLogin);
	expect(await handle.store.getAccountRevision(acc.id)).not.toBe(before);
});
