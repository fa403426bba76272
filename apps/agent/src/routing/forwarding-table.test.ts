import type { FirewallRule, ServedRoute } from "@starling/proto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { planServedRoutes, servedRouteStatuses } from "./forwarding-consumer.js";
import {
	checkServedRoute,
	renderRoutingTable,
	renderRoutingTableRemoval,
} from "./forwarding-table.js";

const open = (
	routeId: string,
	network: string,
	sources: string[],
	masquerade = true,
): ServedRoute => ({
	routeId,
	network,
	masquerade,
	filtered: false,
	rules: [],
	sources,
});

const rule = (source: string, protocol: string, ports: [number, number][] = []): FirewallRule => ({
	source,
	protocol,
	ports: ports.map(([start, end]) => ({ start, end })),
	policyId: "p",
});

const filtered = (
	routeId: string,
	network: string,
	rules: FirewallRule[],
	masquerade = true,
): ServedRoute => ({
	routeId,
	network,
	masquerade,
	filtered: true,
	rules,
	sources: [],
});

function render(routes: ServedRoute[]): string {
	return renderRoutingTable("wt0", planServedRoutes({ servedRoutes: routes }).routes);
}

describe("renderRoutingTable", () => {
	it("forwards an open route from its sources, with masquerade", () => {
		expect(render([open("r1", "198.18.10.0/24", ["100.64.0.2/32", "100.64.0.3/32"])])).toBe(
			[
				"table inet starling-routing",
				"delete table inet starling-routing",
				"table inet starling-routing {",
				"\tchain forward {",
				"\t\ttype filter hook forward priority filter; policy accept;",
				'\t\tiifname "wt0" jump from-overlay',
				'\t\toifname "wt0" jump to-overlay',
				"\t}",
				"\tchain from-overlay {",
				"\t\tct state invalid drop",
				"\t\tct state related accept",
				"\t\tip daddr 198.18.10.0/24 ip saddr { 100.64.0.2, 100.64.0.3 } accept",
				"\t\tcounter drop",
				"\t}",
				"\tchain to-overlay {",
				"\t\tct state established,related accept",
				"\t\tcounter drop",
				"\t}",
				"\tchain postrouting {",
				"\t\ttype nat hook postrouting priority srcnat; policy accept;",
				'\t\tiifname "wt0" ip daddr 198.18.10.0/24 masquerade',
				"\t}",
				"}",
				"",
			].join("\n"),
		);
	});

	it("forwards a filtered route only as its rules say, and no masquerade when off", () => {
		const text = render([
			filtered(
				"r2",
				"198.18.20.0/24",
				[
					rule("100.64.0.2/32", "tcp", [[80, 80]]),
					rule("100.64.0.3/32", "tcp", [[80, 80]]),
					rule("100.64.0.2/32", "icmp"),
				],
				false,
			),
		]);
		expect(text).toContain(
			"\t\tip daddr 198.18.20.0/24 ip saddr { 100.64.0.2, 100.64.0.3 } tcp dport { 80 } accept\n",
		);
		expect(text).toContain(
			"\t\tip daddr 198.18.20.0/24 ip saddr { 100.64.0.2 } ip protocol icmp accept\n",
		);
		expect(text).not.toContain("masquerade");
	});

	it("renders the same text for the same routes in any order", () => {
		const routes = [
			open("a", "198.18.10.0/24", ["100.64.0.2/32"]),
			filtered("b", "198.18.20.0/24", [rule("100.64.0.0/16", "udp", [[53, 53]])], false),
			open("c", "0.0.0.0/0", ["100.64.0.9/32"]),
		];
		fc.assert(
			fc.property(fc.shuffledSubarray(routes, { minLength: 3, maxLength: 3 }), (shuffled) => {
				expect(render(shuffled)).toBe(render(routes));
			}),
		);
	});

	it("refuses an empty route list: no routes means no table", () => {
		expect(() => renderRoutingTable("wt0", [])).toThrow(/remove the table/);
		expect(renderRoutingTableRemoval()).toBe(
			"table inet starling-routing\ndelete table inet starling-routing\n",
		);
	});
});

