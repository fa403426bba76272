import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
	accountFixture,
	peerFixture,
	policyFixture,
	routeFixture,
	ruleFixture,
} from "../domain/fixtures.js";
import type { Group, Peer, Route } from "../domain/types.js";
import { cidrContainsIp, ipToInt, parseCidr } from "./ipam.js";
import { AccessIndex } from "./policy.js";
import { checkRoute } from "./route-check.js";

const account = accountFixture();

function peer(n: number, connected = true): Peer {
	return peerFixture({
		id: `p${n}`,
		accountId: account.id,
		wgPublicKey: `key-${n}`,
		name: `peer${n}`,
		ip: `100.64.0.${n + 1}`,
		connected,
	});
}

function route(over: Partial<Route> & Pick<Route, "id">): Route {
	return routeFixture({ accountId: account.id, groups: ["all"], ...over });
}

function index(
	peers: Peer[],
	routes: Route[],
	extraGroups: Group[] = [],
	policies = [] as ReturnType<typeof policyFixture>[],
) {
	const groups: Group[] = [
		{ id: "all", accountId: account.id, name: "All", issued: "all", peerIds: [] },
		...extraGroups,
	];
	return AccessIndex.build(account, peers, {
		groups,
		policies,
		routing: { routes, networks: [], networkResources: [], networkRouters: [] },
	});
}

describe("route check: examples", () => {
	const client = peer(0);
	const r1 = peer(1);
	const r2 = peer(2);
	const down = peer(3, false);

	it("HA: the lowest metric among the connected routers; a disconnected better one is passed over", () => {
		const idx = index(
			[client, r1, r2, down],
			[
				route({ id: "a", peerId: r1.id, metric: 20 }),
				route({ id: "b", peerId: r2.id, metric: 10 }),
				route({ id: "c", peerId: down.id, metric: 1 }),
			],
		);
		const answer = checkRoute(idx, idx.indexOfId(client.id)!, "198.18.10.7");
		expect(answer.route).toMatchObject({ id: "b", networkId: "lan", network: "198.18.10.0/24" });
		expect(answer.router).toMatchObject({ peerId: r2.id, metric: 10 });
		expect(answer.router!.reason).toContain("lowest metric (10)");
		expect(answer.candidates.map((c) => c.peerId)).toEqual([down.id, r2.id, r1.id]);
		expect(answer.access).toMatchObject({ allowed: true, rule: null });
		expect(answer.access!.reason).toContain("open to the route's groups");
	});

	it("longest prefix wins over a shorter route and over the exit node", () => {
		const idx = index(
			[client, r1, r2],
			[
				route({ id: "wide", peerId: r1.id, network: "198.18.0.0/16", metric: 1 }),
				route({
					id: "narrow",
					networkId: "n",
					peerId: r2.id,
					network: "198.18.10.0/24",
					metric: 50,
				}),
				route({
					id: "exit",
					networkId: "exit",
					peerId: r1.id,
					network: "0.0.0.0/0",
					skipAutoApply: true,
				}),
			],
		);
		const v = idx.indexOfId(client.id)!;
		expect(checkRoute(idx, v, "198.18.10.9").route?.id).toBe("narrow");
		expect(checkRoute(idx, v, "198.18.99.9").route?.id).toBe("wide");
		const exit = checkRoute(idx, v, "203.0.113.1");
		expect(exit.route?.id).toBe("exit");
		expect(exit.reason).toContain("exit-node use");
	});

	it("no route covers the address; no router connected", () => {
		const idx = index([client, down], [route({ id: "a", peerId: down.id, keepRoute: true })]);
		const v = idx.indexOfId(client.id)!;
		expect(checkRoute(idx, v, "192.0.2.1")).toMatchObject({
			route: null,
			router: null,
			access: null,
		});
		const none = checkRoute(idx, v, "198.18.10.1");
		expect(none.route?.id).toBe("a");
		expect(none.router).toBeNull();
		expect(none.reason).toContain("keep_route");
		expect(() => checkRoute(idx, v, "198.18.10")).toThrow();
	});

	it("access control groups: the first rule admitting the peer, or a refusal", () => {
		const groups: Group[] = [
			{ id: "lan", accountId: account.id, name: "lan", issued: "api", peerIds: [] },
			{ id: "ops", accountId: account.id, name: "ops", issued: "api", peerIds: [r2.id] },
		];
		const web = policyFixture({
			id: "web",
			accountId: account.id,
			rules: [
				ruleFixture({
					id: "r80",
					name: "http",
					sources: ["ops"],
					destinations: ["lan"],
					protocol: "tcp",
					ports: [80],
				}),
			],
		});
		const idx = index(
			[client, r1, r2],
			[route({ id: "a", peerId: r1.id, accessControlGroups: ["lan"] })],
			groups,
			[web],
		);
		const ops = checkRoute(idx, idx.indexOfId(r2.id)!, "198.18.10.1");
		expect(ops.access).toMatchObject({
			allowed: true,
			rule: { policyId: "web", ruleId: "r80", protocol: "tcp", ports: [{ start: 80, end: 80 }] },
		});
		const other = checkRoute(idx, idx.indexOfId(client.id)!, "198.18.10.1");
		expect(other.route?.id).toBe("a");
		expect(other.access).toMatchObject({ allowed: false, rule: null });
	});
});

