import type { ClientRoute, FirewallRule, ServedRoute } from "@starling/proto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
	accountFixture,
	routeFixture as baseRoute,
	peerFixture,
	policyFixture,
	ruleFixture,
} from "../domain/fixtures.js";
import type {
	Group,
	Network,
	NetworkResource,
	NetworkRouter,
	Peer,
	Policy,
	PolicyRule,
	Protocol,
	Route,
	RoutingConfig,
} from "../domain/types.js";
import { computeNetworkMap } from "./network-map.js";
import { type AccessConfig, AccessIndex } from "./policy.js";
import { canonicalPorts } from "./ports.js";

const account = accountFixture();
const endpoints = { signal: { url: "http://127.0.0.1:10000" }, stunServers: [] };

function peer(n: number): Peer {
	return peerFixture({
		id: `p${n}`,
		accountId: account.id,
		// Keys in another order than ids, so index order is not id order.
		wgPublicKey: `key-${String((n * 7) % 11).padStart(2, "0")}-${n}`,
		name: `peer${n}`,
		ip: `100.64.0.${n + 1}`,
	});
}

function group(id: string, peerIds: string[], issued: Group["issued"] = "api"): Group {
	return { id, accountId: account.id, name: id, issued, peerIds };
}

export function routeFixture(over: Partial<Route> & Pick<Route, "id">): Route {
	return baseRoute({
		accountId: account.id,
		description: `route ${over.id}`,
		networkId: "net",
		...over,
	});
}

function routing(over: Partial<RoutingConfig>): RoutingConfig {
	return { routes: [], networks: [], networkResources: [], networkRouters: [], ...over };
}

function build(peers: Peer[], config: AccessConfig): AccessIndex {
	return AccessIndex.build(account, peers, config);
}

// ---------------------------------------------------------------- examples

