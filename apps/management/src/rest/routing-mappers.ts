import type {
	Network,
	NetworkResource,
	NetworkRouter,
	Policy,
	Route,
	RoutingConfig,
} from "../domain/types.js";
import { type GroupsById, groupMinimum } from "./mappers.js";
import type { NetworkJson, ResourceJson, RouteJson, RouterJson } from "./routing-schemas.js";

// Routes and networks to NetBird's JSON. A routing peer is `peer` or
// `peer_groups`, never both: the other field is left out.

function routingPeerJson(peerId: string | null, peerGroups: readonly string[]) {
	return peerId !== null ? { peer: peerId } : { peer_groups: [...peerGroups] };
}

export function routeJson(r: Route): RouteJson {
	return {
		id: r.id,
		network_type: "IPv4",
		description: r.description,
		network_id: r.networkId,
		enabled: r.enabled,
		...routingPeerJson(r.peerId, r.peerGroups),
		network: r.network,
		metric: r.metric,
		masquerade: r.masquerade,
		groups: [...r.groups],
		keep_route: r.keepRoute,
		access_control_groups: [...r.accessControlGroups],
		skip_auto_apply: r.skipAutoApply,
	};
}

export function resourceJson(r: NetworkResource, groups: GroupsById): ResourceJson {
	return {
		id: r.id,
		type: r.type,
		name: r.name,
		description: r.description,
		address: r.address,
		enabled: r.enabled,
		groups: r.groups.map((id) => groupMinimum(id, groups)),
	};
}

export function routerJson(r: NetworkRouter): RouterJson {
	return {
		id: r.id,
		...routingPeerJson(r.peerId, r.peerGroups),
		metric: r.metric,
		masquerade: r.masquerade,
		enabled: r.enabled,
	};
}

/**
 * A network with the ids of its routers and resources, the policies that
 * reach one of its resources (a resource group among their destinations),
 * and how many distinct peers route for it.
 */
export function networkJson(
	n: Network,
	routing: Pick<RoutingConfig, "networkResources" | "networkRouters">,
	policies: readonly Policy[],
	groups: GroupsById,
): NetworkJson {
	const resources = routing.networkResources.filter((r) => r.networkId === n.id);
	const routers = routing.networkRouters.filter((r) => r.networkId === n.id);
	const resourceGroups = new Set(resources.flatMap((r) => r.groups));
	const reaching = policies.filter((p) =>
		p.rules.some((rule) => rule.destinations.some((g) => resourceGroups.has(g))),
	);
	const routingPeers = new Set<string>();
	for (const r of routers) {
		if (r.peerId !== null) routingPeers.add(r.peerId);
		for (const g of r.peerGroups) for (const p of groups.get(g)?.peerIds ?? []) routingPeers.add(p);
	}
	return {
		id: n.id,
		name: n.name,
		description: n.description,
		routers: routers.map((r) => r.id),
		resources: resources.map((r) => r.id),
		policies: reaching.map((p) => p.id),
		routing_peers_count: routingPeers.size,
	};
}
