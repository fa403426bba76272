import type { ClientRoute, FirewallRule, ServedRoute } from "@starling/proto";
import type { Policy, RoutingConfig } from "../domain/types.js";
import {
	compileRouteEntries,
	type RouteEntry,
	type RoutingPeers,
	sortedHas,
	unionSorted,
} from "./route-entries.js";

// Which routes each peer of an account receives, which it serves, and which
// peers it must see because of them. Pure; built once per index of the
// account (see AccessIndex.routing) and answering per peer.
//
// Semantics (NetBird's). An entry (a route, or a network resource reached by
// a policy) is offered to its audience; each of its routers serves it. A peer
// that routes a network (network id and CIDR, the HA group) receives no entry
// of that HA group: it is attached to the network itself, and an exit node
// must not send its own traffic through another exit node. A receiver gets
// one ClientRoute per router; a router gets one ServedRoute per entry,
// either open (the /32 of every receiver) or filtered (the rules of the
// policies whose destinations hold the route's access control groups, or
// that reach the resource, restricted to the receivers).
//
// Visibility. A receiver and each router of its routes must be in each
// other's maps so that WireGuard carries the traffic, whatever the
// policies say; `linked` answers that, and AccessIndex adds it to the
// policy-visible set. Inbound firewall rules for traffic TO a peer are not
// affected: routes only open the forward path on the router.

export class RouteIndex {
	readonly entries: readonly RouteEntry[];
	/** Per entry: audience without the peers routing its HA group, ascending. */
	readonly receivers: readonly Int32Array[];
	/** Per peer: the entries it receives, and those it routes (undefined: none). */
	private readonly clientEntries: (number[] | undefined)[];
	private readonly servedEntries: (number[] | undefined)[];
	private readonly linkedCache: (Int32Array | undefined)[];
	private readonly servedCache: ({ rules: FirewallRule[]; sources: string[] } | undefined)[];
	private readonly clientCache: (ClientRoute[] | undefined)[];
	private readonly prefixes: (string | undefined)[];

	private constructor(
		private readonly peers: RoutingPeers,
		entries: RouteEntry[],
	) {
		this.entries = entries;
		// No routes (most accounts): nothing per peer to allocate.
		const n = entries.length === 0 ? 0 : peers.size;
		this.clientEntries = new Array(n);
		this.servedEntries = new Array(n);
		this.linkedCache = new Array(n);
		this.servedCache = new Array(entries.length);
		this.clientCache = new Array(entries.length);
		this.prefixes = new Array(n);
		const servingByHa = new Map<string, number[]>();
		entries.forEach((e, k) => {
			const key = haKeyOf(e);
			let serving = servingByHa.get(key);
			if (!serving) {
				serving = [];
				servingByHa.set(key, serving);
			}
			for (const r of e.routers) {
				serving.push(r.peer);
				pushTo(this.servedEntries, r.peer, k);
			}
		});
		// Marks of the peers serving the entry's HA group, set and cleared per entry.
		const serves = new Uint8Array(n);
		this.receivers = entries.map((e, k) => {
			// Without a router the entry carries nothing: offer it to nobody.
			if (e.routers.length === 0) return NONE;
			const serving = servingByHa.get(haKeyOf(e))!;
			for (const p of serving) serves[p] = 1;
			const out = e.audience.filter((p) => serves[p] === 0);
			for (const p of serving) serves[p] = 0;
			for (const p of out) pushTo(this.clientEntries, p, k);
			return out;
		});
	}

	static build(
		peers: RoutingPeers,
		routing: RoutingConfig | undefined,
		policies: readonly Policy[],
		accountId: string,
	): RouteIndex {
		return new RouteIndex(peers, compileRouteEntries(peers, routing, policies, accountId));
	}

	get isEmpty(): boolean {
		return this.entries.length === 0;
	}

	/** Indices of the entries `viewer` receives. */
	receivedEntries(viewer: number): readonly number[] {
		return this.clientEntries[viewer] ?? [];
	}

	/** Indices of the entries `viewer` routes. */
	routedEntries(viewer: number): readonly number[] {
		return this.servedEntries[viewer] ?? [];
	}

	/** The routes `viewer` receives, one per (entry, router), sorted by id. */
	clientRoutes(viewer: number): ClientRoute[] {
		const received = this.receivedEntries(viewer);
		if (received.length === 0) return [];
		const out = EMPTY_ROUTES.concat(...received.map((k) => this.clientRoutesOf(k)));
		return received.length === 1 ? out : out.sort((a, b) => compare(a.id, b.id));
	}

