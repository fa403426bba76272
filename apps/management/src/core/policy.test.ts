import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { accountFixture, peerFixture, policyFixture, ruleFixture } from "../domain/fixtures.js";
import type { Group, Peer, Policy, PolicyRule, Protocol } from "../domain/types.js";
import { computeNetworkMap, type ServiceEndpoints } from "./network-map.js";
import {
	AccessIndex,
	type CheckProtocol,
	canonicalPorts,
	firewallAllows,
	grantAllows,
} from "./policy.js";

const account = accountFixture();
const endpoints: ServiceEndpoints = { signal: { url: "http://127.0.0.1:10000" }, stunServers: [] };

function peer(n: number, key = `key-${String(n).padStart(3, "0")}`): Peer {
	return peerFixture({
		id: `p${n}`,
		accountId: account.id,
		wgPublicKey: key,
		name: `peer${n}`,
		ip: `100.64.0.${n + 1}`,
	});
}

function group(id: string, peerIds: string[], issued: Group["issued"] = "api"): Group {
	return { id, accountId: account.id, name: id, issued, peerIds };
}

const rule = ruleFixture;

function policy(id: string, rules: PolicyRule[], enabled = true): Policy {
	return policyFixture({ id, accountId: account.id, rules, enabled });
}

// ---------------------------------------------------------------- examples

