// The NAT grid (issue 4): where two agents sit, and which path the facts of NAT traversal
// decide between them. Shared by the e2e NAT grid test and the nat-grid-up benchmark.

/**
 * Where an agent sits: on the simulated internet itself ("public"), or behind a router of one
 * kind ("masq" is masquerade-only; "double" is an endpoint-independent home router behind an
 * endpoint-independent carrier-grade NAT).
 */
export type NetworkKind = "public" | "eim" | "masq" | "symmetric" | "double" | "udp-blocked";

export const NETWORK_KINDS: readonly NetworkKind[] = [
	"public",
	"eim",
	"masq",
	"symmetric",
	"double",
	"udp-blocked",
];

export type ExpectedPath = "p2p" | "relayed" | "either";

/**
 * Expected path per cell where the facts of NAT traversal decide it
 * (docs/networking.md, "NAT traversal with ICE"): P2P whenever one side is publicly reachable or both
 * map endpoint-independently with filtering that lets a punched hole in (eim
 * and double NAT); relayed whenever UDP is blocked, and for symmetric against
 * symmetric or port-restricted NATs. A masquerade-only router lets the peer's
 * first packet claim the mapping, so its cells depend on who sends first:
 * either path, but they must ping.
 */
export function expectedPath(a: NetworkKind, b: NetworkKind): ExpectedPath {
	const pair = new Set([a, b]);
	if (pair.has("udp-blocked")) return "relayed";
	if (pair.has("public")) return "p2p";
	if (a === "symmetric" && b === "symmetric") return "relayed";
	if (pair.has("symmetric") && (pair.has("eim") || pair.has("double"))) return "relayed";
	if ((pair.has("eim") || pair.has("double")) && !pair.has("masq") && !pair.has("symmetric"))
		return "p2p";
	return "either";
}
