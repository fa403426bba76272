import { describe, expect, it } from "vitest";
import { expectedPath, NETWORK_KINDS } from "./nat-grid.js";

// The grid as the rule's comment states it, row and column in NETWORK_KINDS order
// (public, eim, masq, symmetric, double, udp-blocked).
const GRID = [
	["p2p", "p2p", "p2p", "p2p", "p2p", "relayed"],
	["p2p", "p2p", "either", "relayed", "p2p", "relayed"],
	["p2p", "either", "either", "either", "either", "relayed"],
	["p2p", "relayed", "either", "relayed", "relayed", "relayed"],
	["p2p", "p2p", "either", "relayed", "p2p", "relayed"],
	["relayed", "relayed", "relayed", "relayed", "relayed", "relayed"],
];

describe("expectedPath", () => {
	it("gives every cell of the NAT grid its documented path", () => {
		const actual = NETWORK_KINDS.map((a) => NETWORK_KINDS.map((b) => expectedPath(a, b)));
		expect(actual).toEqual(GRID);
	});
});
