import { applyNetworkMapDelta } from "@starling/netmap";
import type { NetworkMap } from "@starling/proto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { accountFixture, peerFixture, policyFixture, ruleFixture } from "../domain/fixtures.js";
import type {
	Group,
	NetworkResource,
	NetworkRouter,
	Peer,
	Policy,
	PolicyRule,
	Protocol,
	Route,
} from "../domain/types.js";
import { affectedViewers, deltaForViewer, MapTransition } from "./map-updates.js";
import { computeNetworkMap, type ServiceEndpoints } from "./network-map.js";
import { type AccessConfig, AccessIndex } from "./policy.js";

const account = accountFixture();
const endpoints: ServiceEndpoints = { signal: { url: "http://127.0.0.1:10000" }, stunServers: [] };
const GROUPS = ["g0", "g1", "g2"];

function makePeer(n: number): Peer {
	return peerFixture({
		id: `p${n}`,
		accountId: account.id,
		// Not in id order, so that map order differs from creation order.
		wgPublicKey: `key-${(n * 7919) % 1000}-${n}`,
		name: `peer${n}`,
		ip: `100.64.${n >> 8}.${(n & 255) + 1}`,
	});
}

function rule(
	sources: string[],
	destinations: string[],
	extra: Partial<PolicyRule> = {},
): PolicyRule {
	return ruleFixture({ sources, destinations, ...extra });
}

function policy(id: string, rules: PolicyRule[], enabled = true): Policy {
	return policyFixture({ id, accountId: account.id, rules, enabled });
}

const groupChoice = fc.constantFrom("all", ...GROUPS);
const ruleArb: fc.Arbitrary<PolicyRule> = fc
	.record({
		sources: fc.uniqueArray(groupChoice, { minLength: 1, maxLength: 2 }),
		destinations: fc.uniqueArray(groupChoice, { minLength: 1, maxLength: 2 }),
		bidirectional: fc.boolean(),
		protocol: fc.constantFrom<Protocol>("all", "tcp", "udp", "icmp"),
		port: fc.constantFrom(22, 80, 5432),
	})
	.map((r) =>
		rule(r.sources, r.destinations, {
			bidirectional: r.bidirectional,
			protocol: r.protocol,
			ports: r.protocol === "tcp" || r.protocol === "udp" ? [r.port] : [],
		}),
	);

type Op =
	| { kind: "add"; groups: string[] }
	| { kind: "delete"; pick: number }
	| { kind: "rename"; pick: number; name: string }
	| { kind: "connect"; pick: number; connected: boolean; at: number }
	| { kind: "membership"; pick: number; group: string }
	| { kind: "policy"; slot: number; rules: PolicyRule[]; enabled: boolean }
	| { kind: "drop-policy"; slot: number }
	| { kind: "route"; slot: number; route: RouteOp }
	| { kind: "drop-route"; slot: number }
	| { kind: "resource"; slot: number; groups: string[]; prefix: string; enabled: boolean }
	| { kind: "network-router"; slot: number; router: RouterChoice; metric: number; enabled: boolean }
	| { kind: "flush" };

/** A routing peer picked among the current peers, or the peers of groups. */
type RouterChoice = { pick: number } | { groups: string[] };
interface RouteOp {
	networkId: string;
	network: string;
	router: RouterChoice;
	groups: string[];
	accessControlGroups: string[];
	metric: number;
	masquerade: boolean;
	enabled: boolean;
}
const NETWORKS = ["198.18.10.0/24", "198.18.11.0/24", "0.0.0.0/0"];
const routerChoiceArb: fc.Arbitrary<RouterChoice> = fc.oneof(
	fc.record({ pick: fc.nat() }),
	fc.record({ groups: fc.uniqueArray(groupChoice, { minLength: 1, maxLength: 2 }) }),
);
const routeOpArb: fc.Arbitrary<RouteOp> = fc.record({
	networkId: fc.constantFrom("a", "b"),
	network: fc.constantFrom(...NETWORKS),
	router: routerChoiceArb,
	groups: fc.uniqueArray(groupChoice, { maxLength: 2 }),
	accessControlGroups: fc.oneof(fc.constant([]), fc.uniqueArray(groupChoice, { maxLength: 2 })),
	metric: fc.integer({ min: 1, max: 20 }),
	masquerade: fc.boolean(),
	enabled: fc.boolean(),
});