	/** Entry `k`'s ClientRoutes, sorted by id: made once, shared by the maps of all its receivers. */
	private clientRoutesOf(k: number): ClientRoute[] {
		let routes = this.clientCache[k];
		if (!routes) {
			const e = this.entries[k]!;
			routes = e.routers
				.map((r): ClientRoute => {
					const router = this.peers.peerAt(r.peer);
					return {
						id: `${e.routeId}:${router.id}`,
						networkId: e.networkId,
						network: e.network,
						routerKey: router.wgPublicKey,
						metric: r.metric,
						keepRoute: e.keepRoute,
						skipAutoApply: e.skipAutoApply,
						description: e.description,
						routeId: e.routeId,
					};
				})
				.sort((a, b) => compare(a.id, b.id));
			this.clientCache[k] = routes;
		}
		return routes;
	}

	/** The routes `viewer` forwards, sorted by route id. */
	servedRoutes(viewer: number): ServedRoute[] {
		const out: ServedRoute[] = [];
		for (const k of this.routedEntries(viewer)) {
			const e = this.entries[k]!;
			const router = e.routers.find((r) => r.peer === viewer)!;
			const forwarded = this.forwardedThrough(k);
			out.push({
				routeId: e.routeId,
				network: e.network,
				masquerade: router.masquerade,
				filtered: e.filter !== null,
				rules: forwarded.rules,
				sources: forwarded.sources,
			});
		}
		return out.sort((a, b) => compare(a.routeId, b.routeId) || compare(a.network, b.network));
	}

	/**
	 * Who may send through entry `k`'s routers: shared by all of them, since a
	 * router of an entry is never one of its receivers.
	 */
	forwardedThrough(k: number): { rules: FirewallRule[]; sources: string[] } {
		let cached = this.servedCache[k];
		if (cached) return cached;
		const e = this.entries[k]!;
		const receivers = this.receivers[k]!;
		if (e.filter === null) {
			cached = { rules: [], sources: Array.from(receivers, (p) => this.prefixOf(p)) };
		} else {
			// One rule per (grant, source), grants ordered by (policy, protocol, ports).
			const byGrant = new Map<
				string,
				{ grant: Omit<FirewallRule, "source">; sources: Int32Array[] }
			>();
			for (const f of e.filter) {
				const key = `${f.policy.id}|${f.protocol}|${f.ports.map((r) => `${r.start}-${r.end}`).join(",")}`;
				const held = byGrant.get(key) ?? {
					grant: { protocol: f.protocol, ports: f.ports, policyId: f.policy.id },
					sources: [],
				};
				held.sources.push(f.sources.filter((p) => sortedHas(receivers, p)));
				byGrant.set(key, held);
			}
			const rules: FirewallRule[] = [];
			for (const key of [...byGrant.keys()].sort(compare)) {
				const { grant, sources } = byGrant.get(key)!;
				for (const p of unionSorted(sources)) rules.push({ source: this.prefixOf(p), ...grant });
			}
			cached = { rules, sources: [] };
		}
		this.servedCache[k] = cached;
		return cached;
	}

	/**
	 * Peers `viewer` must see because of routes: the routers of the routes it
	 * receives and the receivers of the routes it serves, ascending, without itself.
	 */
	linked(viewer: number): Int32Array {
		if (this.entries.length === 0) return NONE;
		let out = this.linkedCache[viewer];
		if (!out) {
			let size = 0;
			const received = this.receivedEntries(viewer);
			const routed = this.routedEntries(viewer);
			for (const k of received) size += this.entries[k]!.routers.length;
			for (const k of routed) size += this.receivers[k]!.length;
			const all = new Int32Array(size);
			let m = 0;
			for (const k of received) for (const r of this.entries[k]!.routers) all[m++] = r.peer;
			for (const k of routed) {
				all.set(this.receivers[k]!, m);
				m += this.receivers[k]!.length;
			}
			all.sort();
			// Deduplicate in place, without the viewer.
			let w = 0;
			for (let i = 0; i < all.length; i++) {
				const p = all[i]!;
				if (p !== viewer && (w === 0 || all[w - 1] !== p)) all[w++] = p;
			}
			out = w === 0 ? NONE : all.subarray(0, w);
			this.linkedCache[viewer] = out;
		}
		return out;
	}

	isLinked(viewer: number, target: number): boolean {
		return sortedHas(this.linked(viewer), target);
	}

	private prefixOf(p: number): string {
		let prefix = this.prefixes[p];
		if (prefix === undefined) {
			prefix = `${this.peers.peerAt(p).ip}/32`;
			this.prefixes[p] = prefix;
		}
		return prefix;
	}
}

const NONE = new Int32Array(0);

/** Appends `value` to the list at `at`, made on first use. */
function pushTo(lists: (number[] | undefined)[], at: number, value: number): void {
	const list = lists[at];
	if (list) list.push(value);
	else lists[at] = [value];
}
const EMPTY_ROUTES: ClientRoute[] = [];

/** Entries with the same HA key are one network served by several routers. */
export function haKeyOf(e: Pick<RouteEntry, "networkId" | "network">): string {
	return `${e.networkId}|${e.network}`;
}

function compare(a: string, b: string): number {
	return a < b ? -1 : a > b ? 1 : 0;
}