describe("access index: examples", () => {
	const peers = [0, 1, 2, 3].map((n) => peer(n));
	const [web, db, other, web2] = peers as [Peer, Peer, Peer, Peer];
	const groups = [
		group(
			"all",
			peers.map((p) => p.id),
			"all",
		),
		group("web", [web.id, web2.id]),
		group("db", [db.id]),
	];
	const webToDb = policy("web-db", [
		rule({ sources: ["web"], destinations: ["db"], protocol: "tcp", ports: [5432] }),
	]);

	it("Default (All to All, both ways): everyone sees everyone; one network-wide rule", () => {
		const index = AccessIndex.build(account, peers, {
			groups,
			policies: [
				policy("default", [rule({ sources: ["all"], destinations: ["all"], bidirectional: true })]),
			],
		});
		for (let i = 0; i < peers.length; i++) {
			expect(index.visibleCount(i)).toBe(3);
			expect(index.firewallRules(i)).toEqual([
				{ source: "100.64.0.0/16", protocol: "all", ports: [], policyId: "default" },
			]);
		}
	});

	it("web to db TCP 5432: web sees db, db admits web's /32s on 5432 only, other sees nobody", () => {
		const index = AccessIndex.build(account, peers, { groups, policies: [webToDb] });
		const at = (p: Peer) => index.indexOfId(p.id)!;
		const map = (p: Peer) => computeNetworkMap(index, at(p), endpoints, 1);
		expect(map(web).peers.map((p) => p.peerId)).toEqual([db.id]);
		expect(map(web).firewallRules).toEqual([]);
		expect(
			map(db)
				.peers.map((p) => p.peerId)
				.sort(),
		).toEqual([web.id, web2.id].sort());
		expect(map(db).firewallRules).toEqual([
			{
				source: "100.64.0.1/32",
				protocol: "tcp",
				ports: [{ start: 5432, end: 5432 }],
				policyId: "web-db",
			},
			{
				source: "100.64.0.4/32",
				protocol: "tcp",
				ports: [{ start: 5432, end: 5432 }],
				policyId: "web-db",
			},
		]);
		expect(map(db).firewallEnforced).toBe(true);
		expect(map(other).peers).toEqual([]);
		expect(map(other).firewallRules).toEqual([]);
		// web-1 and web-2 share a group but no rule connects them.
		expect(index.isVisible(at(web), at(web2))).toBe(false);

		expect(index.check(at(web), at(db), "tcp", 5432)).toMatchObject({ allowed: true });
		expect(index.check(at(web), at(db), "tcp", 22)).toEqual({ allowed: false, connected: true });
		expect(index.check(at(web), at(db), "icmp", 0)).toEqual({ allowed: false, connected: true });
		expect(index.check(at(db), at(web), "tcp", 5432)).toEqual({ allowed: false, connected: true });
		expect(index.check(at(other), at(db), "tcp", 5432)).toEqual({
			allowed: false,
			connected: false,
		});
	});

	it("bidirectional rules admit both ways; disabled rules and policies admit nothing", () => {
		const both = policy("both", [
			rule({ sources: ["web"], destinations: ["db"], protocol: "udp", bidirectional: true }),
		]);
		const index = AccessIndex.build(account, peers, { groups, policies: [both] });
		const w = index.indexOfId(web.id)!;
		const d = index.indexOfId(db.id)!;
		expect(index.firewallRules(w)).toEqual([
			{ source: "100.64.0.2/32", protocol: "udp", ports: [], policyId: "both" },
		]);
		expect(index.check(d, w, "udp", 53)).toMatchObject({ allowed: true });
		for (const off of [
			policy("off", [rule({ sources: ["all"], destinations: ["all"] })], false),
			policy("off", [rule({ sources: ["all"], destinations: ["all"], enabled: false })]),
		]) {
			const none = AccessIndex.build(account, peers, { groups, policies: [off] });
			for (let i = 0; i < peers.length; i++) {
				expect(none.visibleIndices(i)).toHaveLength(0);
				expect(none.firewallRules(i)).toEqual([]);
			}
		}
	});

	it("All holds every peer whatever its stored list, and unknown group ids match nothing", () => {
		const index = AccessIndex.build(account, peers, {
			groups: [group("all", [], "all"), group("web", [web.id, "ghost"])],
			policies: [policy("p", [rule({ sources: ["web", "nope"], destinations: ["all"] })])],
		});
		expect(index.visibleCount(index.indexOfId(web.id)!)).toBe(3);
		expect(index.visibleCount(index.indexOfId(db.id)!)).toBe(1);
	});

	it("rules of one policy granting the same share firewall rules; sources are deduplicated", () => {
		const p = policy("p", [
			rule({ sources: ["web", "all"], destinations: ["db"], protocol: "tcp", ports: [80] }),
			rule({
				sources: ["web"],
				destinations: ["db"],
				protocol: "tcp",
				portRanges: [{ start: 80, end: 80 }],
			}),
			rule({ sources: ["web"], destinations: ["db", "web"], protocol: "tcp", ports: [443] }),
		]);
		const index = AccessIndex.build(account, peers, { groups, policies: [p] });
		const rules = index.firewallRules(index.indexOfId(db.id)!);
		// Grants in key order ("p|tcp|443-443" before "p|tcp|80-80"), sources ascending.
		expect(rules).toEqual([
			{
				source: "100.64.0.1/32",
				protocol: "tcp",
				ports: [{ start: 443, end: 443 }],
				policyId: "p",
			},
			{
				source: "100.64.0.4/32",
				protocol: "tcp",
				ports: [{ start: 443, end: 443 }],
				policyId: "p",
			},
			{ source: "100.64.0.0/16", protocol: "tcp", ports: [{ start: 80, end: 80 }], policyId: "p" },
		]);
		// A peer in both a rule's sources and destinations never admits itself.
		const w = index.indexOfId(web.id)!;
		expect(index.firewallRules(w).map((r) => r.source)).toEqual(["100.64.0.4/32"]);
	});

	it("canonical ports are sorted, merged and empty for all and icmp", () => {
		expect(
			canonicalPorts(
				"tcp",
				[443, 80, 81],
				[
					{ start: 82, end: 90 },
					{ start: 1000, end: 2000 },
				],
			),
		).toEqual([
			{ start: 80, end: 90 },
			{ start: 443, end: 443 },
			{ start: 1000, end: 2000 },
		]);
		expect(canonicalPorts("icmp", [80], [])).toEqual([]);
		expect(grantAllows("all", [], "icmp", 0)).toBe(true);
		expect(grantAllows("tcp", [], "udp", 53)).toBe(false);
	});
});

// ---------------------------------------------------------------- properties

interface Model {
	peers: Peer[];
	groups: Group[];
	policies: Policy[];
}

