import type { PortRange, Protocol } from "../domain/types.js";
import { cidrContainsIp, ipToInt, parseCidr } from "./ipam.js";
import type { AccessIndex } from "./policy.js";
import { type RouteEntry, sortedHas } from "./route-entries.js";

// Which route and which router would carry an address for a peer, as the
// account is now, and whether a policy lets it through: the question NetBird
// users answer by reading agent logs. Pure: the connected flags are the
// peers' as management last saw them.
//
// The choice mirrors the agent's (apps/agent routing/selection): among the
// routes the peer receives, the longest prefix containing the address wins;
// among that network's routers, the lowest metric among the connected ones.
// The agent breaks ties, and may leave a router it cannot reach over a path
// management knows nothing about, by its own path state (direct before
// relayed, then latency): the answer says so rather than guess.

export interface RouteCheckRouter {
	peerId: string;
	name: string;
	metric: number;
	connected: boolean;
	/** The route (or resource) id through which this router serves the network. */
	routeId: string;
}

export interface RouteCheckAccess {
	allowed: boolean;
	/** The first rule (policy order) letting the peer through a filtered route; null otherwise. */
	rule: {
		policyId: string;
		policyName: string;
		ruleId: string;
		ruleName: string;
		protocol: Protocol;
		ports: PortRange[];
	} | null;
	reason: string;
}

export interface RouteCheckResult {
	/** The matching route; null when no route the peer receives covers the address. */
	route: {
		id: string;
		kind: RouteEntry["kind"];
		networkId: string;
		network: string;
		description: string;
		skipAutoApply: boolean;
	} | null;
	/** The router the peer would use now; null when none is connected (or no route). */
	router: (RouteCheckRouter & { reason: string }) | null;
	/** Every router of the matching network, lowest metric first. */
	candidates: RouteCheckRouter[];
	access: RouteCheckAccess | null;
	reason: string;
}

/**
 * Answers for the peer at `viewer` and the IPv4 `address` (throws IpamError
 * when it is not one: the adapter answers 400).
 */
export function checkRoute(index: AccessIndex, viewer: number, address: string): RouteCheckResult {
	const ip = ipToInt(address);
	const routing = index.routing;
	const self = index.peerAt(viewer);
	let best = -1;
	let matching: number[] = [];
	for (const k of routing.receivedEntries(viewer)) {
		const prefix = parseCidr(routing.entries[k]!.network);
		if (!cidrContainsIp(prefix, ip)) continue;
		if (prefix.prefix > best) {
			best = prefix.prefix;
			matching = [k];
		} else if (prefix.prefix === best) {
			matching.push(k);
		}
	}
	if (matching.length === 0) {
		return {
			route: null,
			router: null,
			candidates: [],
			access: null,
			reason: `no route that ${self.name} receives covers ${address}: the agent sends it outside the overlay`,
		};
	}
	// Routes of the same prefix are one network to the agent (same HA key) or
	// distinct networks; either way it picks among all their routers.
	const candidates: RouteCheckRouter[] = [];
	for (const k of matching) {
		const e = routing.entries[k]!;
		for (const r of e.routers) {
			const p = index.peerAt(r.peer);
			candidates.push({
				peerId: p.id,
				name: p.name,
				metric: r.metric,
				connected: p.connected,
				routeId: e.routeId,
			});
		}
	}
	candidates.sort(
		(a, b) => a.metric - b.metric || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
	);
	const connected = candidates.filter((c) => c.connected);
	const chosen = connected[0];
	const entryOf = (routeId: string) =>
		routing.entries[matching.find((k) => routing.entries[k]!.routeId === routeId)!]!;
	const entry = entryOf(chosen?.routeId ?? candidates[0]!.routeId);
	const route = {
		id: entry.routeId,
		kind: entry.kind,
		networkId: entry.networkId,
		network: entry.network,
		description: entry.description,
		skipAutoApply: entry.skipAutoApply,
	};
	const access = accessThrough(index, viewer, entry);
	let router: RouteCheckResult["router"] = null;
	if (chosen) {
		const ties = connected.filter((c) => c.metric === chosen.metric).length;
		router = {
			...chosen,
			reason:
				ties > 1
					? `lowest metric (${chosen.metric}) among the connected routers, shared by ${ties} of them: the agent picks among those by its path state (direct before relayed, then latency), which only it knows`
					: `lowest metric (${chosen.metric}) among the connected routers; the agent may still move to another if its path to this one fails, which only it can see`,
		};
	}
	const via = `route ${entry.routeId} (${entry.network})`;
	let reason = chosen
		? `${address} goes through ${via} via ${chosen.name}`
		: `${address} matches ${via} but none of its ${candidates.length} router(s) is connected${entry.keepRoute ? "; keep_route holds the kernel route meanwhile" : ""}`;
	if (entry.skipAutoApply) {
		reason += `; it is an exit node offered to ${self.name}, used only once selected on the peer (starling exit-node use)`;
	}
	return { route, router, candidates, access, reason: `${reason}. ${access.reason}` };
}

/** Whether the policies let the peer through the entry's routers. */
function accessThrough(index: AccessIndex, viewer: number, e: RouteEntry): RouteCheckAccess {
	if (e.filter === null) {
		return {
			allowed: true,
			rule: null,
			reason: "The route has no access control groups: it is open to the route's groups.",
		};
	}
	// In policy order, then rule order: the first that admits the peer answers.
	for (const f of e.filter) {
		if (!sortedHas(f.sources, viewer)) continue;
		return {
			allowed: true,
			rule: {
				policyId: f.policy.id,
				policyName: f.policy.name,
				ruleId: f.rule.id,
				ruleName: f.rule.name,
				protocol: f.protocol,
				ports: f.ports,
			},
			reason: `Rule "${f.rule.name}" of policy "${f.policy.name}" lets ${index.peerAt(viewer).name} through (${describeGrant(f.protocol, f.ports)}).`,
		};
	}
	return {
		allowed: false,
		rule: null,
		reason: `No enabled policy whose destinations include the route's access control groups has ${index.peerAt(viewer).name} among its sources: the router drops its traffic.`,
	};
}

function describeGrant(protocol: Protocol, ports: readonly PortRange[]): string {
	if (ports.length === 0) return protocol === "all" ? "every protocol" : `${protocol}, every port`;
	const list = ports.map((p) => (p.start === p.end ? `${p.start}` : `${p.start}-${p.end}`));
	return `${protocol} ${list.join(", ")}`;
}