describe("checkServedRoute", () => {
	it("rejects a route whose network is not an IPv4 prefix", () => {
		for (const network of ["", "198.18.10.1/24", "fd00::/8", "198.18.10.0/33", "x"]) {
			const checked = checkServedRoute(open("r", network, ["100.64.0.2/32"]));
			expect(checked.route).toBeUndefined();
			expect(checked.rejected?.routeId).toBe("r");
		}
	});

	it("leaves out bad rules and sources, keeping the rest (they can only deny)", () => {
		const checked = checkServedRoute(
			filtered("r", "198.18.20.0/24", [
				rule("100.64.0.2/32", "tcp", [[80, 80]]),
				rule("nope", "tcp"),
				rule("100.64.0.3/32", "gre"),
			]),
		);
		expect(checked.route?.rules).toHaveLength(1);
		expect(checked.dropped).toHaveLength(2);
		const openRoute = checkServedRoute(
			open("o", "198.18.10.0/24", ["100.64.0.2/32", "100.64.0.1/16"]),
		);
		expect(openRoute.route?.rules).toHaveLength(1);
		expect(openRoute.dropped[0]).toMatch(/host bits/);
	});

	it("a host route keeps its /32 in the status", () => {
		expect(checkServedRoute(open("h", "198.18.10.5", [])).route?.network).toBe("198.18.10.5/32");
	});

	// Whatever management sends, the script never contains anything but the
	// lines the renderer writes: a bad field cannot inject nft syntax.
	it("never lets junk from the map into the script (property)", () => {
		const junk = fc.oneof(fc.string(), fc.constantFrom("1.2.3.0/24 } accept; #", '"', "0.0.0.0/0"));
		fc.assert(
			fc.property(
				fc.array(
					fc.record({
						routeId: fc.string(),
						network: junk,
						masquerade: fc.boolean(),
						filtered: fc.boolean(),
						rules: fc.array(
							fc.record({
								source: junk,
								protocol: fc.constantFrom("tcp", "all", "x;"),
								ports: fc.constant([]),
								policyId: fc.string(),
							}),
						),
						sources: fc.array(junk),
					}),
				),
				(routes) => {
					const plan = planServedRoutes({ servedRoutes: routes });
					if (plan.routes.length === 0) return;
					const text = renderRoutingTable("wt0", plan.routes);
					for (const line of text.split("\n")) {
						expect(line).toMatch(
							/^(|table inet starling-routing( \{)?|delete table inet starling-routing|\}|\tchain [a-z-]+ \{|\t\}|\t\t(type .*|iifname "wt0" (jump from-overlay|ip daddr [0-9./]+ masquerade)|oifname "wt0" jump to-overlay|ct state .*|counter drop|ip daddr [0-9./]+ ip saddr \{ [0-9./, ]+ \}( tcp dport \{ [0-9, -]+ \}| ip protocol [a-z]+)? accept))$/,
						);
					}
				},
			),
		);
	});
});

describe("servedRouteStatuses", () => {
	it("shows forwarded and refused routes, with the apply error on the forwarded ones", () => {
		const plan = planServedRoutes({
			servedRoutes: [open("r1", "198.18.10.0/24", ["100.64.0.2/32"]), open("bad", "nope", [])],
		});
		expect(servedRouteStatuses(plan, "nft: boom")).toEqual([
			{
				routeId: "r1",
				network: "198.18.10.0/24",
				masquerade: true,
				filtered: false,
				ruleCount: 1,
				error: "nft: boom",
			},
			{
				routeId: "bad",
				network: "",
				masquerade: false,
				filtered: false,
				ruleCount: 0,
				error: expect.stringMatching(/network/),
			},
		]);
	});
});
