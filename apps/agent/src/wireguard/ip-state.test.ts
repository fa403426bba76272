import { describe, expect, it } from "vitest";
import { parseIpAddrJson, parseIpLinkJson, parseIpRouteJson } from "./ip-state.js";

// Captured from a wireguard-go interface (`ip -j ... dev wgx`).
const ADDR_JSON = `[{"ifindex":2,"ifname":"wgx","flags":["POINTOPOINT","MULTICAST","NOARP","UP","LOWER_UP"],"mtu":1280,"qdisc":"pfifo_fast","operstate":"UNKNOWN","group":"default","txqlen":500,"link_type":"none","addr_info":[{"family":"inet","local":"100.64.0.1","prefixlen":16,"scope":"global","label":"wgx","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fe80::69eb:5846:dc53:15ba","prefixlen":64,"scope":"link","tentative":true,"stable-privacy":true,"valid_life_time":4294967295,"preferred_life_time":4294967295}]}]`;
const ROUTE_JSON = `[{"dst":"100.64.0.0/16","protocol":"kernel","scope":"link","prefsrc":"100.64.0.1","flags":[]},{"dst":"100.65.0.0/16","scope":"link","flags":[]},{"dst":"100.64.0.9","scope":"link","flags":[]}]`;
const ROUTE6_JSON = `[{"dst":"fe80::/64","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},{"dst":"default","metric":1024,"flags":[]}]`;

describe("ip -j parsing", () => {
	it("reads global addresses and skips link-local ones", () => {
		expect(parseIpAddrJson(ADDR_JSON)).toEqual(["100.64.0.1/16"]);
		expect(parseIpAddrJson("")).toEqual([]);
	});

	it("reads routes with their protocol, host routes as /32 and default per family", () => {
		expect(parseIpRouteJson(ROUTE_JSON, 4)).toEqual([
			{ destination: "100.64.0.0/16", protocol: "kernel" },
			{ destination: "100.65.0.0/16", protocol: undefined },
			{ destination: "100.64.0.9/32", protocol: undefined },
		]);
		expect(parseIpRouteJson(ROUTE6_JSON, 6)).toEqual([
			{ destination: "fe80::/64", protocol: "kernel" },
			{ destination: "::/0", protocol: undefined },
		]);
		expect(
			parseIpRouteJson('[{"type":"unreachable","dst":"100.66.0.0/16","flags":[]}]', 4),
		).toEqual([]);
	});

	it("reads MTU and the UP flag", () => {
		expect(parseIpLinkJson(ADDR_JSON)).toEqual({ mtu: 1280, up: true });
		expect(
			parseIpLinkJson('[{"ifname":"wgx","flags":["POINTOPOINT","NOARP"],"mtu":1420}]'),
		).toEqual({
			mtu: 1420,
			up: false,
		});
		expect(() => parseIpLinkJson("[]")).toThrow(/no link/);
		expect(() => parseIpLinkJson("not json")).toThrow(/not JSON/);
	});
});