describe("routes: examples", () => {
	const peers = [0, 1, 2, 3, 4].map(peer);
	const [client, r1, r2, outsider, other] = peers as [Peer, Peer, Peer, Peer, Peer];
	const groups = [
		group(
			"all",
			peers.map((p) => p.id),
			"all",
		),
		group("clients", [client.id, other.id]),
		group("routers", [r1.id, r2.id]),
		group("lan", []),
	];
	const map = (index: AccessIndex, p: Peer) =>
		computeNetworkMap(index, index.indexOfId(p.id)!, endpoints, 1);

	it("an open route: one entry per router, routers see their receivers, firewalls stay closed", () => {
		const index = build(peers, {
			groups,
			policies: [],
			routing: routing({
				routes: [
					routeFixture({ id: "rt", peerGroups: ["routers"], groups: ["clients"], metric: 10 }),
				],
			}),
		});
		const c = map(index, client);
		expect(c.routes.map((r) => [r.id, r.routerKey, r.networkId, r.metric])).toEqual(
			[
				[`rt:${r1.id}`, r1.wgPublicKey, "net", 10],
				[`rt:${r2.id}`, r2.wgPublicKey, "net", 10],
			].sort(),
		);
		expect(c.peers.map((p) => p.peerId).sort()).toEqual([r1.id, r2.id]);
		expect(c.servedRoutes).toEqual([]);
		expect(c.firewallRules).toEqual([]);
		const s = map(index, r1);
		expect(s.servedRoutes).toEqual([
			{
				routeId: "rt",
				network: "198.18.10.0/24",
				masquerade: true,
				filtered: false,
				rules: [],
				sources: [`${client.ip}/32`, `${other.ip}/32`].sort(),
			},
		]);
		// The router sees its receivers but not the other router: no route links them.
		expect(s.peers.map((p) => p.peerId).sort()).toEqual([client.id, other.id]);
		// Routes open the forward path only; traffic TO the router is the policies' business.
		expect(s.firewallRules).toEqual([]);
		expect(map(index, outsider).routes).toEqual([]);
		expect(map(index, outsider).peers).toEqual([]);
	});

	it("a router never receives a route of a network it routes itself (exit nodes too)", () => {
		const index = build(peers, {
			groups,
			policies: [],
			routing: routing({
				routes: [
					routeFixture({
						id: "e1",
						network: "0.0.0.0/0",
						networkId: "exit",
						peerId: r1.id,
						groups: ["all"],
					}),
					routeFixture({
						id: "e2",
						network: "0.0.0.0/0",
						networkId: "exit",
						peerId: r2.id,
						groups: ["all"],
					}),
				],
			}),
		});
		expect(map(index, r1).routes).toEqual([]);
		expect(map(index, r2).routes).toEqual([]);
		expect(map(index, client).routes.map((r) => r.id)).toEqual([`e1:${r1.id}`, `e2:${r2.id}`]);
		expect(map(index, r1).servedRoutes[0]!.sources).not.toContain(`${r2.ip}/32`);
	});

	it("access control groups: the router forwards what the policies to those groups allow, from receivers only", () => {
		const web = policyFixture({
			id: "web",
			accountId: account.id,
			rules: [
				ruleFixture({ sources: ["all"], destinations: ["lan"], protocol: "tcp", ports: [80] }),
			],
		});
		const index = build(peers, {
			groups,
			policies: [web],
			routing: routing({
				routes: [
					routeFixture({
						id: "rt",
						peerId: r1.id,
						groups: ["clients"],
						accessControlGroups: ["lan"],
					}),
				],
			}),
		});
		const served = map(index, r1).servedRoutes;
		expect(served).toHaveLength(1);
		expect(served[0]!.filtered).toBe(true);
		expect(served[0]!.sources).toEqual([]);
		expect(served[0]!.rules.map((r) => r.source).sort()).toEqual(
			[`${client.ip}/32`, `${other.ip}/32`].sort(),
		);
		expect(served[0]!.rules[0]).toMatchObject({
			protocol: "tcp",
			ports: [{ start: 80, end: 80 }],
			policyId: "web",
		});
		// The policy's destination group (lan) is empty: no peer-to-peer firewall rule appears.
		expect(map(index, r1).firewallRules).toEqual([]);
	});

	it("a network resource reaches only the sources of a policy naming its groups", () => {
		const network: Network = {
			id: "office",
			accountId: account.id,
			name: "office",
			description: "",
		};
		const resource: NetworkResource = {
			id: "res",
			accountId: account.id,
			networkId: "office",
			name: "printer",
			description: "",
			address: "198.18.20.5",
			type: "host",
			prefix: "198.18.20.5/32",
			enabled: true,
			groups: ["lan"],
		};
		const router: NetworkRouter = {
			id: "rtr",
			accountId: account.id,
			networkId: "office",
			peerId: r1.id,
			peerGroups: [],
			metric: 5,
			masquerade: false,
			enabled: true,
		};
		const config = routing({
			networks: [network],
			networkResources: [resource],
			networkRouters: [router],
		});
		const none = build(peers, { groups, policies: [], routing: config });
		expect(map(none, client).routes).toEqual([]);
		expect(map(none, r1).servedRoutes).toEqual([]);
		const allowed = policyFixture({
			id: "print",
			accountId: account.id,
			rules: [
				ruleFixture({ sources: ["clients"], destinations: ["lan"], protocol: "tcp", ports: [631] }),
			],
		});
		const index = build(peers, { groups, policies: [allowed], routing: config });
		expect(map(index, client).routes).toEqual([
			{
				id: `res:${r1.id}`,
				networkId: "office",
				network: "198.18.20.5/32",
				routerKey: r1.wgPublicKey,
				metric: 5,
				keepRoute: false,
				skipAutoApply: false,
				description: "printer",
				routeId: "res",
			},
		]);
		expect(map(index, outsider).routes).toEqual([]);
		const served = map(index, r1).servedRoutes;
		expect(served[0]).toMatchObject({ routeId: "res", masquerade: false, filtered: true });
		expect(served[0]!.rules.map((r) => r.source).sort()).toEqual(
			[`${client.ip}/32`, `${other.ip}/32`].sort(),
		);
	});

	it("disabled routes, routers and policies carry nothing", () => {
		const index = build(peers, {
			groups,
			policies: [],
			routing: routing({
				routes: [routeFixture({ id: "off", peerId: r1.id, groups: ["all"], enabled: false })],
			}),
		});
		for (const p of peers) {
			expect(map(index, p).routes).toEqual([]);
			expect(map(index, p).servedRoutes).toEqual([]);
			expect(map(index, p).peers).toEqual([]);
		}
	});
});