const PROTOCOLS: Protocol[] = ["all", "tcp", "udp", "icmp"];
const PORTS = [22, 80, 443, 5432];
const RANGES = [
	{ start: 8000, end: 8010 },
	{ start: 5000, end: 5500 },
];
/** Ports that sit on and around every boundary the generated rules can have. */
const PROBE_PORTS = [
	1, 21, 22, 23, 80, 443, 4999, 5000, 5432, 5500, 5501, 7999, 8000, 8010, 8011, 65535,
];

export const modelArb: fc.Arbitrary<Model> = fc
	.record({
		peerCount: fc.integer({ min: 0, max: 9 }),
		// Keys ordered unlike ids, so that map order and id order differ.
		keys: fc.uniqueArray(fc.string({ minLength: 1, maxLength: 4 }), { minLength: 9, maxLength: 9 }),
		groupCount: fc.integer({ min: 0, max: 4 }),
		memberSeeds: fc.array(fc.array(fc.boolean(), { minLength: 9, maxLength: 9 }), {
			minLength: 4,
			maxLength: 4,
		}),
		policies: fc.array(
			fc.record({
				enabled: fc.boolean(),
				rules: fc.array(
					fc.record({
						enabled: fc.boolean(),
						bidirectional: fc.boolean(),
						protocol: fc.constantFrom(...PROTOCOLS),
						ports: fc.subarray(PORTS),
						ranges: fc.subarray(RANGES),
						sources: fc.array(fc.integer({ min: -1, max: 4 }), { minLength: 1, maxLength: 3 }),
						destinations: fc.array(fc.integer({ min: -1, max: 4 }), { minLength: 1, maxLength: 3 }),
					}),
					{ minLength: 1, maxLength: 3 },
				),
			}),
			{ maxLength: 4 },
		),
	})
	.map(({ peerCount, keys, groupCount, memberSeeds, policies }) => {
		const peers = Array.from({ length: peerCount }, (_, i) => peer(i, keys[i]!));
		const groups = [
			group(
				"g-all",
				peers.map((p) => p.id),
				"all",
			),
		];
		for (let g = 0; g < groupCount; g++) {
			groups.push(
				group(
					`g${g}`,
					peers.filter((_, i) => memberSeeds[g]![i]).map((p) => p.id),
				),
			);
		}
		// -1: All; an ordinal past the groups made: a group id that does not exist.
		const groupId = (n: number) => (n === -1 ? "g-all" : `g${n}`);
		return {
			peers,
			groups,
			policies: policies.map((p, pi) =>
				policy(
					`pol${pi}`,
					p.rules.map((r, ri) =>
						rule({
							id: `r${pi}.${ri}`,
							enabled: r.enabled,
							bidirectional: r.bidirectional,
							protocol: r.protocol,
							ports: r.protocol === "tcp" || r.protocol === "udp" ? r.ports : [],
							portRanges: r.protocol === "tcp" || r.protocol === "udp" ? r.ranges : [],
							sources: r.sources.map(groupId),
							destinations: r.destinations.map(groupId),
						}),
					),
					p.enabled,
				),
			),
		};
	});

function inGroups(model: Model, p: Peer, groupIds: string[]): boolean {
	return groupIds.some((id) => {
		const g = model.groups.find((x) => x.id === id);
		return g !== undefined && (g.issued === "all" || g.peerIds.includes(p.id));
	});
}

function enabledRules(model: Model): PolicyRule[] {
	return model.policies.filter((p) => p.enabled).flatMap((p) => p.rules.filter((r) => r.enabled));
}

/** The rules read literally, one peer pair and port at a time. */
function bruteAllowed(model: Model, src: Peer, dst: Peer, proto: CheckProtocol, port: number) {
	if (src.id === dst.id) return false;
	return enabledRules(model).some((r) => {
		const forward = inGroups(model, src, r.sources) && inGroups(model, dst, r.destinations);
		const backward =
			r.bidirectional && inGroups(model, src, r.destinations) && inGroups(model, dst, r.sources);
		if (!forward && !backward) return false;
		if (r.protocol !== "all" && r.protocol !== proto) return false;
		if (proto === "icmp" || (r.ports.length === 0 && r.portRanges.length === 0)) return true;
		return r.ports.includes(port) || r.portRanges.some((x) => port >= x.start && port <= x.end);
	});
}

