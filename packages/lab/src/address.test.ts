import { describe, expect, it } from "vitest";
import {
	AddressError,
	AddressPool,
	formatIPv4,
	isLabAddress,
	parseIPv4,
	parseLabSubnet,
} from "./address.js";
import { natRuleset } from "./nat.js";
import { labOfNamespace, namespaceName, validateLabName, validateNodeName } from "./registry.js";

describe("lab addresses", () => {
	it("parses and formats IPv4", () => {
		expect(formatIPv4(parseIPv4("198.18.1.254"))).toBe("198.18.1.254");
		for (const bad of ["198.18.1", "198.18.1.256", "198.18.01.1", "a.b.c.d", ""]) {
			expect(() => parseIPv4(bad)).toThrow(AddressError);
		}
	});

	it("accepts only subnets inside 198.18.0.0/15", () => {
		expect(parseLabSubnet("198.18.1.0/24").text).toBe("198.18.1.0/24");
		expect(parseLabSubnet("198.19.255.0/24").text).toBe("198.19.255.0/24");
		expect(isLabAddress("198.19.255.255")).toBe(true);
		expect(isLabAddress("198.20.0.1")).toBe(false);
		expect(isLabAddress("100.64.0.1")).toBe(false);
		for (const bad of [
			"10.0.0.0/24",
			"198.20.0.0/24",
			"198.16.0.0/14",
			"198.18.1.1/24",
			"198.18.1.0/31",
		]) {
			expect(() => parseLabSubnet(bad), bad).toThrow(AddressError);
		}
	});

	it("hands out the lowest free host address, or a requested one", () => {
		const pool = new AddressPool(parseLabSubnet("198.18.7.0/29"));
		expect(pool.allocate()).toBe("198.18.7.1");
		expect(pool.allocate("198.18.7.5")).toBe("198.18.7.5");
		expect(pool.allocate()).toBe("198.18.7.2");
		expect(() => pool.allocate("198.18.7.5")).toThrow(/in use/);
		expect(() => pool.allocate("198.18.7.7")).toThrow(/not a host address/); // broadcast
		expect(() => pool.allocate("198.18.8.1")).toThrow(/not a host address/);
		expect([pool.allocate(), pool.allocate(), pool.allocate()]).toEqual([
			"198.18.7.3",
			"198.18.7.4",
			"198.18.7.6",
		]);
		expect(() => pool.allocate()).toThrow(/no free address/);
	});
});

describe("lab names", () => {
	it("validates lab and node names and maps namespaces back to labs", () => {
		expect(() => validateLabName("abc123")).not.toThrow();
		for (const bad of ["", "abcdefg", "a-b", "A", "a b"])
			expect(() => validateLabName(bad)).toThrow();
		expect(() => validateNodeName("home-router")).not.toThrow();
		for (const bad of ["-a", "a-", "a_b", "x".repeat(21), "a;b"])
			expect(() => validateNodeName(bad)).toThrow();
		expect(namespaceName("t1", "home-router")).toBe("stl-t1-home-router");
		expect(labOfNamespace("stl-t1-home-router")).toBe("t1");
		expect(labOfNamespace("stl-toolong-x")).toBeUndefined();
		expect(labOfNamespace("other")).toBeUndefined();
	});
});

describe("NAT rule sets", () => {
	it("replace the table atomically and match each kind", () => {
		const eim = natRuleset("eim");
		expect(eim.startsWith("table ip starling_lab\ndelete table ip starling_lab\n")).toBe(true);
		expect(eim).toContain('oifname "wan" masquerade\n');
		expect(eim).toContain('iifname "wan" ct state new drop');
		expect(natRuleset("symmetric")).toContain("masquerade random");
		expect(natRuleset("masquerade-only")).not.toContain("drop");
		expect(natRuleset("none")).not.toMatch(/masquerade|drop/);
		expect(natRuleset("udp-blocked")).toContain(
			'iifname "lan" oifname "wan" meta l4proto udp drop',
		);
		const forwarded = natRuleset("eim", [
			{ protocol: "udp", port: 51820, toAddress: "198.18.1.2", toPort: 51820 },
		]);
		expect(forwarded).toContain('iifname "wan" udp dport 51820 dnat to 198.18.1.2:51820');
		expect(forwarded).toContain('iifname "wan" ct status dnat accept');
	});
});