// ---------------------------------------------------------------- property: against a literal reading

interface Model {
	peers: Peer[];
	groups: Group[];
	policies: Policy[];
	routing: RoutingConfig;
}

const GROUPS = ["g0", "g1", "g2", "g3"];
const NETWORKS = ["198.18.10.0/24", "198.18.20.0/24", "0.0.0.0/0"];

const groupIdsArb = fc.subarray([...GROUPS, "all", "ghost"], { maxLength: 3 });

const ruleArb: fc.Arbitrary<PolicyRule> = fc
	.record({
		enabled: fc.boolean(),
		protocol: fc.constantFrom<Protocol>("all", "tcp", "udp", "icmp"),
		ports: fc.subarray([22, 80, 443]),
		sources: groupIdsArb,
		destinations: groupIdsArb,
		bidirectional: fc.boolean(),
	})
	.map((r) =>
		ruleFixture({
			...r,
			ports: r.protocol === "tcp" || r.protocol === "udp" ? r.ports : [],
			enabled: r.enabled || r.sources.length > 0,
		}),
	);

const modelArb: fc.Arbitrary<Model> = fc
	.record({
		n: fc.integer({ min: 1, max: 7 }),
		memberships: fc.array(fc.subarray([0, 1, 2, 3, 4, 5, 6]), { minLength: 4, maxLength: 4 }),
		policies: fc.array(
			fc.record({ enabled: fc.boolean(), rules: fc.array(ruleArb, { maxLength: 3 }) }),
			{
				maxLength: 3,
			},
		),
		routes: fc.array(
			fc.record({
				networkId: fc.constantFrom("a", "b"),
				network: fc.constantFrom(...NETWORKS),
				enabled: fc.boolean(),
				router: fc.oneof(fc.integer({ min: 0, max: 7 }), groupIdsArb),
				metric: fc.integer({ min: 1, max: 30 }),
				masquerade: fc.boolean(),
				groups: groupIdsArb,
				accessControlGroups: fc.oneof(fc.constant([]), groupIdsArb),
				keepRoute: fc.boolean(),
				skipAutoApply: fc.boolean(),
			}),
			{ maxLength: 4 },
		),
		resources: fc.array(
			fc.record({
				network: fc.constantFrom("n1", "n2", "gone"),
				prefix: fc.constantFrom(...NETWORKS, "198.18.20.7/32"),
				enabled: fc.boolean(),
				groups: groupIdsArb,
			}),
			{ maxLength: 3 },
		),
		routers: fc.array(
			fc.record({
				network: fc.constantFrom("n1", "n2"),
				router: fc.oneof(fc.integer({ min: 0, max: 7 }), groupIdsArb),
				metric: fc.integer({ min: 1, max: 30 }),
				masquerade: fc.boolean(),
				enabled: fc.boolean(),
			}),
			{ maxLength: 3 },
		),
	})
	.map((m) => {
		const peers = Array.from({ length: m.n }, (_, i) => peer(i));
		const groups = [
			group(
				"all",
				peers.map((p) => p.id),
				"all",
			),
			...GROUPS.map((g, k) =>
				group(
					g,
					m.memberships[k]!.map((i) => `p${i}`),
				),
			),
		];
		const policies = m.policies.map((p, k) =>
			policyFixture({
				id: `pol${k}`,
				accountId: account.id,
				enabled: p.enabled,
				rules: p.rules.map((r, j) => ({ ...r, id: `r${j}` })),
			}),
		);
		const routerOf = (r: number | string[]) =>
			typeof r === "number" ? { peerId: `p${r}`, peerGroups: [] } : { peerId: null, peerGroups: r };
		const routes = m.routes.map((r, k) =>
			routeFixture({ id: `rt${k}`, ...r, ...routerOf(r.router) }),
		);
		const networks: Network[] = ["n1", "n2"].map((id) => ({
			id,
			accountId: account.id,
			name: id,
			description: "",
		}));
		const networkResources: NetworkResource[] = m.resources.map((r, k) => ({
			id: `res${k}`,
			accountId: account.id,
			networkId: r.network,
			name: `res${k}`,
			description: "",
			address: r.prefix,
			type: r.prefix.endsWith("/32") ? "host" : "subnet",
			prefix: r.prefix,
			enabled: r.enabled,
			groups: r.groups,
		}));
		const networkRouters: NetworkRouter[] = m.routers.map((r, k) => ({
			id: `router${k}`,
			accountId: account.id,
			networkId: r.network,
			...routerOf(r.router),
			metric: r.metric,
			masquerade: r.masquerade,
			enabled: r.enabled,
		}));
		return {
			peers,
			groups,
			policies,
			routing: { routes, networks, networkResources, networkRouters },
		};
	});

