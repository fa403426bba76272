/**
 * Which router carries each network this peer receives (the map's `routes`),
 * sans-IO: the routes, each router's health as the engine sees it now, the
 * time, and what the last call chose go in; the choice, the allowed IPs each
 * router peer gets and the kernel routes wanted come out. No timers here: the
 * caller calls again (on every path change, and on a short tick so that a
 * hold time can run out).
 *
 * The rule, per network (same network_id and network, one HA group):
 * - candidates are the reachable routers; the best is the lowest metric, then
 *   a direct path over a relayed one, then the lower latency;
 * - the chosen router is kept while it is reachable, unless a better one by
 *   metric or by direct-over-relayed (never by latency alone, which jitters)
 *   has been reachable without a break for `holdMs`: that is "moves back
 *   once, without flapping";
 * - when the chosen router is unreachable the best reachable one takes over
 *   at once, whatever its hold (failover must not wait);
 * - no router reachable: the network is dropped, unless keep_route, which
 *   keeps it on the last chosen router.
 * Exit nodes (0.0.0.0/0): one at most. `skip_auto_apply` ones only when the
 * user selected them (`ExitNodeChoice`); "off" uses none.
 * A network the machine is directly attached to is neither routed nor added
 * to allowed IPs (it would loop).
 */

/** One entry of the map's `routes` (proto ClientRoute), the fields selection reads. */
export interface RouteEntry {
	id: string;
	networkId: string;
	/** Canonical IPv4 CIDR. */
	network: string;
	routerKey: string;
	metric: number;
	keepRoute: boolean;
	skipAutoApply: boolean;
	description: string;
}

/** A router peer as the engine sees it now (path-health, path-probe, the relay). */
export interface RouterHealth {
	/** Traffic to it can get through now: a live direct path, or a relayed one not known dead. */
	reachable: boolean;
	/** On a direct (p2p) path. */
	direct: boolean;
	/** Round trip of the last probe or ICE check, if known. */
	latencyMs?: number | undefined;
	/** The peer's name in the map (for reasons and `exit-node use NAME`). */
	name?: string | undefined;
}

/** The user's exit node choice (`starling exit-node use NAME|off`), remembered across restarts. */
export type ExitNodeChoice = { mode: "auto" } | { mode: "off" } | { mode: "use"; name: string };

export const EXIT_NETWORK = "0.0.0.0/0";
/** How long a better router must stay reachable before traffic moves back to it. */
export const DEFAULT_HOLD_MS = 3_000;

/** What one call remembers for the next. */
export interface SelectionMemory {
	/** HA group key -> chosen router key. */
	chosen: ReadonlyMap<string, string>;
	/** Router key -> since when it has been reachable without a break (ms). */
	reachableSince: ReadonlyMap<string, number>;
}

export const EMPTY_MEMORY: SelectionMemory = { chosen: new Map(), reachableSince: new Map() };

export interface SelectionInput {
	routes: readonly RouteEntry[];
	health(routerKey: string): RouterHealth | undefined;
	now: number;
	memory: SelectionMemory;
	exitNode: ExitNodeChoice;
	/** Prefixes of the machine's own (non-overlay) interfaces, canonical CIDRs. */
	localNetworks: readonly string[];
	holdMs?: number;
}

/** One network and what became of it, for `starling routes` and status. */
export interface NetworkChoice {
	key: string;
	networkId: string;
	network: string;
	/** The router in use; undefined when the network is not routed. */
	routerKey: string | undefined;
	routerName: string;
	metric: number;
	/** Every router of the network, best first, with its state. */
	routers: { key: string; name: string; metric: number; reachable: boolean; direct: boolean }[];
	description: string;
	exitNode: boolean;
	/** Why this router (or why none), one line. */
	reason: string;
}

export interface SelectionOutput {
	memory: SelectionMemory;
	networks: NetworkChoice[];
	/** Router key -> the networks it carries for us (its extra WireGuard allowed IPs), sorted. */
	allowedIps: Map<string, string[]>;
	/** Prefixes to route into the overlay interface, sorted. */
	kernelRoutes: string[];
	/** Changes since the memory given: (group key, from router, to router). */
	moves: { key: string; from: string | undefined; to: string | undefined }[];
}

export function groupKey(route: Pick<RouteEntry, "networkId" | "network">): string {
	return `${route.networkId}|${route.network}`;
}

interface Candidate {
	route: RouteEntry;
	health: RouterHealth;
}

