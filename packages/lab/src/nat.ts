/**
 * nftables rule sets for lab routers. A router has two interfaces, "wan" and "lan"; all its
 * rules live in one table, replaced atomically (`nft -f -` with add + delete + define in one
 * transaction).
 */

export type NatKind =
	/** Plain router, forwarding only. */
	| "none"
	/** Endpoint-independent mapping: masquerade, and drop unsolicited inbound like a home router. */
	| "eim"
	/** Masquerade without the inbound drop (breaks hole punching: docs/networking.md, "NAT routers in the lab"). */
	| "masquerade-only"
	/** Endpoint-dependent mapping (`masquerade random`) plus the inbound drop. */
	| "symmetric"
	/** "eim", plus all forwarded UDP from lan to wan dropped (only TCP gets out). */
	| "udp-blocked";

export const NAT_KINDS: readonly NatKind[] = [
	"none",
	"eim",
	"masquerade-only",
	"symmetric",
	"udp-blocked",
];

export function isNatKind(value: unknown): value is NatKind {
	return typeof value === "string" && (NAT_KINDS as readonly string[]).includes(value);
}

/** A destination NAT from the router's wan side to a host behind it ("full cone" for that port). */
export interface PortForward {
	protocol: "tcp" | "udp";
	/** Port on the router's wan address. */
	port: number;
	/** Lan-side address and port the traffic goes to. */
	toAddress: string;
	toPort: number;
}

export const NAT_TABLE = "starling_lab";

/** The complete `nft -f` input that replaces the router's rules with those for `kind`. */
export function natRuleset(kind: NatKind, forwards: readonly PortForward[] = []): string {
	const masquerade =
		kind === "none" ? undefined : kind === "symmetric" ? "masquerade random" : "masquerade";
	const dropUnsolicited = kind === "eim" || kind === "symmetric" || kind === "udp-blocked";

	const prerouting = forwards.map(
		(f) => `iifname "wan" ${f.protocol} dport ${f.port} dnat to ${f.toAddress}:${f.toPort}`,
	);
	const postrouting = masquerade ? [`oifname "wan" ${masquerade}`] : [];
	const input = dropUnsolicited ? [`iifname "wan" ct state new drop`] : [];
	const forward: string[] = [];
	if (dropUnsolicited) {
		if (forwards.length > 0) forward.push(`iifname "wan" ct status dnat accept`);
		forward.push(`iifname "wan" ct state new drop`);
	}
	if (kind === "udp-blocked") forward.push(`iifname "lan" oifname "wan" meta l4proto udp drop`);

	const chain = (name: string, hook: string, type: string, priority: string, rules: string[]) =>
		[
			`\tchain ${name} {`,
			`\t\ttype ${type} hook ${hook} priority ${priority}; policy accept;`,
			...rules.map((r) => `\t\t${r}`),
			"\t}",
		].join("\n");

	const chains: string[] = [];
	// Without any NAT rule conntrack is not enabled, so "none" stays stateless.
	if (prerouting.length > 0)
		chains.push(chain("prerouting", "prerouting", "nat", "dstnat", prerouting));
	if (postrouting.length > 0)
		chains.push(chain("postrouting", "postrouting", "nat", "srcnat", postrouting));
	chains.push(chain("input", "input", "filter", "filter", input));
	chains.push(chain("forward", "forward", "filter", "filter", forward));

	return [
		`table ip ${NAT_TABLE}`,
		`delete table ip ${NAT_TABLE}`,
		`table ip ${NAT_TABLE} {`,
		chains.join("\n"),
		"}",
		"",
	].join("\n");
}
