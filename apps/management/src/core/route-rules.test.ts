import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { NetworkRouter, Route } from "../domain/types.js";
import { groupUsers } from "./group-rules.js";
import { intToIp } from "./ipam.js";
import {
	canonicalIpv4Cidr,
	checkMetric,
	checkNetworkId,
	checkOutsideOverlay,
	checkRouteAgainstOthers,
	checkRoutingPeers,
	checkSkipAutoApply,
	cidrsOverlap,
	RouteRuleError,
	resourceAddress,
	routingAfterPeerDeleted,
} from "./route-rules.js";

const route = (over: Partial<Route>): Route => ({
	id: "r",
	accountId: "a",
	description: "",
	networkId: "net",
	enabled: true,
	peerId: "p1",
	peerGroups: [],
	network: "10.0.0.0/24",
	metric: 9999,
	masquerade: true,
	groups: ["g"],
	keepRoute: false,
	accessControlGroups: [],
	skipAutoApply: false,
	...over,
});

const refused = (f: () => unknown, message: RegExp) =>
	expect(f).toThrowError(
		expect.objectContaining({ name: "RouteRuleError", message: expect.stringMatching(message) }),
	);

const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const prefixLen = fc.integer({ min: 0, max: 32 });

describe("canonicalIpv4Cidr", () => {
	it("clears host bits and is idempotent, the result contains the given address (property)", () => {
		fc.assert(
			fc.property(u32, prefixLen, (addr, prefix) => {
				const text = `${intToIp(addr)}/${prefix}`;
				const canonical = canonicalIpv4Cidr(text);
				expect(canonicalIpv4Cidr(canonical)).toBe(canonical);
				expect(cidrsOverlap(canonical, `${intToIp(addr)}/32`)).toBe(true);
				const [base, p] = canonical.split("/");
				expect(Number(p)).toBe(prefix);
				if (prefix === 32) expect(base).toBe(intToIp(addr));
			}),
		);
	});

	it("examples: host bits, exit, malformed, IPv6", () => {
		expect(canonicalIpv4Cidr("192.168.1.7/24")).toBe("192.168.1.0/24");
		expect(canonicalIpv4Cidr("1.2.3.4/0")).toBe("0.0.0.0/0");
		refused(() => canonicalIpv4Cidr("2001:db8::/32"), /IPv6/);
		refused(() => canonicalIpv4Cidr("10.0.0.0"), /not an IPv4 CIDR/);
		refused(() => canonicalIpv4Cidr("10.0.0.0/33"), /prefix length/);
		refused(() => canonicalIpv4Cidr("10.0.0.256/24"), /not an IPv4/);
		refused(() => canonicalIpv4Cidr("10.0.0/24"), /not an IPv4/);
		refused(() => canonicalIpv4Cidr("a/b/c"), /not an IPv4 CIDR/);
	});

	it("never throws anything but a RouteRuleError on arbitrary text (property)", () => {
		fc.assert(
			fc.property(fc.string(), (text) => {
				try {
					canonicalIpv4Cidr(text);
				} catch (err) {
					expect(err).toBeInstanceOf(RouteRuleError);
				}
			}),
		);
	});
});

describe("cidrsOverlap", () => {
	it("matches a model over address sets (property)", () => {
		fc.assert(
			fc.property(u32, prefixLen, u32, prefixLen, (a, pa, b, pb) => {
				const x = canonicalIpv4Cidr(`${intToIp(a)}/${pa}`);
				const y = canonicalIpv4Cidr(`${intToIp(b)}/${pb}`);
				const shorter = Math.min(pa, pb);
				const mask = shorter === 0 ? 0 : (0xffffffff << (32 - shorter)) >>> 0;
				expect(cidrsOverlap(x, y)).toBe((a & mask) >>> 0 === (b & mask) >>> 0);
				expect(cidrsOverlap(y, x)).toBe(cidrsOverlap(x, y));
			}),
		);
	});
});

describe("resourceAddress", () => {
	it("a host is /32 of type host, a subnet is canonical of type subnet", () => {
		expect(resourceAddress("10.1.2.3")).toEqual({ type: "host", prefix: "10.1.2.3/32" });
		expect(resourceAddress("10.1.2.3/32")).toEqual({ type: "host", prefix: "10.1.2.3/32" });
		expect(resourceAddress("10.1.2.3/16")).toEqual({ type: "subnet", prefix: "10.1.0.0/16" });
		refused(() => resourceAddress("db.example.com"), /domain resources are not supported/);
		refused(() => resourceAddress("*.example.com"), /domain resources/);
		refused(() => resourceAddress("fd00::1"), /IPv6/);
		refused(() => resourceAddress("10.1.2"), /not an IPv4/);
	});
});

