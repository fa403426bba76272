import { describe, expect, it } from "vitest";
import { parseLocalNetworks, parseRoutePrefixes, parseRules } from "./kernel-routes.js";

describe("kernel-routes parsing", () => {
	it("reads the routes of a table ('default' is 0.0.0.0/0, a bare address a /32)", () => {
		expect(
			parseRoutePrefixes(
				"default dev starling0 scope link \n198.18.65.0/24 dev starling0 scope link \n198.18.9.9 dev starling0\n",
			),
		).toEqual(["0.0.0.0/0", "198.18.65.0/24", "198.18.9.9/32"]);
		expect(parseRoutePrefixes("")).toEqual([]);
	});

	it("reads rule priorities and destinations", () => {
		expect(
			parseRules(
				"0:\tfrom all lookup local\n21330:\tfrom all to 198.18.67.2 lookup main\n21331:\tfrom all lookup main suppress_prefixlength 0\n21332:\tfrom all lookup 21332\n32766:\tfrom all lookup main\n",
			),
		).toEqual([
			{ priority: 0, to: undefined },
			{ priority: 21330, to: "198.18.67.2" },
			{ priority: 21331, to: undefined },
			{ priority: 21332, to: undefined },
			{ priority: 32766, to: undefined },
		]);
	});

	it("reads the machine's own networks, leaving out loopback and the overlay", () => {
		const text = [
			"1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever",
			"2: eth0    inet 198.18.64.5/24 brd 198.18.64.255 scope global eth0\\       valid_lft forever",
			"3: wan@if12    inet 198.18.1.7/30 scope global wan",
			"9: starling0    inet 100.64.0.2/16 scope global starling0",
		].join("\n");
		expect(parseLocalNetworks(text, "starling0")).toEqual(["198.18.1.4/30", "198.18.64.0/24"]);
	});
});