describe("route check: property", () => {
	it("the answer is the longest covering prefix and the lowest connected metric among its routers", () => {
		const NETS = ["198.18.0.0/15", "198.18.10.0/24", "198.18.10.0/25", "0.0.0.0/0"];
		fc.assert(
			fc.property(
				fc.array(fc.boolean(), { minLength: 2, maxLength: 6 }),
				fc.array(
					fc.record({
						network: fc.constantFrom(...NETS),
						router: fc.nat(),
						metric: fc.integer({ min: 1, max: 5 }),
						networkId: fc.constantFrom("x", "y"),
					}),
					{ maxLength: 6 },
				),
				fc.constantFrom("198.18.10.3", "198.18.10.200", "198.19.0.1", "8.8.8.8"),
				(connected, specs, address) => {
					const peers = connected.map((c, n) => peer(n, c));
					const routes = specs.map((s, k) =>
						route({ id: `r${k}`, ...s, peerId: peers[s.router % peers.length]!.id }),
					);
					const idx = index(peers, routes);
					const v = idx.indexOfId("p0")!;
					const answer = checkRoute(idx, v, address);
					const ip = ipToInt(address);
					// Literally: routes p0 receives (not routed by itself in the same HA group) covering the address.
					const servedByP0 = new Set(
						routes.filter((r) => r.peerId === "p0").map((r) => `${r.networkId}|${r.network}`),
					);
					const received = routes.filter(
						(r) =>
							r.peerId !== "p0" &&
							!servedByP0.has(`${r.networkId}|${r.network}`) &&
							cidrContainsIp(parseCidr(r.network), ip),
					);
					if (received.length === 0) {
						expect(answer.route).toBeNull();
						return;
					}
					const longest = Math.max(...received.map((r) => parseCidr(r.network).prefix));
					const best = received.filter((r) => parseCidr(r.network).prefix === longest);
					expect(parseCidr(answer.route!.network).prefix).toBe(longest);
					const up = best.filter((r) => peers.find((p) => p.id === r.peerId)!.connected);
					if (up.length === 0) {
						expect(answer.router).toBeNull();
					} else {
						expect(answer.router!.metric).toBe(Math.min(...up.map((r) => r.metric)));
						expect(answer.router!.connected).toBe(true);
						expect(best.map((r) => r.id)).toContain(answer.route!.id);
					}
				},
			),
			{ numRuns: 300 },
		);
	});
});
