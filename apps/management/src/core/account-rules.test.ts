import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { defaultPolicy, networksOverlap, overlappingNetwork } from "./account-rules.js";
import { formatCidr, parseCidr } from "./ipam.js";

describe("defaultPolicy", () => {
	it("lets All reach All both ways on every protocol and port", () => {
		const at = new Date(0);
		const p = defaultPolicy({ accountId: "a", allGroupId: "all", policyId: "p", ruleId: "r" }, at);
		expect(p).toMatchObject({
			id: "p",
			accountId: "a",
			name: "Default",
			enabled: true,
			createdAt: at,
		});
		expect(p.rules).toEqual([
			expect.objectContaining({
				id: "r",
				enabled: true,
				action: "accept",
				bidirectional: true,
				protocol: "all",
				ports: [],
				portRanges: [],
				sources: ["all"],
				destinations: ["all"],
			}),
		]);
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
