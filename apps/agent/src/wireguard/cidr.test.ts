import { describe, expect, it } from "vitest";
import {
	canonicalEndpoint,
	canonicalInterfaceAddress,
	canonicalPrefix,
	formatIp,
	InvalidAddressError,
	parseIp,
} from "./cidr.js";

describe("IP text", () => {
	it("formats IPv6 the way inet_ntop does", () => {
		const cases: Array<[string, string]> = [
			["::1", "::1"],
			["::", "::"],
			["FD00:0:0:0:0:0:0:1", "fd00::1"],
			["fd00:0:0:1:0:0:0:1", "fd00:0:0:1::1"],
			["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
			["fe80::69eb:5846:dc53:15ba", "fe80::69eb:5846:dc53:15ba"],
			["::ffff:198.18.0.1", "::ffff:198.18.0.1"],
			["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
		];
		for (const [input, expected] of cases) {
			const parsed = parseIp(input);
			expect(parsed, input).toBeDefined();
			if (parsed) expect(formatIp(parsed)).toBe(expected);
		}
	});

	it("refuses what is not a literal address", () => {
		for (const text of [
			"",
			"1.2.3",
			"1.2.3.256",
			"01.2.3.4",
			"1::2::3",
			"1:2:3:4:5:6:7:8:9",
			"host",
			"::g",
		]) {
			expect(parseIp(text), text).toBeUndefined();
		}
	});

	it("clears host bits in prefixes but keeps them in interface addresses", () => {
		expect(canonicalPrefix("100.64.0.2/24")).toBe("100.64.0.0/24");
		expect(canonicalPrefix("100.64.0.9")).toBe("100.64.0.9/32");
		expect(canonicalPrefix("fd00::5/64")).toBe("fd00::/64");
		expect(canonicalPrefix("0.0.0.0/0")).toBe("0.0.0.0/0");
		expect(canonicalPrefix("100.64.255.255/10")).toBe("100.64.0.0/10");
		expect(canonicalInterfaceAddress("100.64.0.7/16")).toBe("100.64.0.7/16");
		expect(() => canonicalPrefix("100.64.0.0/33")).toThrow(InvalidAddressError);
	});

	it("spells endpoints as wg prints them and refuses host names", () => {
		expect(canonicalEndpoint("198.18.0.2:51820")).toBe("198.18.0.2:51820");
		expect(canonicalEndpoint("[0:0::1]:51820")).toBe("[::1]:51820");
		expect(() => canonicalEndpoint("example.org:51820")).toThrow(/literal address/);
		expect(() => canonicalEndpoint("198.18.0.2:0")).toThrow(InvalidAddressError);
		expect(() => canonicalEndpoint("::1:51820")).toThrow(InvalidAddressError);
	});
});