function bruteVisible(model: Model, a: Peer, b: Peer): boolean {
	if (a.id === b.id) return false;
	return enabledRules(model).some(
		(r) =>
			(inGroups(model, a, r.sources) && inGroups(model, b, r.destinations)) ||
			(inGroups(model, a, r.destinations) && inGroups(model, b, r.sources)),
	);
}

/**
 * Checks every peer's map against the rules read literally: its peers are
 * those some enabled rule connects it to, and its firewall rule list is built
 * rule by rule (grants in key order, sources in map order, All as the network).
 */
function expectLiteralMaps(model: Model): void {
	const index = AccessIndex.build(account, model.peers, model);
	const exists = (id: string) => model.groups.some((g) => g.id === id);
	const byKey = [...model.peers].sort((a, b) =>
		a.wgPublicKey < b.wgPublicKey ? -1 : a.wgPublicKey > b.wgPublicKey ? 1 : 0,
	);
	for (const viewer of model.peers) {
		// Per grant: the groups it admits from, or "all".
		const grants = new Map<
			string,
			{
				protocol: Protocol;
				ports: ReturnType<typeof canonicalPorts>;
				policyId: string;
				from: string[][] | "all";
			}
		>();
		for (const pol of model.policies.filter((p) => p.enabled)) {
			for (const r of pol.rules.filter((x) => x.enabled)) {
				if (!r.sources.some(exists) || !r.destinations.some(exists)) continue;
				const ports = canonicalPorts(r.protocol, r.ports, r.portRanges);
				const key = `${pol.id}|${r.protocol}|${ports.map((x) => `${x.start}-${x.end}`).join(",")}`;
				const admitted: string[][] = [];
				if (inGroups(model, viewer, r.destinations)) admitted.push(r.sources);
				if (r.bidirectional && inGroups(model, viewer, r.sources)) admitted.push(r.destinations);
				if (admitted.length === 0) continue;
				const g = grants.get(key) ?? {
					protocol: r.protocol,
					ports,
					policyId: pol.id,
					from: [],
				};
				if (g.from !== "all") {
					if (admitted.some((ids) => ids.includes("g-all"))) g.from = "all";
					else g.from.push(...admitted);
				}
				grants.set(key, g);
			}
		}
		const expected = [...grants.keys()].sort().flatMap((key) => {
			const g = grants.get(key)!;
			const rest = { protocol: g.protocol, ports: g.ports, policyId: g.policyId };
			if (g.from === "all") return [{ source: account.network, ...rest }];
			const from = g.from;
			return byKey
				.filter((p) => p.id !== viewer.id && from.some((ids) => inGroups(model, p, ids)))
				.map((p) => ({ source: `${p.ip}/32`, ...rest }));
		});
		expect(index.firewallRules(index.indexOfId(viewer.id)!)).toEqual(expected);
	}
}