const opArb: fc.Arbitrary<Op> = fc.oneof(
	{
		arbitrary: fc.record({
			kind: fc.constant("membership" as const),
			pick: fc.nat(),
			group: fc.constantFrom(...GROUPS),
		}),
		weight: 3,
	},
	{
		arbitrary: fc.record({
			kind: fc.constant("policy" as const),
			slot: fc.nat(3),
			rules: fc.array(ruleArb, { minLength: 1, maxLength: 2 }),
			enabled: fc.boolean(),
		}),
		weight: 2,
	},
	{ arbitrary: fc.constant<Op>({ kind: "flush" }), weight: 2 },
	fc.record({
		kind: fc.constant("add" as const),
		groups: fc.subarray(GROUPS),
	}),
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
	fc.record({ kind: fc.constant("drop-policy" as const), slot: fc.nat(3) }),
	{
		arbitrary: fc.record({
			kind: fc.constant("route" as const),
			slot: fc.nat(2),
			route: routeOpArb,
		}),
		weight: 2,
	},
	fc.record({ kind: fc.constant("drop-route" as const), slot: fc.nat(2) }),
	fc.record({
		kind: fc.constant("resource" as const),
		slot: fc.nat(1),
		groups: fc.uniqueArray(groupChoice, { maxLength: 2 }),
		prefix: fc.constantFrom(...NETWORKS, "198.18.12.7/32"),
		enabled: fc.boolean(),
	}),
	fc.record({
		kind: fc.constant("network-router" as const),
		slot: fc.nat(1),
		router: routerChoiceArb,
		metric: fc.integer({ min: 1, max: 20 }),
		enabled: fc.boolean(),
	}),
);

interface Agent {
	map: NetworkMap;
	base: AccessIndex;
}

const ruleKey = (r: NetworkMap["firewallRules"][number]) => JSON.stringify(r);
/** The map with its firewall rules in one order: an agent folding changes holds them as a set. */
const canonical = (m: NetworkMap) => ({
	...m,
	firewallRules: [...m.firewallRules].sort((a, b) => (ruleKey(a) < ruleKey(b) ? -1 : 1)),
});
const strip = (m: NetworkMap) => ({ ...canonical(m), serial: 0 });