/** Negative when a is better than b: metric, then direct over relayed, then latency. */
function compare(a: Candidate, b: Candidate): number {
	if (a.route.metric !== b.route.metric) return a.route.metric - b.route.metric;
	if (a.health.direct !== b.health.direct) return a.health.direct ? -1 : 1;
	const la = a.health.latencyMs ?? Number.POSITIVE_INFINITY;
	const lb = b.health.latencyMs ?? Number.POSITIVE_INFINITY;
	if (la !== lb) return la < lb ? -1 : 1;
	// Deterministic: the same input gives the same choice on every call.
	return a.route.routerKey < b.route.routerKey ? -1 : a.route.routerKey > b.route.routerKey ? 1 : 0;
}

/** a is worth moving to from b: a lower metric, or a direct path at equal metric (never latency). */
function worthMoving(a: Candidate, b: Candidate): boolean {
	if (a.route.metric !== b.route.metric) return a.route.metric < b.route.metric;
	return a.health.direct && !b.health.direct;
}

function describe(c: Candidate): string {
	return `metric ${c.route.metric}, ${c.health.direct ? "direct" : "relayed"}${
		c.health.latencyMs !== undefined ? `, ${Math.round(c.health.latencyMs * 10) / 10} ms` : ""
	}`;
}

function ipv4ToInt(text: string): number | undefined {
	const parts = text.split(".");
	if (parts.length !== 4) return undefined;
	let value = 0;
	for (const part of parts) {
		if (!/^\d{1,3}$/.test(part)) return undefined;
		const n = Number(part);
		if (n > 255) return undefined;
		value = value * 256 + n;
	}
	return value;
}

/** Start and size of an IPv4 CIDR, or undefined for anything else. */
export function ipv4Range(cidr: string): { start: number; size: number } | undefined {
	const [address, lengthText] = cidr.split("/");
	if (address === undefined || lengthText === undefined || !/^\d{1,2}$/.test(lengthText))
		return undefined;
	const length = Number(lengthText);
	const value = ipv4ToInt(address);
	if (value === undefined || length > 32) return undefined;
	const size = 2 ** (32 - length);
	return { start: Math.floor(value / size) * size, size };
}

/** Whether two IPv4 CIDRs share an address. */
export function overlaps(a: string, b: string): boolean {
	const ra = ipv4Range(a);
	const rb = ipv4Range(b);
	if (!ra || !rb) return false;
	return ra.start < rb.start + rb.size && rb.start < ra.start + ra.size;
}

/** The local network a route would loop through, if any (never for the exit route). */
function attachedNetwork(network: string, local: readonly string[]): string | undefined {
	if (network === EXIT_NETWORK) return undefined;
	return local.find((prefix) => overlaps(prefix, network));
}

