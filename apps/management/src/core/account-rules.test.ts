import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { accountFixture, peerFixture } from "../domain/fixtures.js";
import type { Group } from "../domain/types.js";
import { defaultPolicy, networksOverlap, overlappingNetwork } from "./account-rules.js";
import { formatCidr, parseCidr } from "./ipam.js";
import { computeNetworkMap } from "./network-map.js";
import { AccessIndex, firewallAllows } from "./policy.js";

describe("defaultPolicy", () => {
	it("lets every peer of All reach every other on every protocol and port, both ways", () => {
		const at = new Date(0);
		const ids = { accountId: "acc", allGroupId: "all", policyId: "p", ruleId: "r" };
		const policy = defaultPolicy(ids, at);
		expect(policy).toMatchObject({ id: "p", accountId: "acc", name: "Default", createdAt: at });
		expect(policy.rules.map((r) => r.id)).toEqual(["r"]);

		const peers = [1, 2, 3].map((n) =>
			peerFixture({
				id: `p${n}`,
				accountId: "acc",
				name: `peer${n}`,
				ip: `100.64.0.${n}`,
				wgPublicKey: `key-${n}`,
			}),
		);
		const all: Group = {
			id: "all",
			accountId: "acc",
			name: "All",
			issued: "all",
			peerIds: peers.map((p) => p.id),
		};
		const index = AccessIndex.build(accountFixture(), peers, { groups: [all], policies: [policy] });
		const endpoints = { signal: { url: "http://127.0.0.1:10000" }, stunServers: [] };
		const probes = [
			["tcp", 1],
			["tcp", 65535],
			["udp", 53],
			["icmp", 0],
		] as const;
		for (const dst of peers) {
			const map = computeNetworkMap(index, index.indexOfId(dst.id)!, endpoints, 1);
			const others = peers.filter((p) => p !== dst);
			expect(map.peers.map((p) => p.peerId).sort()).toEqual(others.map((p) => p.id));
			for (const src of others) {
				for (const [protocol, port] of probes) {
					expect(firewallAllows(map.firewallRules, src.ip, protocol, port)).toBe(true);
				}
			}
		}
	});
});

/** A network inside 10.0.0.0/24 (prefix /24../32), so its addresses can be listed. */
const smallNetwork = fc
	.record({ host: fc.integer({ min: 0, max: 255 }), prefix: fc.integer({ min: 24, max: 32 }) })
	.map(({ host, prefix }) => {
		const size = 2 ** (32 - prefix);
		return `10.0.0.${host - (host % size)}/${prefix}`;
	});

/** The model: every address of the network, one by one. */
function addresses(cidr: string): Set<number> {
	const c = parseCidr(cidr);
	const out = new Set<number>();
	for (let i = 0; i < 2 ** (32 - c.prefix); i++) out.add(c.base + i);
	return out;
}

describe("networksOverlap", () => {
	it("is true exactly when the two ranges share an address (brute force)", () => {
		fc.assert(
			fc.property(smallNetwork, smallNetwork, (a, b) => {
				const x = addresses(a);
				const shared = [...addresses(b)].some((ip) => x.has(ip));
				expect(networksOverlap(a, b)).toBe(shared);
				expect(networksOverlap(b, a)).toBe(shared);
			}),
		);
	});

	it("handles whole /8s and /16s: nested ranges overlap, neighbours do not", () => {
		expect(networksOverlap("100.64.0.0/10", "100.100.0.0/16")).toBe(true);
		expect(networksOverlap("100.64.0.0/16", "100.65.0.0/16")).toBe(false);
		expect(networksOverlap(formatCidr(parseCidr("0.0.0.0/0")), "192.168.1.0/24")).toBe(true);
	});
});

describe("overlappingNetwork", () => {
	it("names the first range that overlaps, or nothing", () => {
		expect(overlappingNetwork("10.0.0.0/16", ["10.1.0.0/16", "10.0.5.0/24", "10.0.0.0/8"])).toBe(
			"10.0.5.0/24",
		);
		expect(overlappingNetwork("10.0.0.0/16", ["10.1.0.0/16"])).toBeUndefined();
		expect(overlappingNetwork("10.0.0.0/16", [])).toBeUndefined();
	});
});
