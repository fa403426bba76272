// Route changes through the hub, against a real SQLite file: each one is
// pushed as a delta to the agents whose routes (or route-linked peers)
// change, and to nobody else.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@starling/log";
import type { NetworkMapDelta, SyncResponse } from "@starling/proto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bootstrapIfEmpty } from "../app/accounts.js";
import { createGroup } from "../app/groups.js";
import { registerPeer } from "../app/peers.js";
import { deletePolicy } from "../app/policies.js";
import { createRoute, deleteRoute, updateRoute } from "../app/routes.js";
import type { RouteInput } from "../app/routing.js";
import { createSetupKey } from "../app/setup-keys.js";
import { hashSecret } from "../core/secrets.js";
import type { Peer } from "../domain/types.js";
import { SqliteStore } from "../store/sqlite/sqlite-store.js";
import { SyncHub, type SyncSink } from "./sync-hub.js";

const silent = createLogger("test", { level: "silent" });
const admin = { id: "admin", name: "admin", email: "admin@example.com" };

function recordingSink(): SyncSink & { updates: SyncResponse[] } {
	const updates: SyncResponse[] = [];
	return {
		updates,
		write: (u) => updates.push(u),
		writable: () => true,
		onWritable: () => {},
		end: () => {},
	};
}

/** The deltas a sink received after `from`. */
function deltasSince(sink: { updates: SyncResponse[] }, from: number): NetworkMapDelta[] {
	return sink.updates
		.slice(from)
		.map((u) => u.update)
		.flatMap((u) => (u?.$case === "delta" ? [u.value] : []));
}

describe("SyncHub: route changes", () => {
	let dir: string;
	let store: SqliteStore;
	let hub: SyncHub | undefined;
	beforeEach(() => {
		dir = mkdtempSync(join(tmpdir(), "starling-hub-routes-"));
		store = SqliteStore.open(join(dir, "management.db"));
	});
	afterEach(async () => {
		hub?.close();
		await store.close();
		rmSync(dir, { recursive: true, force: true });
	});

	it("a route created, changed and deleted reaches its receivers and router only", async () => {
		const boot = await bootstrapIfEmpty(
			store,
			{ networkPool: "100.64.0.0/10", accountPrefixLength: 16, dnsDomain: "s.internal" },
			new Date(),
		);
		const accountId = boot!.account.id;
		const { plainKey } = await createSetupKey(
			store,
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
			const r = await registerPeer(store, hashSecret(plainKey), {
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
		const [client, laptop, router, bystander] = [
			await register("client"),
			await register("laptop"),
			await register("router"),
			await register("bystander"),
		] as [Peer, Peer, Peer, Peer];
		// Without the Default policy nobody sees anybody: what routes link is all there is.
		for (const p of await store.listPolicies(accountId)) {
			await deletePolicy(
				store,
				{ peerChanged() {}, peerRemoved() {}, accessChanged() {} },
				accountId,
				p.id,
				admin,
				new Date(),
			);
		}

		hub = new SyncHub({
			store,
			sessions: { open: async (p) => p, close: async (p) => p },
			logger: silent,
			endpoints: { signal: { url: "http://127.0.0.1:10000" }, stunServers: [] },
			flushDelayMs: 5,
		});
		const clients = await createGroup(
			store,
			hub,
			accountId,
			{ name: "clients", peerIds: [client.id, laptop.id] },
			admin,
			new Date(),
		);
		const sinks = new Map<Peer, ReturnType<typeof recordingSink>>();
		for (const p of [client, laptop, router, bystander]) {
			const sink = recordingSink();
			sinks.set(p, sink);
			await hub.subscribe(p, sink);
		}
		await hub.flushAll();
		for (const sink of sinks.values()) expect(sink.updates[0]?.update?.$case).toBe("full");

		/** Runs a change, lets the hub push, and answers each agent's deltas. */
		const pushed = async (change: () => Promise<unknown>) => {
			const marks = new Map([...sinks].map(([p, s]) => [p, s.updates.length]));
			await change();
			await new Promise((r) => setTimeout(r, 50));
			await hub!.flushAll();
			return (p: Peer) => deltasSince(sinks.get(p)!, marks.get(p)!);
		};

		const input: RouteInput = {
			description: "office",
			networkId: "office",
			enabled: true,
			peerId: router.id,
			peerGroups: [],
			network: "198.18.10.0/24",
			metric: 10,
			masquerade: true,
			groups: [clients.id],
			keepRoute: false,
			accessControlGroups: [],
			skipAutoApply: false,
		};
		let routeId = "";
		const created = await pushed(async () => {
			routeId = (await createRoute(store, hub!, accountId, input, admin, new Date())).id;
		});
		for (const p of [client, laptop]) {
			const [d] = created(p);
			expect(created(p)).toHaveLength(1);
			expect(d!.routes?.routes.map((r) => [r.id, r.routerKey, r.metric])).toEqual([
				[`${routeId}:${router.id}`, router.wgPublicKey, 10],
			]);
			expect(d!.upsertedPeers.map((x) => x.peerId)).toEqual([router.id]);
			expect(d!.servedRoutes).toBeUndefined();
		}
		const [served] = created(router);
		expect(served!.servedRoutes?.routes).toEqual([
			{
				routeId,
				network: "198.18.10.0/24",
				masquerade: true,
				filtered: false,
				rules: [],
				// In map order (by public key).
				sources: expect.arrayContaining([`${client.ip}/32`, `${laptop.ip}/32`]),
			},
		]);
		expect(served!.servedRoutes?.routes[0]?.sources).toHaveLength(2);
		expect(served!.upsertedPeers.map((x) => x.peerId).sort()).toEqual(
			[client.id, laptop.id].sort(),
		);
		expect(served!.routes).toBeUndefined();
		expect(created(bystander)).toEqual([]);

		// A metric change is the receivers' business alone.
		const metric = await pushed(() =>
			updateRoute(store, hub!, accountId, routeId, { ...input, metric: 20 }, admin, new Date()),
		);
		for (const p of [client, laptop]) {
			expect(metric(p).map((d) => d.routes?.routes[0]?.metric)).toEqual([20]);
			expect(metric(p)[0]!.upsertedPeers).toEqual([]);
		}
		expect(metric(router)).toEqual([]);
		expect(metric(bystander)).toEqual([]);

		// Masquerade off: the router's alone.
		const masq = await pushed(() =>
			updateRoute(
				store,
				hub!,
				accountId,
				routeId,
				{ ...input, metric: 20, masquerade: false },
				admin,
				new Date(),
			),
		);
		expect(masq(router).map((d) => d.servedRoutes?.routes[0]?.masquerade)).toEqual([false]);
		for (const p of [client, laptop, bystander]) expect(masq(p)).toEqual([]);

		// Deleted: withdrawn, with the peers only the route linked.
		const deleted = await pushed(() =>
			deleteRoute(store, hub!, accountId, routeId, admin, new Date()),
		);
		for (const p of [client, laptop]) {
			expect(deleted(p).map((d) => [d.routes?.routes, d.removedPeerKeys])).toEqual([
				[[], [router.wgPublicKey]],
			]);
		}
		expect(deleted(router)[0]!.servedRoutes?.routes).toEqual([]);
		expect(deleted(router)[0]!.removedPeerKeys.sort()).toEqual(
			[client.wgPublicKey, laptop.wgPublicKey].sort(),
		);
		expect(deleted(bystander)).toEqual([]);
	});
});
