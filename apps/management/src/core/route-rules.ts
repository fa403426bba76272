import type { NetworkResource, NetworkRouter, Route } from "../domain/types.js";
import { type Cidr, cidrContains, formatCidr, IpamError, ipToInt } from "./ipam.js";

// Rules of routes (NetBird's /api/routes) and of Networks (resources and
// routers), without I/O. The use cases in app/routes.ts and app/networks.ts
// apply them inside one write transaction, with the account's current rows.
// Every refusal is a RouteRuleError whose message the REST answer carries.

export class RouteRuleError extends Error {
	override name = "RouteRuleError";
	/** "conflict": the input is well-formed but clashes with the account's other routes or overlay. */
	constructor(
		message: string,
		readonly kind: "invalid" | "conflict" = "invalid",
	) {
		super(message);
	}
}

export const MAX_NETWORK_ID_LENGTH = 40;
export const MIN_METRIC = 1;
export const MAX_METRIC = 9999;
export const EXIT_NETWORK = "0.0.0.0/0";

const maskOf = (prefix: number) => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);

/**
 * An IPv4 CIDR in canonical form. Host bits are cleared, as NetBird does
 * (it masks the prefix it parsed), so a configuration moved from NetBird
 * keeps working: "192.168.1.7/24" is the network "192.168.1.0/24".
 * IPv6 and anything malformed are refused with a message saying which.
 */
export function canonicalIpv4Cidr(text: string): string {
	return formatCidr(parseIpv4Cidr(text));
}

function parseIpv4Cidr(text: string): Cidr {
	const trimmed = text.trim();
	if (trimmed.includes(":")) {
		throw new RouteRuleError(
			`${JSON.stringify(text)}: IPv6 networks are not supported (IPv4 only)`,
		);
	}
	const [ip, prefixText, extra] = trimmed.split("/");
	if (ip === undefined || prefixText === undefined || extra !== undefined) {
		throw new RouteRuleError(
			`${JSON.stringify(text)} is not an IPv4 CIDR (address/prefix, e.g. 10.0.0.0/24)`,
		);
	}
	if (!/^\d{1,2}$/.test(prefixText) || Number(prefixText) > 32) {
		throw new RouteRuleError(`${JSON.stringify(text)}: the prefix length must be 0-32`);
	}
	const prefix = Number(prefixText);
	return { base: (addressOf(ip, text) & maskOf(prefix)) >>> 0, prefix };
}

function addressOf(ip: string, text: string): number {
	try {
		return ipToInt(ip);
	} catch (err) {
		if (err instanceof IpamError) {
			throw new RouteRuleError(`${JSON.stringify(text)} is not an IPv4 address or CIDR`);
		}
		throw err;
	}
}

/** Whether two canonical CIDRs share an address. */
export function cidrsOverlap(a: string, b: string): boolean {
	const x = parseIpv4Cidr(a);
	const y = parseIpv4Cidr(b);
	return cidrContains(x, y) || cidrContains(y, x);
}

/**
 * A Networks resource address: an IPv4 host ("10.0.0.5" or "10.0.0.5/32",
 * type host) or an IPv4 subnet (type subnet). Domain resources wait for the
 * DNS work; they are refused, not stored.
 */
export function resourceAddress(address: string): { type: "host" | "subnet"; prefix: string } {
	const trimmed = address.trim();
	if (trimmed.includes(":")) {
		throw new RouteRuleError(
			`${JSON.stringify(address)}: IPv6 resources are not supported (IPv4 only)`,
		);
	}
	if (/[a-zA-Z*]/.test(trimmed)) {
		throw new RouteRuleError(
			`${JSON.stringify(address)}: domain resources are not supported yet; give an IPv4 address or subnet`,
		);
	}
	const cidr = parseIpv4Cidr(trimmed.includes("/") ? trimmed : `${trimmed}/32`);
	return { type: cidr.prefix === 32 ? "host" : "subnet", prefix: formatCidr(cidr) };
}

export function checkMetric(metric: number): void {
	if (!Number.isInteger(metric) || metric < MIN_METRIC || metric > MAX_METRIC) {
		throw new RouteRuleError(`metric must be an integer from ${MIN_METRIC} to ${MAX_METRIC}`);
	}
}