describe("deltas between snapshots", () => {
	it("property: applying the pushed deltas to each agent's map equals its freshly computed map; agents whose map did not change get nothing but upserts of changed peers", () => {
		fc.assert(
			fc.property(
				fc.array(fc.subarray(GROUPS), { maxLength: 7 }),
				fc.boolean(),
				fc.array(opArb, { maxLength: 50 }),
				fc.boolean(),
				(initial, withDefault, ops, acceptsFirewallChanges) => {
					let next = 0;
					const peers = new Map<string, Peer>();
					const members = new Map<string, Set<string>>(GROUPS.map((g) => [g, new Set()]));
					const policies = new Map<number, Policy>();
					const routes = new Map<number, Route>();
					const resources = new Map<number, NetworkResource>();
					const networkRouters = new Map<number, NetworkRouter>();
					const bySlot = <T>(m: Map<number, T>) =>
						[...m.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
					/** The router fields of a route or network router: a current peer, or groups. */
					const routerFields = (choice: RouterChoice) => {
						if ("groups" in choice) return { peerId: null, peerGroups: choice.groups };
						const ids = [...peers.values()].map((p) => p.id);
						return { peerId: ids[choice.pick % Math.max(1, ids.length)] ?? "gone", peerGroups: [] };
					};
					if (withDefault)
						policies.set(0, policy("default", [rule(["all"], ["all"], { bidirectional: true })]));
					const config = (): AccessConfig => ({
						groups: [
							{ id: "all", accountId: account.id, name: "All", issued: "all", peerIds: [] },
							...GROUPS.map(
								(g): Group => ({
									id: g,
									accountId: account.id,
									name: g,
									issued: "api",
									peerIds: [...members.get(g)!],
								}),
							),
						],
						policies: [...policies.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p),
						routing: {
							routes: bySlot(routes),
							networks: [{ id: "office", accountId: account.id, name: "office", description: "" }],
							networkResources: bySlot(resources),
							networkRouters: bySlot(networkRouters),
						},
					});
					let current = AccessIndex.build(account, peers.values(), config());
					const rebuild = () => {
						current = AccessIndex.build(account, peers.values(), config());
					};
					let serial = 1;
					const agents = new Map<string, Agent>();
					const connect = (key: string) => {
						const i = current.indexOfKey(key)!;
						agents.set(key, {
							map: computeNetworkMap(current, i, endpoints, serial),
							base: current,
						});
					};
					for (const groups of initial) {
						const p = makePeer(next++);
						peers.set(p.wgPublicKey, p);
						for (const g of groups) members.get(g)!.add(p.id);
					}
					rebuild();
					for (const key of peers.keys()) connect(key);

					let pending = new Map<string, Peer | null>();
					const flush = () => {
						serial += 1;
						const transitions = new Map<AccessIndex, MapTransition>();
						for (const [key, agent] of agents) {
							if (!peers.has(key)) {
								agents.delete(key);
								continue;
							}
							let t = transitions.get(agent.base);
							if (!t) {
								t = new MapTransition(agent.base, current, pending);
								transitions.set(agent.base, t);
							}
							const delta = deltaForViewer(
								key,
								t,
								agent.map.self,
								agent.map.serial,
								serial,
								acceptsFirewallChanges,
							);
							if (!acceptsFirewallChanges) expect(delta?.firewallChanges).toBeUndefined();
							const fresh = computeNetworkMap(
								current,
								current.indexOfKey(key)!,
								endpoints,
								delta ? serial : agent.map.serial,
							);
							if (delta) {
								const applied = applyNetworkMapDelta(agent.map, delta);
								expect(canonical(applied)).toEqual(canonical(fresh));
								if (JSON.stringify(strip(agent.map)) === JSON.stringify(strip(fresh))) {
									// Nothing it holds changed: at most re-sent peers that did change.
									expect(delta.removedPeerKeys).toEqual([]);
									expect(delta.firewallRules).toBeUndefined();
									expect(delta.firewallChanges).toBeUndefined();
									expect(delta.self).toBeUndefined();
									expect(delta.routes).toBeUndefined();
									expect(delta.servedRoutes).toBeUndefined();
									for (const p of delta.upsertedPeers)
										expect(pending.has(p.wgPublicKey)).toBe(true);
								}
								agents.set(key, { map: applied, base: current });
							} else {
								expect(canonical(agent.map)).toEqual(canonical(fresh));
								agents.set(key, { map: agent.map, base: current });
							}
						}
						pending = new Map();
					};

					for (const op of ops) {
						const keys = [...peers.keys()];
						const target =
							"pick" in op && keys.length > 0 ? peers.get(keys[op.pick % keys.length]!) : undefined;
						if (op.kind === "add") {
							const p = makePeer(next++);
							peers.set(p.wgPublicKey, p);
							for (const g of op.groups) members.get(g)!.add(p.id);
							pending.set(p.wgPublicKey, p);
							rebuild();
							connect(p.wgPublicKey);
						} else if (op.kind === "delete" && target) {
							peers.delete(target.wgPublicKey);
							for (const m of members.values()) m.delete(target.id);
							pending.set(target.wgPublicKey, null);
							rebuild();
						} else if (op.kind === "rename" && target) {
							const p = { ...target, name: op.name, dnsLabel: `${op.name}-${target.id}` };
							peers.set(p.wgPublicKey, p);
							pending.set(p.wgPublicKey, p);
							// Attributes only: the index is updated in place, as the hub does.
							expect(current.updatePeer(p)).toBe(true);
						} else if (op.kind === "connect" && target) {
							const p = { ...target, connected: op.connected, lastSeen: new Date(op.at) };
							peers.set(p.wgPublicKey, p);
							pending.set(p.wgPublicKey, p);
							expect(current.updatePeer(p)).toBe(true);
						} else if (op.kind === "membership" && target) {
							const m = members.get(op.group)!;
							if (m.has(target.id)) m.delete(target.id);
							else m.add(target.id);
							rebuild();
						} else if (op.kind === "policy") {
							policies.set(
								op.slot,
								policy(
									`pol${op.slot}`,
									op.rules.map((r, i) => ({ ...r, id: `r${i}` })),
									op.enabled,
								),
							);
							rebuild();
						} else if (op.kind === "drop-policy") {
							policies.delete(op.slot);
							rebuild();
						} else if (op.kind === "route") {
							const r = op.route;
							routes.set(op.slot, {
								id: `rt${op.slot}`,
								accountId: account.id,
								description: "",
								networkId: r.networkId,
								enabled: r.enabled,
								...routerFields(r.router),
								network: r.network,
								metric: r.metric,
								masquerade: r.masquerade,
								groups: r.groups,
								keepRoute: false,
								accessControlGroups: r.accessControlGroups,
								skipAutoApply: false,
							});
							rebuild();
						} else if (op.kind === "drop-route") {
							routes.delete(op.slot);
							rebuild();
						} else if (op.kind === "resource") {
							resources.set(op.slot, {
								id: `res${op.slot}`,
								accountId: account.id,
								networkId: "office",
								name: `res${op.slot}`,
								description: "",
								address: op.prefix,
								type: op.prefix.endsWith("/32") ? "host" : "subnet",
								prefix: op.prefix,
								enabled: op.enabled,
								groups: op.groups,
							});
							rebuild();
						} else if (op.kind === "network-router") {
							networkRouters.set(op.slot, {
								id: `router${op.slot}`,
								accountId: account.id,
								networkId: "office",
								...routerFields(op.router),
								metric: op.metric,
								masquerade: true,
								enabled: op.enabled,
							});
							rebuild();
						} else if (op.kind === "flush") {
							flush();
						}
					}
					flush();
				},
			),
			{ numRuns: 400 },
		);
	});

	it("one peer joining under the Default policy costs every other peer one upsert and no firewall rules", () => {
		const peers = Array.from({ length: 1000 }, (_, i) => makePeer(i));
		const cfg: AccessConfig = {
			groups: [{ id: "all", accountId: account.id, name: "All", issued: "all", peerIds: [] }],
			policies: [policy("default", [rule(["all"], ["all"], { bidirectional: true })])],
		};
		const base = AccessIndex.build(account, peers, cfg);
		const joined = makePeer(5000);
		const next = AccessIndex.build(account, [...peers, joined], cfg);
		const t = new MapTransition(base, next, new Map([[joined.wgPublicKey, joined]]));
		expect(t.scope).toEqual(new Set());
		const delta = deltaForViewer(peers[0]!.wgPublicKey, t, undefined, 1, 2);
		expect(delta?.upsertedPeers.map((p) => p.wgPublicKey)).toEqual([joined.wgPublicKey]);
		expect(delta?.removedPeerKeys).toEqual([]);
		expect(delta?.firewallRules).toBeUndefined();
	});

	it("a policy change scopes to the members of the groups it names; others get nothing", () => {
		const peers = Array.from({ length: 30 }, (_, i) => makePeer(i));
		const groups: Group[] = [
			{ id: "all", accountId: account.id, name: "All", issued: "all", peerIds: [] },
			{ id: "web", accountId: account.id, name: "web", issued: "api", peerIds: ["p0", "p1"] },
			{ id: "db", accountId: account.id, name: "db", issued: "api", peerIds: ["p2"] },
			{ id: "ops", accountId: account.id, name: "ops", issued: "api", peerIds: ["p3", "p4"] },
		];
		const ops = policy("ops", [rule(["ops"], ["ops"], { bidirectional: true })]);
		const before = policy("web-db", [rule(["web"], ["db"], { protocol: "tcp", ports: [5432] })]);
		const after = policy("web-db", [rule(["web"], ["db"], { protocol: "tcp", ports: [5433] })]);
		const base = AccessIndex.build(account, peers, { groups, policies: [ops, before] });
		const next = AccessIndex.build(account, peers, { groups, policies: [ops, after] });
		expect(affectedViewers(base, next)).toEqual(new Set(["p0", "p1", "p2"]));
		const t = new MapTransition(base, next, new Map());
		const at = (n: number) => makePeer(n).wgPublicKey;
		// db's rules change; web's maps do not (the rule does not admit anything into web).
		expect(deltaForViewer(at(2), t, undefined, 1, 2)?.firewallRules?.rules).toEqual([
			{
				source: "100.64.0.1/32",
				protocol: "tcp",
				ports: [{ start: 5433, end: 5433 }],
				policyId: "web-db",
			},
			{
				source: "100.64.0.2/32",
				protocol: "tcp",
				ports: [{ start: 5433, end: 5433 }],
				policyId: "web-db",
			},
		]);
		expect(deltaForViewer(at(0), t, undefined, 1, 2)).toBeUndefined();
		for (const n of [3, 4, 5, 29])
			expect(deltaForViewer(at(n), t, undefined, 1, 2)).toBeUndefined();
	});

	it("a port change reaches an agent that folds firewall changes as the changed rules only", () => {
		const peers = Array.from({ length: 10 }, (_, i) => makePeer(i));
		const groups: Group[] = [
			{ id: "all", accountId: account.id, name: "All", issued: "all", peerIds: [] },
			{ id: "web", accountId: account.id, name: "web", issued: "api", peerIds: ["p0", "p1"] },
			{ id: "db", accountId: account.id, name: "db", issued: "api", peerIds: ["p2"] },
			{ id: "ops", accountId: account.id, name: "ops", issued: "api", peerIds: ["p3", "p4", "p5"] },
		];
		const admin = policy("admin", [rule(["ops"], ["db"])]);
		const before = policy("web-db", [rule(["web"], ["db"], { protocol: "tcp", ports: [5432] })]);
		const after = policy("web-db", [rule(["web"], ["db"], { protocol: "tcp", ports: [5433] })]);
		const base = AccessIndex.build(account, peers, { groups, policies: [admin, before] });
		const next = AccessIndex.build(account, peers, { groups, policies: [admin, after] });
		const t = new MapTransition(base, next, new Map());
		const db = makePeer(2).wgPublicKey;
		const delta = deltaForViewer(db, t, undefined, 1, 2, true);
		expect(delta?.firewallRules).toBeUndefined();
		expect(delta?.firewallChanges).toEqual({
			removedGrants: [{ protocol: "tcp", ports: [{ start: 5432, end: 5432 }], policyId: "web-db" }],
			removed: [],
			added: [
				{
					grant: { protocol: "tcp", ports: [{ start: 5433, end: 5433 }], policyId: "web-db" },
					sources: ["100.64.0.1/32", "100.64.0.2/32"],
				},
			],
		});
		// An agent that did not say it folds changes gets the whole list.
		const old = deltaForViewer(db, t, undefined, 1, 2, false);
		expect(old?.firewallChanges).toBeUndefined();
		expect(old?.firewallRules?.rules).toHaveLength(5);
	});

	it("a peer joining a group reaches the peers on the other side of the group's rules", () => {
		const peers = Array.from({ length: 6 }, (_, i) => makePeer(i));
		const groups = (dbMembers: string[]): Group[] => [
			{ id: "all", accountId: account.id, name: "All", issued: "all", peerIds: [] },
			{ id: "web", accountId: account.id, name: "web", issued: "api", peerIds: ["p0"] },
			{ id: "db", accountId: account.id, name: "db", issued: "api", peerIds: dbMembers },
		];
		const policies = [
			policy("web-db", [rule(["web"], ["db"], { protocol: "tcp", ports: [5432] })]),
		];
		const base = AccessIndex.build(account, peers, { groups: groups(["p1"]), policies });
		const next = AccessIndex.build(account, peers, { groups: groups(["p1", "p2"]), policies });
		expect(affectedViewers(base, next)).toEqual(new Set(["p2", "p0"]));
		const t = new MapTransition(base, next, new Map());
		const web = deltaForViewer(makePeer(0).wgPublicKey, t, undefined, 1, 2);
		expect(web?.upsertedPeers.map((p) => p.peerId)).toEqual(["p2"]);
		const db2 = deltaForViewer(makePeer(2).wgPublicKey, t, undefined, 1, 2);
		expect(db2?.upsertedPeers.map((p) => p.peerId)).toEqual(["p0"]);
		expect(db2?.firewallRules?.rules.map((r) => r.source)).toEqual(["100.64.0.1/32"]);
		for (const n of [1, 3, 4, 5]) {
			expect(deltaForViewer(makePeer(n).wgPublicKey, t, undefined, 1, 2)).toBeUndefined();
		}
	});

	it("a change to the viewer itself updates its self config only when it differs", () => {
		const viewer = makePeer(1);
		const cfg: AccessConfig = { groups: [], policies: [] };
		const index = AccessIndex.build(account, [viewer], cfg);
		const full = computeNetworkMap(index, 0, endpoints, 1);
		const same = new MapTransition(index, index, new Map([[viewer.wgPublicKey, viewer]]));
		expect(deltaForViewer(viewer.wgPublicKey, same, full.self, 1, 2)).toBeUndefined();
		const renamed = { ...viewer, name: "db", dnsLabel: "db" };
		const next = AccessIndex.build(account, [renamed], cfg);
		const t = new MapTransition(index, next, new Map([[viewer.wgPublicKey, renamed]]));
		expect(deltaForViewer(viewer.wgPublicKey, t, full.self, 1, 2)?.self?.fqdn).toBe(
			"db.starling.internal",
		);
	});

	describe("route changes reach only the agents whose routes change", () => {
		const peers = Array.from({ length: 8 }, (_, i) => makePeer(i));
		const key = (n: number) => makePeer(n).wgPublicKey;
		const groups: Group[] = [
			{ id: "all", accountId: account.id, name: "All", issued: "all", peerIds: [] },
			{ id: "clients", accountId: account.id, name: "c", issued: "api", peerIds: ["p0", "p1"] },
			{ id: "lan", accountId: account.id, name: "lan", issued: "api", peerIds: [] },
		];
		const route = (over: Partial<Route> = {}): Route => ({
			id: "rt",
			accountId: account.id,
			description: "office",
			networkId: "office",
			enabled: true,
			peerId: "p2",
			peerGroups: [],
			network: "198.18.10.0/24",
			metric: 10,
			masquerade: true,
			groups: ["clients"],
			keepRoute: false,
			accessControlGroups: [],
			skipAutoApply: false,
			...over,
		});
		const web = (port: number) =>
			policy("web", [rule(["clients"], ["lan"], { protocol: "tcp", ports: [port] })]);
		const index = (routes: Route[], policies: Policy[] = []) =>
			AccessIndex.build(account, peers, {
				groups,
				policies,
				routing: { routes, networks: [], networkResources: [], networkRouters: [] },
			});
		const deltas = (base: AccessIndex, next: AccessIndex) => {
			const t = new MapTransition(base, next, new Map());
			return peers.map((_, n) => deltaForViewer(key(n), t, undefined, 1, 2));
		};

		it("a new route: its receivers get the route and the router, the router its served route and the receivers", () => {
			const out = deltas(index([]), index([route()]));
			for (const n of [0, 1]) {
				expect(out[n]?.routes?.routes.map((r) => r.id)).toEqual(["rt:p2"]);
				expect(out[n]?.upsertedPeers.map((p) => p.peerId)).toEqual(["p2"]);
				expect(out[n]?.servedRoutes).toBeUndefined();
			}
			expect(out[2]?.servedRoutes?.routes.map((r) => r.routeId)).toEqual(["rt"]);
			expect(out[2]?.routes).toBeUndefined();
			expect(out[2]?.upsertedPeers.map((p) => p.peerId).sort()).toEqual(["p0", "p1"]);
			for (const n of [3, 4, 5, 6, 7]) expect(out[n]).toBeUndefined();
		});

		it("a masquerade change reaches the router only; a metric change its receivers (and the router, with nothing to send)", () => {
			const masq = deltas(index([route()]), index([route({ masquerade: false })]));
			expect(masq[2]?.servedRoutes?.routes[0]?.masquerade).toBe(false);
			expect(masq.filter((d) => d !== undefined)).toHaveLength(1);
			const metric = deltas(index([route()]), index([route({ metric: 20 })]));
			expect(metric[0]?.routes?.routes[0]?.metric).toBe(20);
			expect(metric[1]?.routes?.routes[0]?.metric).toBe(20);
			expect(metric.filter((d) => d !== undefined)).toHaveLength(2);
		});

		it("a policy change behind access control groups reaches the router as new forward rules, nobody else", () => {
			const acl = route({ accessControlGroups: ["lan"] });
			const out = deltas(index([acl], [web(80)]), index([acl], [web(443)]));
			expect(out[2]?.servedRoutes?.routes[0]?.rules.map((r) => r.ports)).toEqual([
				[{ start: 443, end: 443 }],
				[{ start: 443, end: 443 }],
			]);
			expect(out.filter((d) => d !== undefined)).toHaveLength(1);
		});

		it("deleting the route withdraws it and the route-only peers, from its receivers and router", () => {
			const out = deltas(index([route()]), index([]));
			expect(out[0]?.routes).toEqual({ routes: [] });
			expect(out[0]?.removedPeerKeys).toEqual([key(2)]);
			expect(out[2]?.servedRoutes).toEqual({ routes: [] });
			expect(out[2]?.removedPeerKeys.sort()).toEqual([key(0), key(1)].sort());
			for (const n of [3, 4, 5, 6, 7]) expect(out[n]).toBeUndefined();
		});
	});
});
