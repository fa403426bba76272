import { describe, expect, it } from "vitest";
import {
	isAddressExcluded,
	OVERLAY_PREFIX,
	parseIpv4,
	parseIpv6,
	parsePrefix,
	prefixContains,
} from "./address-prefix.js";

describe("parseIpv4", () => {
	it("reads dotted quads and rejects the rest", () => {
		expect(parseIpv4("198.18.0.1")).toBe(0xc6120001n);
		expect(parseIpv4("0.0.0.0")).toBe(0n);
		for (const bad of ["198.18.0", "198.18.0.256", "1.2.3.4.5", "a.b.c.d", "", "1..2.3", "::1"]) {
			expect(parseIpv4(bad)).toBeUndefined();
		}
	});
});

describe("parseIpv6", () => {
	it("reads compressed, full, zoned and IPv4-tailed forms", () => {
		expect(parseIpv6("::")).toBe(0n);
		expect(parseIpv6("::1")).toBe(1n);
		expect(parseIpv6("fd00::2")).toBe((0xfd00n << 112n) | 2n);
		expect(parseIpv6("fe80::1%eth0")).toBe((0xfe80n << 112n) | 1n);
		expect(parseIpv6("0:0:0:0:0:0:0:1")).toBe(1n);
		expect(parseIpv6("::ffff:100.64.0.1")).toBe((0xffffn << 32n) | 0x64400001n);
	});

	it("rejects malformed addresses", () => {
		for (const bad of [
			"1:2:3:4:5:6:7",
			"1::2::3",
			"1:2:3:4:5:6:7:8:9",
			"g::1",
			"198.18.0.1",
			"1:2:3:4:5:6:7::8",
		]) {
			expect(parseIpv6(bad)).toBeUndefined();
		}
	});
});

describe("parsePrefix / prefixContains", () => {
	it("matches the overlay range 100.64.0.0/10 exactly", () => {
		const overlay = parsePrefix(OVERLAY_PREFIX);
		expect(prefixContains(overlay, "100.64.0.1")).toBe(true);
		expect(prefixContains(overlay, "100.127.255.255")).toBe(true);
		expect(prefixContains(overlay, "100.63.255.255")).toBe(false);
		expect(prefixContains(overlay, "100.128.0.0")).toBe(false);
		expect(prefixContains(overlay, "198.18.0.1")).toBe(false);
	});

	it("sees IPv4-mapped IPv6 addresses as IPv4", () => {
		expect(prefixContains(parsePrefix(OVERLAY_PREFIX), "::ffff:100.64.3.4")).toBe(true);
	});

	it("normalises host bits and treats a bare address as a host prefix", () => {
		expect(parsePrefix("198.18.7.9/16")).toEqual({ family: 4, network: 0xc6120000n, length: 16 });
		const host = parsePrefix("198.18.0.1");
		expect(host.length).toBe(32);
		expect(prefixContains(host, "198.18.0.1")).toBe(true);
		expect(prefixContains(host, "198.18.0.2")).toBe(false);
	});

	it("handles IPv6 prefixes and never mixes families", () => {
		const ula = parsePrefix("fd00::/8");
		expect(prefixContains(ula, "fd12:3456::1")).toBe(true);
		expect(prefixContains(ula, "fe80::1")).toBe(false);
		expect(prefixContains(ula, "100.64.0.1")).toBe(false);
		expect(prefixContains(parsePrefix("0.0.0.0/0"), "fd00::1")).toBe(false);
		expect(prefixContains(parsePrefix("::/0"), "fd00::1")).toBe(true);
	});

	it("throws on nonsense", () => {
		for (const bad of [
			"",
			"100.64.0.0/33",
			"fd00::/129",
			"100.64.0.0/x",
			"example.com/8",
			"1.2.3.4/-1",
		]) {
			expect(() => parsePrefix(bad)).toThrow(/not an IP prefix/);
		}
	});

	it("isAddressExcluded checks every prefix; hostnames are never excluded", () => {
		const prefixes = [parsePrefix(OVERLAY_PREFIX), parsePrefix("198.19.0.0/16")];
		expect(isAddressExcluded("198.19.5.5", prefixes)).toBe(true);
		expect(isAddressExcluded("100.100.1.1", prefixes)).toBe(true);
		expect(isAddressExcluded("198.18.5.5", prefixes)).toBe(false);
		expect(isAddressExcluded("host.local", prefixes)).toBe(false);
	});
});
