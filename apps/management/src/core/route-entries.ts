import type {
	Peer,
	Policy,
	PolicyRule,
	PortRange,
	Protocol,
	RoutingConfig,
} from "../domain/types.js";
import { canonicalPorts } from "./ports.js";

// The account's routing config compiled against its peers and groups, pure:
// one RouteEntry per enabled route and per Networks resource that an access
// policy reaches. Both REST views (/api/routes and /api/networks) become the
// same entry shape, so everything downstream (maps, served routes, the route
// check) has one model.

/** What the compiler needs from an index of the account's peers and groups. */
export interface RoutingPeers {
	readonly size: number;
	peerAt(i: number): Peer;
	indexOfId(peerId: string): number | undefined;
	/** Members of a group (All: every peer), ascending indices; empty for an unknown group. */
	membersOf(groupId: string): Int32Array;
}

export interface RouteRouter {
	/** Index of the routing peer. */
	peer: number;
	metric: number;
	masquerade: boolean;
}

/** A policy rule that lets its sources through a filtered route. */
export interface RouteFilterRule {
	policy: Policy;
	rule: PolicyRule;
	/** Members of the rule's sources, ascending. */
	sources: Int32Array;
	protocol: Protocol;
	ports: PortRange[];
}

export interface RouteEntry {
	kind: "route" | "resource";
	/** The route's id, or the network resource's id. */
	routeId: string;
	/** The HA key: the route's network_id, or the Network's id. */
	networkId: string;
	/** Canonical IPv4 CIDR. */
	network: string;
	description: string;
	keepRoute: boolean;
	skipAutoApply: boolean;
	/** Access control groups of a route; the resource's groups for a resource. */
	accessControlGroups: readonly string[];
	/** Peers the route is offered to (the route's groups, or the sources of the policies reaching the resource), ascending. */
	audience: Int32Array;
	/** Enabled routers, ascending by peer, one per peer. */
	routers: RouteRouter[];
	/** The rules filtering forwarded traffic; null: open to the receivers. */
	filter: RouteFilterRule[] | null;
}

/** Compiles the routing config of an account (its enabled parts) into entries. */
export function compileRouteEntries(
	peers: RoutingPeers,
	routing: RoutingConfig | undefined,
	policies: readonly Policy[],
	accountId: string,
): RouteEntry[] {
	if (!routing) return [];
	const entries: RouteEntry[] = [];
	const activeRules: { policy: Policy; rule: PolicyRule }[] = [];
	for (const policy of policies) {
		if (!policy.enabled || policy.accountId !== accountId) continue;
		for (const rule of policy.rules) {
			if (rule.enabled && rule.action === "accept") activeRules.push({ policy, rule });
		}
	}
	const filterOf = (destinations: readonly string[]): RouteFilterRule[] =>
		activeRules
			.filter(({ rule }) => rule.destinations.some((g) => destinations.includes(g)))
			.map(({ policy, rule }) => ({
				policy,
				rule,
				sources: unionOf(peers, rule.sources),
				protocol: rule.protocol,
				ports: canonicalPorts(rule.protocol, rule.ports, rule.portRanges),
			}));

	for (const route of routing.routes) {
		if (!route.enabled || route.accountId !== accountId) continue;
		const routers = routersOf(
			peers,
			route.peerId,
			route.peerGroups,
			route.metric,
			route.masquerade,
		);
		entries.push({
			kind: "route",
			routeId: route.id,
			networkId: route.networkId,
			network: route.network,
			description: route.description,
			keepRoute: route.keepRoute,
			skipAutoApply: route.skipAutoApply,
			accessControlGroups: route.accessControlGroups,
			audience: unionOf(peers, route.groups),
			routers,
			filter: route.accessControlGroups.length > 0 ? filterOf(route.accessControlGroups) : null,
		});
	}

	const networks = new Set(
		routing.networks.filter((n) => n.accountId === accountId).map((n) => n.id),
	);
	const routersByNetwork = new Map<string, RouteRouter[]>();
	for (const router of routing.networkRouters) {
		if (!router.enabled || router.accountId !== accountId) continue;
		const list = routersByNetwork.get(router.networkId) ?? [];
		list.push(
			...routersOf(peers, router.peerId, router.peerGroups, router.metric, router.masquerade),
		);
		routersByNetwork.set(router.networkId, list);
	}
	for (const resource of routing.networkResources) {
		if (!resource.enabled || resource.accountId !== accountId) continue;
		if (!networks.has(resource.networkId)) continue;
		const filter = filterOf(resource.groups);
		// A resource reaches nobody until a policy names it as a destination.
		if (filter.length === 0) continue;
		entries.push({
			kind: "resource",
			routeId: resource.id,
			networkId: resource.networkId,
			network: resource.prefix,
			description: resource.description || resource.name,
			keepRoute: false,
			skipAutoApply: false,
			accessControlGroups: resource.groups,
			audience: unionSorted(filter.map((f) => f.sources)),
			routers: oneRouterPerPeer(routersByNetwork.get(resource.networkId) ?? []),
			filter,
		});
	}
	return entries;
}

/** The routing peers named by a route or network router: one peer, or every peer of groups. */
function routersOf(
	peers: RoutingPeers,
	peerId: string | null,
	peerGroups: readonly string[],
	metric: number,
	masquerade: boolean,
): RouteRouter[] {
	const indices: Int32Array =
		peerId !== null
			? (() => {
					const i = peers.indexOfId(peerId);
					return i === undefined ? new Int32Array(0) : Int32Array.of(i);
				})()
			: unionOf(peers, peerGroups);
	return Array.from(indices, (peer) => ({ peer, metric, masquerade }));
}

/** Routers ascending by peer; a peer named by several routers keeps the lowest metric. */
function oneRouterPerPeer(routers: RouteRouter[]): RouteRouter[] {
	const best = new Map<number, RouteRouter>();
	for (const r of routers) {
		const held = best.get(r.peer);
		if (!held || r.metric < held.metric) best.set(r.peer, r);
	}
	return [...best.values()].sort((a, b) => a.peer - b.peer);
}

function unionOf(peers: RoutingPeers, groupIds: readonly string[]): Int32Array {
	return unionSorted(groupIds.map((g) => peers.membersOf(g)));
}

/** Union of ascending index lists, ascending, without duplicates. */
export function unionSorted(lists: readonly Int32Array[]): Int32Array {
	if (lists.length === 0) return new Int32Array(0);
	if (lists.length === 1) return lists[0]!;
	const seen = new Set<number>();
	for (const l of lists) for (const i of l) seen.add(i);
	return Int32Array.from(seen).sort();
}

/** Whether ascending `sorted` holds `value`. */
export function sortedHas(sorted: Int32Array, value: number): boolean {
	let lo = 0;
	let hi = sorted.length;
	while (lo < hi) {
		const mid = (lo + hi) >>> 1;
		if (sorted[mid]! < value) lo = mid + 1;
		else hi = mid;
	}
	return lo < sorted.length && sorted[lo] === value;
}
