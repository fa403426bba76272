// The hub's reload from the store, against a real SQLite file whose reads
// can be made to fail: a failed reload pushes nothing and keeps the state;
// the next check pushes the difference once reads work again.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@starling/log";
import type { SyncResponse } from "@starling/proto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bootstrapIfEmpty } from "../app/accounts.js";
import { registerPeer, updatePeer } from "../app/peers.js";
import { createSetupKey } from "../app/setup-keys.js";
import { hashSecret } from "../core/secrets.js";
import type { Peer } from "../domain/types.js";
import { SqliteStore } from "../store/sqlite/sqlite-store.js";
import type { Store } from "../store/store.js";
import { SyncHub, type SyncSink } from "./sync-hub.js";

const silent = createLogger("test", { level: "silent" });

/** The real store, with reads that throw while `failing` is set (writes still work). */
function failingReads(store: Store): { store: Store; failing: { on: boolean } } {
	const failing = { on: false };
	const wrapped = new Proxy(store, {
		get(target, prop, receiver) {
			if (prop === "read")
				return <T>(fn: Parameters<Store["read"]>[0]) =>
					failing.on
						? Promise.reject(new Error("disk I/O error (test)"))
						: (target.read(fn) as Promise<T>);
			const value = Reflect.get(target, prop, receiver);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
	return { store: wrapped, failing };
}

function recordingSink(): SyncSink & { updates: SyncResponse[]; ended: string[] } {
	const updates: SyncResponse[] = [];
	const ended: string[] = [];
	return {
		updates,
		ended,
		write: (u) => updates.push(u),
		writable: () => true,
		onWritable: () => {},
		end: (code) => ended.push(code),
	};
}

describe("SyncHub reload with a store that fails reads", () => {
	let dir: string;
	let base: SqliteStore;
	let hub: SyncHub | undefined;
	beforeEach(() => {
		dir = mkdtempSync(join(tmpdir(), "starling-hub-"));
		base = SqliteStore.open(join(dir, "management.db"));
	});
	afterEach(async () => {
		hub?.close();
		await base.close();
		rmSync(dir, { recursive: true, force: true });
	});

	it("pushes nothing on a failed reload, keeps the old state, and catches up on the next check", async () => {
		const { store, failing } = failingReads(base);
		const boot = await bootstrapIfEmpty(
			base,
			{ networkPool: "100.64.0.0/10", accountPrefixLength: 16, dnsDomain: "s.internal" },
			new Date(),
		);
		const accountId = boot!.account.id;
		const { plainKey } = await createSetupKey(
			base,
			accountId,
			{
				name: "k",
				type: "reusable",
				expiresInSeconds: 3600,
				autoGroups: [],
				usageLimit: 0,
				ephemeral: false,
			},
			new Date(),
		);
		const register = async (name: string): Promise<Peer> => {
			const r = await registerPeer(base, hashSecret(plainKey), {
				wgPublicKey: randomBytes(32).toString("base64"),
				name,
				system: {
					hostname: name,
					os: "linux",
					osVersion: "",
					kernelVersion: "",
					agentVersion: "",
					connectionIp: "",
				},
				now: new Date(),
			});
			if (!r.ok) throw new Error(r.reason);
			return r.peer;
		};
		const web = await register("web");
		await register("db");

		hub = new SyncHub({
			store,
			sessions: { open: async (p) => p, close: async (p) => p },
			logger: silent,
			endpoints: { signal: { url: "http://127.0.0.1:10000" }, stunServers: [] },
			flushDelayMs: 5,
		});
		const sink = recordingSink();
		await hub.subscribe(web, sink);
		await hub.flushAll();
		const full = sink.updates[0]?.update;
		expect(full?.$case).toBe("full");
		const loaded = hub.heldAccountRevisions().get(accountId);

		// Another instance registers a peer and renames db; this instance's reads fail.
		failing.on = true;
		const cache = await register("cache");
		const dbPeer = (await base.listPeers(accountId)).find((p) => p.name === "db")!;
		const before = sink.updates.length;
		// A rename made here waits too: it is not pushed beside state that could not be read.
		hub.refreshAccount(accountId);
		await updatePeer(base, hub, accountId, dbPeer.id, { name: "database" });
		await new Promise((r) => setTimeout(r, 30));
		await hub.flushAll();
		expect(sink.updates.length).toBe(before);
		expect(sink.ended).toEqual([]);
		expect(hub.heldAccountRevisions().get(accountId)).toBe(loaded);
		// Retrying while reads still fail sends nothing either.
		hub.retryFailedReloads();
		await new Promise((r) => setTimeout(r, 30));
		expect(sink.updates.length).toBe(before);

		// Reads work again: the next check's retry pushes the whole difference once.
		failing.on = false;
		hub.retryFailedReloads();
		await new Promise((r) => setTimeout(r, 50));
		await hub.flushAll();
		const deltas = sink.updates.slice(before).map((u) => u.update);
		expect(deltas.map((d) => d?.$case)).toEqual(["delta"]);
		const delta = deltas[0]?.$case === "delta" ? deltas[0].value : undefined;
		const upserted = delta?.upsertedPeers.map((p) => p.name).sort();
		expect(upserted).toEqual(["cache", "database"]);
		expect(delta?.upsertedPeers.find((p) => p.name === "cache")?.wgPublicKey).toBe(
			cache.wgPublicKey,
		);
		expect(hub.heldAccountRevisions().get(accountId)).toBe(
			await base.getAccountRevision(accountId),
		);
	});

	it("a peer deleted elsewhere leaves the others' maps and its stream here ends as deleted", async () => {
		const boot = await bootstrapIfEmpty(
			base,
			{ networkPool: "100.64.0.0/10", accountPrefixLength: 16, dnsDomain: "s.internal" },
			new Date(),
		);
		const accountId = boot!.account.id;
		const { plainKey } = await createSetupKey(
			base,
			accountId,
			{
				name: "k",
				type: "reusable",
				expiresInSeconds: 3600,
				autoGroups: [],
				usageLimit: 0,
				ephemeral: false,
			},
			new Date(),
		);
		const peers: Peer[] = [];
		for (const name of ["a", "b"]) {
			const r = await registerPeer(base, hashSecret(plainKey), {
				wgPublicKey: randomBytes(32).toString("base64"),
				name,
				system: {
					hostname: name,
					os: "",
					osVersion: "",
					kernelVersion: "",
					agentVersion: "",
					connectionIp: "",
				},
				now: new Date(),
			});
			if (!r.ok) throw new Error(r.reason);
			peers.push(r.peer);
		}
		hub = new SyncHub({
			store: base,
			sessions: { open: async (p) => p, close: async (p) => p },
			logger: silent,
			endpoints: { signal: { url: "http://127.0.0.1:10000" }, stunServers: [] },
			flushDelayMs: 5,
		});
		const sa = recordingSink();
		const sb = recordingSink();
		await hub.subscribe(peers[0]!, sa);
		await hub.subscribe(peers[1]!, sb);
		await hub.flushAll();
		await base.write((tx) => tx.deletePeer(accountId, peers[1]!.id));
		const before = sa.updates.length;
		hub.refreshAccount(accountId);
		await new Promise((r) => setTimeout(r, 50));
		await hub.flushAll();
		expect(sb.ended).toEqual(["deleted"]);
		const last = sa.updates.slice(before).at(-1)?.update;
		expect(last?.$case === "delta" ? last.value.removedPeerKeys : []).toEqual([
			peers[1]!.wgPublicKey,
		]);

		// A Sync stream of a peer deleted between the caller's read and the
		// session write (the write finds no peer) ends as deleted, and the
		// caller's stale copy never reaches the others' maps.
		const late = new SyncHub({
			store: base,
			sessions: { open: async () => undefined, close: async () => undefined },
			logger: silent,
			endpoints: { signal: { url: "http://127.0.0.1:10000" }, stunServers: [] },
			flushDelayMs: 5,
		});
		try {
			const sc = recordingSink();
			await late.subscribe(peers[1]!, sc);
			await late.flushAll();
			expect(sc.ended).toEqual(["deleted"]);
			expect(sc.updates).toEqual([]);
			expect(late.stats().streams).toBe(0);
		} finally {
			late.close();
		}
	});
});