describe("access index: properties", () => {
	it("property: the (source, destination, protocol, port) tuples the maps' firewall rules allow equal a brute-force reading of the rules", () => {
		fc.assert(
			fc.property(modelArb, (model) => {
				const index = AccessIndex.build(account, model.peers, model);
				const maps = new Map(
					model.peers.map((p) => [
						p.id,
						computeNetworkMap(index, index.indexOfId(p.id)!, endpoints, 1),
					]),
				);
				for (const dst of model.peers) {
					const map = maps.get(dst.id)!;
					const seen = new Set(map.peers.map((p) => p.peerId));
					for (const src of model.peers) {
						for (const proto of ["tcp", "udp", "icmp"] as const) {
							for (const port of proto === "icmp" ? [0] : PROBE_PORTS) {
								const expected = bruteAllowed(model, src, dst, proto, port);
								const fromMap =
									src.id !== dst.id && firewallAllows(map.firewallRules, src.ip, proto, port);
								expect(fromMap, `${src.id} -> ${dst.id} ${proto}/${port}`).toBe(expected);
								// Whatever is allowed travels over a tunnel the destination has.
								if (expected) expect(seen.has(src.id)).toBe(true);
								const verdict = index.check(
									index.indexOfId(src.id)!,
									index.indexOfId(dst.id)!,
									proto,
									port,
								);
								expect(verdict.allowed).toBe(expected);
								if (verdict.allowed) {
									// The rule it names does allow it.
									expect(
										bruteAllowed(
											{ ...model, policies: [policy(verdict.policy.id, [verdict.rule])] },
											src,
											dst,
											proto,
											port,
										),
									).toBe(true);
								}
							}
						}
					}
				}
			}),
			{ numRuns: 150 },
		);
	});

	it("property: each map's firewall rule list equals one built literally from the rules (grants in key order, sources in map order, All as the network)", () => {
		fc.assert(fc.property(modelArb, expectLiteralMaps), { numRuns: 300 });
	});

	it("property: the same with up to 100 peers (unions that span many 32-peer words)", () => {
		const bigModelArb = fc
			.record({
				peerCount: fc.integer({ min: 30, max: 100 }),
				members: fc.array(fc.array(fc.integer({ min: 0, max: 99 }), { maxLength: 60 }), {
					minLength: 4,
					maxLength: 4,
				}),
				rules: fc.array(
					fc.record({
						bidirectional: fc.boolean(),
						sources: fc.subarray(["g0", "g1", "g2", "g3"], { minLength: 1 }),
						destinations: fc.subarray(["g0", "g1", "g2", "g3"], { minLength: 1 }),
					}),
					{ minLength: 1, maxLength: 5 },
				),
			})
			.map(({ peerCount, members, rules }): Model => {
				const peers = Array.from({ length: peerCount }, (_, i) =>
					peerFixture({
						id: `p${i}`,
						accountId: account.id,
						wgPublicKey: `key-${String((i * 37) % 101).padStart(3, "0")}`,
						name: `peer${i}`,
						ip: `100.64.0.${i + 1}`,
					}),
				);
				return {
					peers,
					groups: [
						group(
							"g-all",
							peers.map((p) => p.id),
							"all",
						),
						...members.map((m, g) =>
							group(
								`g${g}`,
								m.filter((i) => i < peerCount).map((i) => `p${i}`),
							),
						),
					],
					policies: rules.map((r, i) =>
						policy(`pol${i}`, [rule({ id: `r${i}`, ...r, protocol: "tcp", ports: [22] })]),
					),
				};
			});
		fc.assert(
			fc.property(bigModelArb, (model) => {
				expectLiteralMaps(model);
				const index = AccessIndex.build(account, model.peers, model);
				for (const a of model.peers) {
					const map = computeNetworkMap(index, index.indexOfId(a.id)!, endpoints, 1);
					const expected = model.peers
						.filter((b) => bruteVisible(model, a, b))
						.map((b) => b.wgPublicKey)
						.sort();
					expect(map.peers.map((p) => p.wgPublicKey)).toEqual(expected);
				}
			}),
			{ numRuns: 100 },
		);
	});

	it("property: visibility is exactly 'some enabled rule connects the two', hence symmetric, and maps are sorted by key", () => {
		fc.assert(
			fc.property(modelArb, (model) => {
				const index = AccessIndex.build(account, model.peers, model);
				for (const a of model.peers) {
					const ia = index.indexOfId(a.id)!;
					const map = computeNetworkMap(index, ia, endpoints, 1);
					const keys = map.peers.map((p) => p.wgPublicKey);
					expect(keys).toEqual([...keys].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
					expect(index.visibleCount(ia)).toBe(keys.length);
					for (const b of model.peers) {
						const ib = index.indexOfId(b.id)!;
						const expected = bruteVisible(model, a, b);
						expect(index.isVisible(ia, ib)).toBe(expected);
						expect(index.isVisible(ib, ia)).toBe(expected);
						expect(keys.includes(b.wgPublicKey)).toBe(expected);
					}
				}
			}),
			{ numRuns: 150 },
		);
	});
});
