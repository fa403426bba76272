/**
 * What a routing peer lets through: the nftables table `inet starling-routing`,
 * the agent's own, present only while this peer serves at least one route.
 * It touches nothing else on the machine:
 *
 *   chain forward (hook forward, priority filter, policy accept):
 *     iifname "<overlay>" jump from-overlay
 *     oifname "<overlay>" jump to-overlay
 *   chain from-overlay:                      overlay -> served networks
 *     ct state invalid drop
 *     ct state related accept                 ICMP errors of allowed flows
 *     ip daddr <net> ip saddr { sources } accept                     open route
 *     ip daddr <net> ip saddr { s } tcp dport { 80 } accept          filtered route, per rule group
 *     counter drop                            the rest of what the overlay sends through here
 *   chain to-overlay:                        back into the overlay
 *     ct state established,related accept     replies to what the overlay opened
 *     counter drop                            the LAN can't open connections into the overlay
 *   chain postrouting (hook postrouting, priority srcnat, policy accept):
 *     iifname "<overlay>" ip daddr <net> masquerade                  per route with masquerade
 *
 * Packets from the overlay are judged on every packet, not only the first
 * (as in the inbound firewall): when the route or the rule that allowed a
 * connection goes, the connection stops too.
 *
 * Our forward chain accepting a packet does not make the kernel forward it:
 * every base chain on the forward hook must accept it, so another table's
 * forward chain with policy drop (docker's `filter FORWARD`, a distribution
 * firewall) still drops routed traffic. The operator allows it there
 * (documented in the agent's README); the agent does not edit other tables.
 *
 * Overlapping served networks: the accept lines are a union (a packet allowed
 * by any route passes) and a network with masquerade masquerades the parts of
 * it another route serves without.
 *
 * The table is written whole, in one `nft -f` transaction, on every change.
 */

import type { FirewallRule, ServedRoute } from "@starling/proto";
import {
	type CanonicalRule,
	checkInterfaceName,
	checkTableName,
	formatPrefix,
	matchText,
	portsText,
	reducePrefixes,
	validateFirewallRule,
} from "../netfilter/firewall.js";
import type { Runner } from "../system/exec.js";

export const DEFAULT_ROUTING_TABLE = "starling-routing";

/** A served route, checked and in canonical form. */
export interface CanonicalServedRoute {
	routeId: string;
	/** The network, e.g. "198.18.10.0/24" (host bits zero). */
	network: string;
	masquerade: boolean;
	filtered: boolean;
	/** filtered: the rules (source, protocol, ports); open: one "all" rule per source. */
	rules: CanonicalRule[];
}

/** A route left out, and why. */
export interface RejectedServedRoute {
	routeId: string;
	reason: string;
}

function prefixOf(text: string): { address: number; prefix: number } {
	// validateFirewallRule's source check is exactly "IPv4 address or prefix, host bits zero".
	const rule = validateFirewallRule({ source: text, protocol: "all", ports: [], policyId: "" });
	return { address: rule.address, prefix: rule.prefix };
}

/**
 * Checks one served route. A network that is not an IPv4 prefix (or has
 * host bits set) rejects the whole route; a bad rule or source is left out
 * (reported in `dropped`), so it can only deny, never allow.
 */
export function checkServedRoute(route: ServedRoute): {
	route?: CanonicalServedRoute;
	rejected?: RejectedServedRoute;
	dropped: string[];
} {
	const routeId = typeof route.routeId === "string" ? route.routeId : "";
	let network: { address: number; prefix: number };
	try {
		if (typeof route.network !== "string" || route.network === "") throw new Error("no network");
		network = prefixOf(route.network);
	} catch (err) {
		return {
			rejected: { routeId, reason: `network: ${(err as Error).message.replace(/^source /, "")}` },
			dropped: [],
		};
	}
	const dropped: string[] = [];
	const rules: CanonicalRule[] = [];
	if (route.filtered) {
		for (const rule of route.rules ?? []) {
			try {
				rules.push(validateFirewallRule(rule));
			} catch (err) {
				dropped.push((err as Error).message);
			}
		}
	} else {
		for (const source of route.sources ?? []) {
			try {
				rules.push(
					validateFirewallRule({
						source,
						protocol: "all",
						ports: [],
						policyId: "",
					} as FirewallRule),
				);
			} catch (err) {
				dropped.push((err as Error).message);
			}
		}
	}
	return {
		route: {
			routeId,
			network: formatNetwork(network),
			masquerade: route.masquerade === true,
			filtered: route.filtered === true,
			rules,
		},
		dropped,
	};
}

function formatNetwork(p: { address: number; prefix: number }): string {
	// Always with the length: "10.0.0.5/32", so the status shows what the map said.
	const text = formatPrefix(p.address, p.prefix);
	return text.includes("/") ? text : `${text}/32`;
}