describe("field checks", () => {
	it("metric is an integer 1-9999 (property)", () => {
		fc.assert(
			fc.property(fc.integer({ min: -20000, max: 20000 }), (m) => {
				if (m >= 1 && m <= 9999) checkMetric(m);
				else refused(() => checkMetric(m), /metric/);
			}),
		);
		refused(() => checkMetric(1.5), /metric/);
	});

	it("network_id is 1-40 characters", () => {
		checkNetworkId("x".repeat(40));
		refused(() => checkNetworkId("x".repeat(41)), /network_id/);
		refused(() => checkNetworkId(""), /network_id/);
	});

	it("exactly one of peer and peer_groups", () => {
		checkRoutingPeers("p", []);
		checkRoutingPeers(null, ["g"]);
		refused(() => checkRoutingPeers("p", ["g"]), /not both/);
		refused(() => checkRoutingPeers(null, []), /peer or peer_groups/);
	});

	it("a routed network outside the overlay; exit allowed", () => {
		checkOutsideOverlay("10.0.0.0/8", "100.64.0.0/16");
		checkOutsideOverlay("0.0.0.0/0", "100.64.0.0/16");
		refused(() => checkOutsideOverlay("100.64.3.0/24", "100.64.0.0/16"), /overlay/);
		refused(() => checkOutsideOverlay("100.0.0.0/8", "100.64.0.0/16"), /overlay/);
	});

	it("skip_auto_apply only on exit nodes", () => {
		checkSkipAutoApply("0.0.0.0/0", true);
		checkSkipAutoApply("10.0.0.0/8", false);
		refused(() => checkSkipAutoApply("10.0.0.0/8", true), /exit nodes/);
	});
});

describe("checkRouteAgainstOthers", () => {
	it("same network_id: same network, one route per peer", () => {
		const a = route({ id: "a", peerId: "p1" });
		checkRouteAgainstOthers(route({ id: "b", peerId: "p2" }), [a]);
		refused(
			() => checkRouteAgainstOthers(route({ id: "b", peerId: "p1" }), [a]),
			/already routes network_id/,
		);
		refused(
			() => checkRouteAgainstOthers(route({ id: "b", peerId: "p2", network: "10.0.1.0/24" }), [a]),
			/must route the same network/,
		);
	});

	it("different network_ids must not overlap, except exit nodes (several allowed)", () => {
		const a = route({ id: "a", networkId: "lan" });
		refused(
			() =>
				checkRouteAgainstOthers(route({ id: "b", networkId: "other", network: "10.0.0.128/25" }), [
					a,
				]),
			/overlaps/,
		);
		checkRouteAgainstOthers(route({ id: "b", networkId: "other", network: "10.0.1.0/24" }), [a]);
		const exit1 = route({ id: "e1", networkId: "exit1", network: "0.0.0.0/0" });
		checkRouteAgainstOthers(route({ id: "e2", networkId: "exit2", network: "0.0.0.0/0" }), [
			a,
			exit1,
		]);
		checkRouteAgainstOthers(route({ id: "c", networkId: "x", network: "192.168.0.0/16" }), [exit1]);
	});

	it("accepts exactly when no pair breaks a rule (property)", () => {
		const arb = fc.record({
			id: fc.uuid(),
			networkId: fc.constantFrom("n1", "n2", "n3"),
			peerId: fc.constantFrom("p1", "p2", "p3"),
			network: fc.constantFrom("10.0.0.0/24", "10.0.0.0/16", "10.1.0.0/16", "0.0.0.0/0"),
		});
		fc.assert(
			fc.property(arb, fc.array(arb, { maxLength: 5 }), (r, os) => {
				const mine = route(r);
				const others = os.map((o) => route(o));
				const bad = others.some((o) =>
					o.networkId === mine.networkId
						? o.network !== mine.network || o.peerId === mine.peerId
						: mine.network !== "0.0.0.0/0" &&
							o.network !== "0.0.0.0/0" &&
							cidrsOverlap(mine.network, o.network),
				);
				if (bad) expect(() => checkRouteAgainstOthers(mine, others)).toThrow(RouteRuleError);
				else checkRouteAgainstOthers(mine, others);
			}),
		);
	});
});

describe("routingAfterPeerDeleted", () => {
	it("disables the routes the peer served alone and removes its routers", () => {
		const own = route({ id: "own", peerId: "p1" });
		const byGroup = route({ id: "grp", peerId: null, peerGroups: ["g"] });
		const router = (id: string, peerId: string | null): NetworkRouter => ({
			id,
			accountId: "a",
			networkId: "n",
			peerId,
			peerGroups: peerId ? [] : ["g"],
			metric: 1,
			masquerade: true,
			enabled: true,
		});
		const out = routingAfterPeerDeleted(
			"p1",
			[own, byGroup],
			[router("x", "p1"), router("y", null)],
		);
		expect(out.disabledRoutes).toEqual([{ ...own, peerId: null, enabled: false }]);
		expect(out.removedRouters.map((r) => r.id)).toEqual(["x"]);
	});
});

describe("groupUsers with routing", () => {
	it("names routes, resources and routers that use the group", () => {
		const users = groupUsers("g", {
			policies: [],
			setupKeys: [],
			users: [],
			routing: {
				routes: [route({ id: "r1", groups: ["g"] }), route({ id: "r2", groups: ["h"] })],
				networks: [{ id: "n", accountId: "a", name: "office", description: "" }],
				networkResources: [
					{
						id: "s",
						accountId: "a",
						networkId: "n",
						name: "db",
						description: "",
						address: "10.0.0.1",
						type: "host",
						prefix: "10.0.0.1/32",
						enabled: true,
						groups: ["g"],
					},
				],
				networkRouters: [
					{
						id: "t",
						accountId: "a",
						networkId: "n",
						peerId: null,
						peerGroups: ["g"],
						metric: 1,
						masquerade: true,
						enabled: true,
					},
				],
			},
		});
		expect(users).toEqual([
			'route "net" (r1)',
			'network resource "db"',
			'router of network "office"',
		]);
	});
});