export function selectRoutes(input: SelectionInput): SelectionOutput {
	const holdMs = input.holdMs ?? DEFAULT_HOLD_MS;
	const { now } = input;

	// Reachable-since, for every router named by a route.
	const reachableSince = new Map<string, number>();
	const healthOf = new Map<string, RouterHealth>();
	for (const route of input.routes) {
		if (healthOf.has(route.routerKey)) continue;
		const health = input.health(route.routerKey) ?? { reachable: false, direct: false };
		healthOf.set(route.routerKey, health);
		if (health.reachable) {
			reachableSince.set(route.routerKey, input.memory.reachableSince.get(route.routerKey) ?? now);
		}
	}

	const groups = new Map<string, RouteEntry[]>();
	for (const route of input.routes) {
		const key = groupKey(route);
		const list = groups.get(key);
		if (list) list.push(route);
		else groups.set(key, [route]);
	}

	const chosen = new Map<string, string>();
	const networks: NetworkChoice[] = [];
	const moves: SelectionOutput["moves"] = [];
	for (const [key, routes] of [...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
		const first = routes[0]!;
		const candidates = routes
			.map((route) => ({ route, health: healthOf.get(route.routerKey)! }))
			.sort(compare);
		const reachable = candidates.filter((c) => c.health.reachable);
		const previousKey = input.memory.chosen.get(key);
		const previous = candidates.find((c) => c.route.routerKey === previousKey);
		const nameOf = (c: Candidate) => c.health.name || c.route.routerKey.slice(0, 8);
		const exitNode = first.network === EXIT_NETWORK;
		const choice: NetworkChoice = {
			key,
			networkId: first.networkId,
			network: first.network,
			routerKey: undefined,
			routerName: "",
			metric: 0,
			routers: candidates.map((c) => ({
				key: c.route.routerKey,
				name: nameOf(c),
				metric: c.route.metric,
				reachable: c.health.reachable,
				direct: c.health.direct,
			})),
			description: first.description,
			exitNode,
			reason: "",
		};
		const take = (c: Candidate, reason: string) => {
			choice.routerKey = c.route.routerKey;
			choice.routerName = nameOf(c);
			choice.metric = c.route.metric;
			choice.reason = reason;
		};

		const attached = attachedNetwork(first.network, input.localNetworks);
		if (attached !== undefined) {
			choice.reason = `not routed: this machine is attached to ${attached}`;
		} else if (exitNode && !exitNodeAllowed(routes, candidates, input.exitNode, nameOf)) {
			choice.reason =
				input.exitNode.mode === "off"
					? "not used: exit node turned off ('starling exit-node use NAME' to use one)"
					: input.exitNode.mode === "use"
						? `not used: exit node '${input.exitNode.name}' selected`
						: "offered, not applied until selected ('starling exit-node use NAME')";
		} else {
			// A user-selected exit peer pins the router of that network; in auto
			// mode a skip_auto_apply router of it is never used.
			const pool = !exitNode
				? reachable
				: input.exitNode.mode === "use"
					? pinned(candidates, reachable, input.exitNode.name, nameOf)
					: reachable.filter((c) => !c.route.skipAutoApply);
			const best = pool[0];
			if (previous?.health.reachable && pool.includes(previous)) {
				const better =
					best !== undefined &&
					best !== previous &&
					worthMoving(best, previous) &&
					now - (reachableSince.get(best.route.routerKey) ?? now) >= holdMs;
				if (better) take(best, `moved back: ${describe(best)} (stably reachable)`);
				else
					take(
						previous,
						`in use: ${describe(previous)}${best !== previous ? "; kept, no better router stably reachable" : ""}`,
					);
			} else if (best) {
				take(
					best,
					previous
						? `failover: ${nameOf(previous)} unreachable; ${describe(best)}`
						: `best reachable: ${describe(best)}`,
				);
			} else if (
				previous &&
				routes.some((r) => r.keepRoute) &&
				!(exitNode && input.exitNode.mode === "auto" && previous.route.skipAutoApply)
			) {
				take(previous, "kept (keep_route): no router reachable");
			} else {
				choice.reason = "not routed: no router reachable";
			}
		}
		if (choice.routerKey !== undefined) chosen.set(key, choice.routerKey);
		if (choice.routerKey !== previousKey)
			moves.push({ key, from: previousKey, to: choice.routerKey });
		networks.push(choice);
	}

	// One exit node at most, and one router per prefix: WireGuard gives a
	// prefix to a single peer. The best choice by (metric, network id) wins.
	const byPrefix = new Map<string, NetworkChoice>();
	for (const n of networks) {
		if (n.routerKey === undefined) continue;
		const holder = byPrefix.get(n.network);
		if (!holder || n.metric < holder.metric || (n.metric === holder.metric && n.key < holder.key)) {
			if (holder) drop(holder, n, chosen);
			byPrefix.set(n.network, n);
		} else {
			drop(n, holder, chosen);
		}
	}

	const allowedIps = new Map<string, string[]>();
	for (const n of byPrefix.values()) {
		const list = allowedIps.get(n.routerKey!) ?? [];
		list.push(n.network);
		allowedIps.set(n.routerKey!, list);
	}
	for (const list of allowedIps.values()) list.sort();
	const kernelRoutes = [...byPrefix.keys()].sort();
	return { memory: { chosen, reachableSince }, networks, allowedIps, kernelRoutes, moves };
}

function drop(loser: NetworkChoice, winner: NetworkChoice, chosen: Map<string, string>): void {
	loser.reason = `not routed: ${loser.network} is carried by network '${winner.networkId}'`;
	loser.routerKey = undefined;
	loser.routerName = "";
	chosen.delete(loser.key);
}

function exitNodeAllowed(
	routes: readonly RouteEntry[],
	candidates: readonly Candidate[],
	choice: ExitNodeChoice,
	nameOf: (c: Candidate) => string,
): boolean {
	switch (choice.mode) {
		case "off":
			return false;
		case "auto":
			return routes.some((r) => !r.skipAutoApply);
		case "use":
			return (
				routes.some((r) => r.networkId === choice.name) ||
				candidates.some((c) => nameOf(c) === choice.name)
			);
	}
}

/**
 * The exit network's reachable candidates narrowed to the peer the user
 * named; all of them when the name is the network's id.
 */
function pinned(
	candidates: readonly Candidate[],
	reachable: readonly Candidate[],
	name: string,
	nameOf: (c: Candidate) => string,
): readonly Candidate[] {
	if (!candidates.some((c) => nameOf(c) === name)) return reachable;
	return reachable.filter((c) => nameOf(c) === name);
}

/** Whether NAME names an exit node of these routes (a network id or a router's name). */
export function exitNodeExists(
	routes: readonly RouteEntry[],
	name: string,
	nameOfRouter: (key: string) => string | undefined,
): boolean {
	return routes.some(
		(r) =>
			r.network === EXIT_NETWORK && (r.networkId === name || nameOfRouter(r.routerKey) === name),
	);
}
