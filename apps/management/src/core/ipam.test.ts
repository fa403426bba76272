import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
	allocateHost,
	allocateSubnet,
	cidrContainsIp,
	cidrSize,
	formatCidr,
	IpamError,
	intToIp,
	ipToInt,
	parseCidr,
} from "./ipam.js";

const seeded = (seed: number) => {
	let s = seed >>> 0 || 1;
	return (max: number) => {
		s = (s * 1664525 + 1013904223) >>> 0;
		return s % max;
	};
};

describe("CIDR parsing", () => {
	it("round-trips addresses and networks", () => {
		expect(intToIp(ipToInt("100.64.0.1"))).toBe("100.64.0.1");
		expect(formatCidr(parseCidr("100.64.0.0/10"))).toBe("100.64.0.0/10");
		expect(cidrSize(parseCidr("100.64.0.0/16"))).toBe(65536);
	});

	it("rejects malformed input with a reason", () => {
		for (const bad of [
			"100.64.0.0",
			"100.64.0.0/33",
			"300.1.1.1/8",
			"100.64.0.1/10",
			"a.b.c.d/8",
			"1.2.3.4/8/9",
		]) {
			expect(() => parseCidr(bad)).toThrow(IpamError);
		}
	});
});

describe("allocateHost", () => {
	it("never returns the network or broadcast address, or a used one", () => {
		const net = parseCidr("100.64.7.0/29");
		const used = new Set<number>();
		for (let i = 0; i < 6; i++) {
			const ip = allocateHost(net, used, seeded(i + 1));
			expect(ip).not.toBe(net.base);
			expect(ip).not.toBe(net.base + 7);
			expect(used.has(ip)).toBe(false);
			used.add(ip);
		}
		expect(() => allocateHost(net, used, seeded(9))).toThrow(/full/);
	});

	it("property: n allocations in a network are n distinct in-network host addresses", () => {
		fc.assert(
			fc.property(
				fc.integer({ min: 20, max: 30 }),
				fc.integer(),
				fc.integer({ min: 0, max: 300 }),
				(prefix, seed, n) => {
					const net = parseCidr(`100.64.0.0/${prefix}`);
					const capacity = cidrSize(net) - 2;
					const used = new Set<number>();
					const rand = seeded(seed);
					for (let i = 0; i < Math.min(n, capacity); i++) {
						const ip = allocateHost(net, used, rand);
						expect(cidrContainsIp(net, ip)).toBe(true);
						expect(ip === net.base || ip === net.base + cidrSize(net) - 1).toBe(false);
						expect(used.has(ip)).toBe(false);
						used.add(ip);
					}
					if (n >= capacity) expect(() => allocateHost(net, used, rand)).toThrow(IpamError);
				},
			),
			{ numRuns: 200 },
		);
	});

	it("property: a freed address can be allocated again", () => {
		fc.assert(
			fc.property(fc.integer(), (seed) => {
				const net = parseCidr("100.64.0.0/30");
				const rand = seeded(seed);
				const a = allocateHost(net, new Set(), rand);
				const b = allocateHost(net, new Set([a]), rand);
				expect(() => allocateHost(net, new Set([a, b]), rand)).toThrow(IpamError);
				expect(allocateHost(net, new Set([b]), rand)).toBe(a);
			}),
		);
	});
});

describe("allocateSubnet", () => {
	it("property: account networks never overlap and stay inside the pool", () => {
		fc.assert(
			fc.property(fc.integer(), fc.integer({ min: 1, max: 64 }), (seed, n) => {
				const pool = parseCidr("100.64.0.0/10");
				const taken: ReturnType<typeof parseCidr>[] = [];
				const rand = seeded(seed);
				for (let i = 0; i < n; i++) {
					const net = allocateSubnet(pool, 16, taken, rand);
					expect(cidrContainsIp(pool, net.base)).toBe(true);
					expect(taken.some((t) => t.base === net.base)).toBe(false);
					taken.push(net);
				}
				if (n === 64) expect(() => allocateSubnet(pool, 16, taken, rand)).toThrow(/no free/);
			}),
			{ numRuns: 50 },
		);
	});
});