/** The routes read literally: per route (or reached resource), its receivers, routers and filter. */
function literalEntries(model: Model) {
	const members = (ids: readonly string[]) =>
		new Set(
			model.peers
				.filter((p) =>
					ids.some((g) =>
						g === "all"
							? model.groups.some((x) => x.id === "all")
							: model.groups.find((x) => x.id === g)?.peerIds.includes(p.id),
					),
				)
				.map((p) => p.id),
		);
	const activeRules = model.policies
		.filter((p) => p.enabled)
		.flatMap((p) => p.rules.filter((r) => r.enabled).map((rule) => ({ policy: p, rule })));
	const reaching = (dest: readonly string[]) =>
		activeRules.filter(({ rule }) => rule.destinations.some((g) => dest.includes(g)));
	const known = new Set(model.peers.map((p) => p.id));
	const routersOf = (peerId: string | null, peerGroups: string[]) =>
		peerId !== null ? (known.has(peerId) ? [peerId] : []) : [...members(peerGroups)];
	const entries: {
		routeId: string;
		networkId: string;
		network: string;
		description: string;
		keepRoute: boolean;
		skipAutoApply: boolean;
		audience: Set<string>;
		routers: Map<string, { metric: number; masquerade: boolean }>;
		filter: ReturnType<typeof reaching> | null;
	}[] = [];
	for (const r of model.routing.routes.filter((r) => r.enabled)) {
		entries.push({
			...r,
			routeId: r.id,
			audience: members(r.groups),
			routers: new Map(
				routersOf(r.peerId, r.peerGroups).map((p) => [
					p,
					{ metric: r.metric, masquerade: r.masquerade },
				]),
			),
			filter: r.accessControlGroups.length > 0 ? reaching(r.accessControlGroups) : null,
		});
	}
	for (const res of model.routing.networkResources.filter((r) => r.enabled)) {
		if (!model.routing.networks.some((n) => n.id === res.networkId)) continue;
		const filter = reaching(res.groups);
		if (filter.length === 0) continue;
		const routers = new Map<string, { metric: number; masquerade: boolean }>();
		for (const router of model.routing.networkRouters) {
			if (!router.enabled || router.networkId !== res.networkId) continue;
			for (const p of routersOf(router.peerId, router.peerGroups)) {
				const held = routers.get(p);
				if (!held || router.metric < held.metric) routers.set(p, router);
			}
		}
		entries.push({
			routeId: res.id,
			networkId: res.networkId,
			network: res.prefix,
			description: res.description || res.name,
			keepRoute: false,
			skipAutoApply: false,
			audience: new Set(filter.flatMap(({ rule }) => [...members(rule.sources)])),
			routers,
			filter,
		});
	}
	const serving = (e: (typeof entries)[number]) =>
		new Set(
			entries
				.filter((x) => x.networkId === e.networkId && x.network === e.network)
				.flatMap((x) => [...x.routers.keys()]),
		);
	return entries.map((e) => ({
		...e,
		receivers:
			e.routers.size === 0
				? new Set<string>()
				: new Set([...e.audience].filter((p) => !serving(e).has(p))),
		members,
	}));
}

function literalVisible(model: Model, a: Peer, b: Peer): boolean {
	if (a.id === b.id) return false;
	const inGroups = (p: Peer, ids: string[]) =>
		ids.some((g) =>
			g === "all" ? true : model.groups.find((x) => x.id === g)?.peerIds.includes(p.id),
		);
	return model.policies
		.filter((p) => p.enabled)
		.flatMap((p) => p.rules.filter((r) => r.enabled))
		.some(
			(r) =>
				(inGroups(a, r.sources) && inGroups(b, r.destinations)) ||
				(inGroups(a, r.destinations) && inGroups(b, r.sources)),
		);
}