export function checkNetworkId(networkId: string): void {
	if (networkId.length === 0 || networkId.length > MAX_NETWORK_ID_LENGTH) {
		throw new RouteRuleError(`network_id must be 1 to ${MAX_NETWORK_ID_LENGTH} characters`);
	}
}

/** A route or router is served by one peer or by the peers of groups: exactly one of the two. */
export function checkRoutingPeers(peerId: string | null, peerGroups: readonly string[]): void {
	if (peerId !== null && peerGroups.length > 0) {
		throw new RouteRuleError("give either peer or peer_groups, not both");
	}
	if (peerId === null && peerGroups.length === 0) {
		throw new RouteRuleError("give a routing peer: peer or peer_groups");
	}
}

/** The routed network must not overlap the account's own overlay range (an exit node's 0.0.0.0/0 may). */
export function checkOutsideOverlay(network: string, overlay: string, what = "network"): void {
	if (network !== EXIT_NETWORK && cidrsOverlap(network, overlay)) {
		throw new RouteRuleError(
			`${what} ${network} overlaps the account's overlay range ${overlay}`,
			"conflict",
		);
	}
}

/**
 * A route against the account's other routes (`others` excludes the route
 * itself on update):
 * - routes sharing a network_id are one network with several routers, so
 *   they must route the same network, and one peer routes it once;
 * - routes of different network_ids must not overlap, since a client could
 *   not tell which router an address belongs to. Exit nodes (0.0.0.0/0) are
 *   the exception, as in NetBird: several may exist (each its own
 *   network_id, the client picks one), and they overlap everything.
 * NetBird itself only refuses the same prefix twice on one routing peer;
 * this is stricter on purpose (the issue asks for overlapping CIDRs to be
 * refused).
 */
export function checkRouteAgainstOthers(route: Route, others: readonly Route[]): void {
	for (const o of others) {
		if (o.networkId === route.networkId) {
			if (o.network !== route.network) {
				throw new RouteRuleError(
					`network_id "${route.networkId}" already routes ${o.network}; routes of one network_id must route the same network`,
					"conflict",
				);
			}
			if (route.peerId !== null && o.peerId === route.peerId) {
				throw new RouteRuleError(
					`peer ${route.peerId} already routes network_id "${route.networkId}" (route ${o.id})`,
					"conflict",
				);
			}
		} else if (
			route.network !== EXIT_NETWORK &&
			o.network !== EXIT_NETWORK &&
			cidrsOverlap(route.network, o.network)
		) {
			throw new RouteRuleError(
				`network ${route.network} overlaps ${o.network} of network_id "${o.networkId}" (route ${o.id}); use the same network_id for several routers of one network`,
				"conflict",
			);
		}
	}
}

/** A route reaches the peers of its `groups`; without any it would reach nobody (NetBird refuses it too). */
export function checkReceivers(groups: readonly string[]): void {
	if (groups.length === 0) {
		throw new RouteRuleError(
			"groups must name at least one group (the peers that receive the route)",
		);
	}
}

/** skip_auto_apply only means something for an exit node; set on another route it is refused. */
export function checkSkipAutoApply(network: string, skipAutoApply: boolean): void {
	if (skipAutoApply && network !== EXIT_NETWORK) {
		throw new RouteRuleError(
			`skip_auto_apply applies to exit nodes (network ${EXIT_NETWORK}) only, not to ${network}`,
		);
	}
}

/** Group ids a route names: routing peer groups, receivers, access control groups. */
export function groupsOfRoute(r: Route): string[] {
	return [...r.peerGroups, ...r.groups, ...r.accessControlGroups];
}

export function groupsOfRouter(r: NetworkRouter): string[] {
	return [...r.peerGroups];
}

export function groupsOfResource(r: NetworkResource): string[] {
	return [...r.groups];
}

/**
 * What deleting a peer does to routing, as NetBird does it: a route the peer
 * served alone is disabled and left without a routing peer (the admin picks
 * another, or deletes it), and the network routers that were that peer are
 * removed. Routes and routers naming groups are unchanged.
 */
export function routingAfterPeerDeleted(
	peerId: string,
	routes: readonly Route[],
	routers: readonly NetworkRouter[],
): { disabledRoutes: Route[]; removedRouters: NetworkRouter[] } {
	return {
		disabledRoutes: routes
			.filter((r) => r.peerId === peerId)
			.map((r) => ({ ...r, peerId: null, enabled: false })),
		removedRouters: routers.filter((r) => r.peerId === peerId),
	};
}
