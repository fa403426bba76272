import { applyNetworkMapDelta } from "@starling/netmap";
import type { NetworkMap } from "@starling/proto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Account, Peer } from "../domain/types.js";
import { deltaForViewer } from "./map-updates.js";
import { computeNetworkMap, type ServiceEndpoints } from "./network-map.js";

const account: Account = {
	id: "acc",
	network: "100.64.0.0/16",
	dnsDomain: "starling.internal",
	createdAt: new Date(0),
	settings: { peerLoginExpirationEnabled: false, peerLoginExpirationSeconds: 0 },
};
const endpoints: ServiceEndpoints = { signal: { url: "http://127.0.0.1:10000" }, stunServers: [] };

function makePeer(n: number): Peer {
	return {
		id: `p${n}`,
		accountId: account.id,
		wgPublicKey: `key-${String(n).padStart(4, "0")}`,
		name: `peer${n}`,
		dnsLabel: `peer${n}`,
		ip: `100.64.0.${n + 1}`,
		system: {
			hostname: `peer${n}`,
			os: "linux",
			osVersion: "",
			kernelVersion: "",
			agentVersion: "",
		},
		setupKeyId: null,
		userId: null,
		ephemeral: false,
		sshEnabled: false,
		loginExpirationEnabled: false,
		connected: false,
		createdAt: new Date(0),
		lastLogin: new Date(0),
		lastSeen: new Date(0),
	};
}

type Op =
	| { kind: "add" }
	| { kind: "delete"; pick: number }
	| { kind: "rename"; pick: number; name: string }
	| { kind: "connect"; pick: number; connected: boolean; at: number }
	| { kind: "flush" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
	fc.constant<Op>({ kind: "add" }),
	fc.record({ kind: fc.constant("delete" as const), pick: fc.nat() }),
	fc.record({
		kind: fc.constant("rename" as const),
		pick: fc.nat(),
		name: fc.constantFrom("a", "b", "web", "db"),
	}),
	fc.record({
		kind: fc.constant("connect" as const),
		pick: fc.nat(),
		connected: fc.boolean(),
		at: fc.nat(1e9),
	}),
	fc.constant<Op>({ kind: "flush" }),
);

describe("deltaForViewer", () => {
	it("property: applying the pushed deltas to each agent's map equals its freshly computed map", () => {
		fc.assert(
			fc.property(
				fc.integer({ min: 0, max: 6 }),
				fc.array(opArb, { maxLength: 60 }),
				(initial, ops) => {
					let next = 0;
					const peers = new Map<string, Peer>();
					for (let i = 0; i < initial; i++) {
						const p = makePeer(next++);
						peers.set(p.wgPublicKey, p);
					}
					let serial = 1;
					// What each connected agent holds, built only from what was pushed.
					const agents = new Map<string, NetworkMap>();
					for (const p of peers.values()) {
						agents.set(
							p.wgPublicKey,
							computeNetworkMap(p, peers.values(), account, endpoints, serial),
						);
					}
					let pending = new Map<string, Peer | null>();
					const flush = () => {
						if (pending.size === 0) return;
						serial += 1;
						for (const [key, map] of agents) {
							const viewer = peers.get(key);
							if (!viewer) {
								agents.delete(key);
								continue;
							}
							const delta = deltaForViewer(viewer, pending, account, map.self, map.serial, serial);
							if (delta) agents.set(key, applyNetworkMapDelta(map, delta));
						}
						pending = new Map();
						for (const [key, map] of agents) {
							const fresh = computeNetworkMap(
								peers.get(key)!,
								peers.values(),
								account,
								endpoints,
								map.serial,
							);
							expect(map).toEqual(fresh);
						}
					};
					for (const op of ops) {
						const keys = [...peers.keys()];
						const target =
							"pick" in op && keys.length > 0 ? peers.get(keys[op.pick % keys.length]!) : undefined;
						if (op.kind === "add") {
							const p = makePeer(next++);
							peers.set(p.wgPublicKey, p);
							pending.set(p.wgPublicKey, p);
							// A new agent connects and gets a full map at the current serial.
							agents.set(
								p.wgPublicKey,
								computeNetworkMap(p, peers.values(), account, endpoints, serial),
							);
						} else if (op.kind === "delete" && target) {
							peers.delete(target.wgPublicKey);
							pending.set(target.wgPublicKey, null);
						} else if (op.kind === "rename" && target) {
							const p = { ...target, name: op.name, dnsLabel: `${op.name}-${target.id}` };
							peers.set(p.wgPublicKey, p);
							pending.set(p.wgPublicKey, p);
						} else if (op.kind === "connect" && target) {
							const p = { ...target, connected: op.connected, lastSeen: new Date(op.at) };
							peers.set(p.wgPublicKey, p);
							pending.set(p.wgPublicKey, p);
						} else if (op.kind === "flush") {
							flush();
						}
					}
					flush();
				},
			),
			{ numRuns: 300 },
		);
	});

	it("one peer joining costs every other peer one upsert, not a full map", () => {
		const peers = Array.from({ length: 1000 }, (_, i) => makePeer(i));
		const joined = makePeer(5000);
		const changes = new Map([[joined.wgPublicKey, joined]]);
		const viewer = peers[0]!;
		const delta = deltaForViewer(viewer, changes, account, undefined, 1, 2);
		expect(delta?.upsertedPeers.map((p) => p.wgPublicKey)).toEqual([joined.wgPublicKey]);
		expect(delta?.removedPeerKeys).toEqual([]);
	});

	it("a change to the viewer itself updates its self config only when it differs", () => {
		const viewer = makePeer(1);
		const full = computeNetworkMap(viewer, [viewer], account, endpoints, 1);
		const same = deltaForViewer(
			viewer,
			new Map([[viewer.wgPublicKey, viewer]]),
			account,
			full.self,
			1,
			2,
		);
		expect(same).toBeUndefined();
		const renamed = { ...viewer, name: "db", dnsLabel: "db" };
		const delta = deltaForViewer(
			renamed,
			new Map([[viewer.wgPublicKey, renamed]]),
			account,
			full.self,
			1,
			2,
		);
		expect(delta?.self?.fqdn).toBe("db.starling.internal");
	});
});