const byJson = <T>(list: T[]) => list.map((x) => JSON.stringify(x)).sort();

function expectLiteralRoutes(model: Model): void {
	const index = build(model.peers, model);
	const withoutRoutes = build(model.peers, { groups: model.groups, policies: model.policies });
	const entries = literalEntries(model);
	const byId = new Map(model.peers.map((p) => [p.id, p]));
	for (const viewer of model.peers) {
		const v = index.indexOfId(viewer.id)!;
		const map = computeNetworkMap(index, v, endpoints, 1);

		const routes: ClientRoute[] = [];
		const served: ServedRoute[] = [];
		const linked = new Set<string>();
		for (const e of entries) {
			if (e.receivers.has(viewer.id)) {
				for (const [routerId, r] of e.routers) {
					routes.push({
						id: `${e.routeId}:${routerId}`,
						networkId: e.networkId,
						network: e.network,
						routerKey: byId.get(routerId)!.wgPublicKey,
						metric: r.metric,
						keepRoute: e.keepRoute,
						skipAutoApply: e.skipAutoApply,
						description: e.description,
						routeId: e.routeId,
					});
					linked.add(routerId);
				}
			}
			const mine = e.routers.get(viewer.id);
			if (!mine) continue;
			for (const p of e.receivers) linked.add(p);
			const rules: FirewallRule[] = [];
			for (const { policy, rule } of e.filter ?? []) {
				for (const p of e.members(rule.sources)) {
					if (!e.receivers.has(p)) continue;
					rules.push({
						source: `${byId.get(p)!.ip}/32`,
						protocol: rule.protocol,
						ports: canonicalPorts(rule.protocol, rule.ports, rule.portRanges),
						policyId: policy.id,
					});
				}
			}
			served.push({
				routeId: e.routeId,
				network: e.network,
				masquerade: mine.masquerade,
				filtered: e.filter !== null,
				rules: [...new Set(byJson(rules))].map((s) => JSON.parse(s)),
				sources: e.filter === null ? [...e.receivers].map((p) => `${byId.get(p)!.ip}/32`) : [],
			});
		}
		expect(byJson(map.routes)).toEqual(byJson(routes));
		expect(
			byJson(
				map.servedRoutes.map((s) => ({ ...s, rules: byJson(s.rules), sources: s.sources.sort() })),
			),
		).toEqual(
			byJson(served.map((s) => ({ ...s, rules: byJson(s.rules), sources: s.sources.sort() }))),
		);

		// Visible: what policies connect, plus what routes link, nothing else.
		const expected = model.peers
			.filter((p) => literalVisible(model, viewer, p) || linked.has(p.id))
			.map((p) => p.id)
			.sort();
		expect(map.peers.map((p) => p.peerId).sort()).toEqual(expected);
		expect(index.visibleCount(v)).toBe(expected.length);
		for (const p of model.peers) {
			expect(index.isVisible(v, index.indexOfId(p.id)!)).toBe(expected.includes(p.id));
		}
		// Routes never change what may connect TO a peer.
		expect(map.firewallRules).toEqual(withoutRoutes.firewallRules(v));
	}
}

describe("routes: properties", () => {
	it("every map's routes, served routes and peers match a literal reading of the config", () => {
		fc.assert(fc.property(modelArb, expectLiteralRoutes), { numRuns: 400 });
	});

	it("visibility by routes is symmetric and no peer receives an entry through itself", () => {
		fc.assert(
			fc.property(modelArb, (model) => {
				const index = build(model.peers, model);
				for (let a = 0; a < index.size; a++) {
					const self = index.peerAt(a).wgPublicKey;
					for (const r of index.routing.clientRoutes(a)) expect(r.routerKey).not.toBe(self);
					for (const b of index.routing.linked(a)) expect(index.routing.isLinked(b, a)).toBe(true);
				}
			}),
			{ numRuns: 200 },
		);
	});
});