/** The accept lines of one route: its rules grouped by protocol+ports, sources reduced. */
function acceptLines(route: CanonicalServedRoute): string[] {
	const groups = new Map<
		string,
		{ protocol: CanonicalRule["protocol"]; ports: CanonicalRule["ports"]; sources: CanonicalRule[] }
	>();
	for (const rule of route.rules) {
		const key = `${rule.protocol}|${portsText(rule.ports)}`;
		const group = groups.get(key) ?? { protocol: rule.protocol, ports: rule.ports, sources: [] };
		group.sources.push(rule);
		groups.set(key, group);
	}
	return [...groups.entries()]
		.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
		.map(([, g]) => {
			const sources = reducePrefixes(g.sources).map((s) => formatPrefix(s.address, s.prefix));
			return `\t\tip daddr ${route.network} ip saddr { ${sources.join(", ")} }${matchText(g.protocol, g.ports)} accept`;
		});
}

/** Routes in a stable order, so the same routes in any order render the same text. */
function sortRoutes(routes: readonly CanonicalServedRoute[]): CanonicalServedRoute[] {
	return [...routes].sort((a, b) =>
		a.network !== b.network
			? a.network < b.network
				? -1
				: 1
			: a.routeId < b.routeId
				? -1
				: a.routeId > b.routeId
					? 1
					: 0,
	);
}

/**
 * The `nft -f` script that replaces our table with one for `routes` (which
 * must not be empty: no route means no table, see renderRoutingTableRemoval).
 * The first `table` line creates the table if missing so `delete` can't fail.
 */
export function renderRoutingTable(
	interfaceName: string,
	routes: readonly CanonicalServedRoute[],
	tableName: string = DEFAULT_ROUTING_TABLE,
): string {
	checkInterfaceName(interfaceName);
	checkTableName(tableName);
	if (routes.length === 0) throw new Error("no served routes: remove the table instead");
	const sorted = sortRoutes(routes);
	const accepts = sorted.flatMap(acceptLines);
	const masquerades = [...new Set(sorted.filter((r) => r.masquerade).map((r) => r.network))].map(
		(network) => `\t\tiifname "${interfaceName}" ip daddr ${network} masquerade`,
	);
	return [
		`table inet ${tableName}`,
		`delete table inet ${tableName}`,
		`table inet ${tableName} {`,
		"\tchain forward {",
		"\t\ttype filter hook forward priority filter; policy accept;",
		`\t\tiifname "${interfaceName}" jump from-overlay`,
		`\t\toifname "${interfaceName}" jump to-overlay`,
		"\t}",
		"\tchain from-overlay {",
		"\t\tct state invalid drop",
		"\t\tct state related accept",
		...accepts,
		"\t\tcounter drop",
		"\t}",
		"\tchain to-overlay {",
		"\t\tct state established,related accept",
		"\t\tcounter drop",
		"\t}",
		"\tchain postrouting {",
		"\t\ttype nat hook postrouting priority srcnat; policy accept;",
		...masquerades,
		"\t}",
		"}",
		"",
	].join("\n");
}

/** An `nft -f` script that removes our table if it exists (and succeeds if it doesn't). */
export function renderRoutingTableRemoval(tableName: string = DEFAULT_ROUTING_TABLE): string {
	checkTableName(tableName);
	return `table inet ${tableName}\ndelete table inet ${tableName}\n`;
}

/**
 * Writes the routing table to the kernel: the whole table per change, in one
 * transaction (a failed apply leaves the previous table); no routes removes it.
 */
export class RoutingTable {
	readonly tableName: string;
	/** The script last written, undefined while no table of ours is installed. */
	private installed: string | undefined;
	private queue: Promise<void> = Promise.resolve();

	constructor(
		private readonly runner: Runner,
		private readonly interfaceName: string,
		tableName: string = DEFAULT_ROUTING_TABLE,
	) {
		checkInterfaceName(interfaceName);
		checkTableName(tableName);
		this.tableName = tableName;
	}

	/** Whether our table is installed (as far as this object knows). */
	get active(): boolean {
		return this.installed !== undefined;
	}

	apply(routes: readonly CanonicalServedRoute[]): Promise<void> {
		if (routes.length === 0) return this.remove();
		const script = renderRoutingTable(this.interfaceName, routes, this.tableName);
		return this.enqueue(async () => {
			if (script === this.installed) return;
			await this.runner("nft", ["-f", "-"], { input: script });
			this.installed = script;
		});
	}

	/** Deletes our table (only it); succeeds when it is already gone. */
	remove(): Promise<void> {
		const script = renderRoutingTableRemoval(this.tableName);
		return this.enqueue(async () => {
			this.installed = undefined;
			await this.runner("nft", ["-f", "-"], { input: script });
		});
	}

	private enqueue(task: () => Promise<void>): Promise<void> {
		const next = this.queue.then(task, task);
		this.queue = next.catch(() => undefined);
		return next;
	}
}
