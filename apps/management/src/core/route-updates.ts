import type { ClientRoute, ServedRoute } from "@starling/proto";
import type { AccessIndex } from "./policy.js";
import type { RouteEntry } from "./route-entries.js";
import type { RouteIndex } from "./routes.js";

// Which viewers' routes may differ between two snapshots of an account, and
// the route part of a viewer's delta. Pure. Entries (routes and reached
// resources) are matched by id between the two snapshots and compared in
// two parts: what their receivers hold (network, routers, metrics...) and
// what their routers hold (who may send through, masquerade). A change of
// the first concerns receivers and routers; of the second, routers; a
// receiver joining or leaving concerns itself and the routers. Everyone else
// is left alone, so a route change reaches only the agents whose routes (or
// route-linked peers) change.

/**
 * Peer ids whose routes, served routes or route-linked peers may differ
 * (a superset: the lists themselves are compared per viewer).
 */
export function routeAffectedViewers(base: AccessIndex, next: AccessIndex): ReadonlySet<string> {
	const affected = new Set<string>();
	const before = base.routing;
	const after = next.routing;
	if (before.isEmpty && after.isEmpty) return affected;
	if (base.config === next.config && samePeers(base, next)) return affected;

	const beforeById = entriesById(before);
	const afterById = entriesById(after);
	const ids = (index: AccessIndex, list: Iterable<number>) => {
		for (const i of list) affected.add(index.peerAt(i).id);
	};
	const routersOf = (e: RouteEntry) => e.routers.map((r) => r.peer);
	for (const [id, b] of beforeById) {
		if (!afterById.has(id)) {
			ids(base, before.receivers[b]!);
			ids(base, routersOf(before.entries[b]!));
		}
	}
	for (const [id, a] of afterById) {
		const b = beforeById.get(id);
		const ea = after.entries[a]!;
		const receiversAfter = after.receivers[a]!;
		if (b === undefined) {
			ids(next, receiversAfter);
			ids(next, routersOf(ea));
			continue;
		}
		const eb = before.entries[b]!;
		const receiversBefore = before.receivers[b]!;
		if (clientSide(base, eb) !== clientSide(next, ea)) {
			ids(base, receiversBefore);
			ids(next, receiversAfter);
			ids(base, routersOf(eb));
			ids(next, routersOf(ea));
			continue;
		}
		const idsBefore = new Set(Array.from(receiversBefore, (i) => base.peerAt(i).id));
		const idsAfter = new Set(Array.from(receiversAfter, (i) => next.peerAt(i).id));
		let receiversChanged = idsBefore.size !== idsAfter.size;
		for (const p of idsBefore) {
			if (!idsAfter.has(p)) {
				affected.add(p);
				receiversChanged = true;
			}
		}
		for (const p of idsAfter) {
			if (!idsBefore.has(p)) {
				affected.add(p);
				receiversChanged = true;
			}
		}
		if (receiversChanged || routerSide(base, b) !== routerSide(next, a)) {
			ids(base, routersOf(eb));
			ids(next, routersOf(ea));
		}
	}
	return affected;
}

/** The route lists of a viewer's delta: each set only when it differs from the base map's. */
export function routeListsDelta(
	base: RouteIndex,
	viewerBase: number | undefined,
	next: RouteIndex,
	viewer: number,
): { routes?: ClientRoute[]; servedRoutes?: ServedRoute[] } {
	const out: { routes?: ClientRoute[]; servedRoutes?: ServedRoute[] } = {};
	const routesBefore = viewerBase !== undefined ? base.clientRoutes(viewerBase) : [];
	const routesAfter = next.clientRoutes(viewer);
	if (JSON.stringify(routesBefore) !== JSON.stringify(routesAfter)) out.routes = routesAfter;
	const servedBefore = viewerBase !== undefined ? base.servedRoutes(viewerBase) : [];
	const servedAfter = next.servedRoutes(viewer);
	if (JSON.stringify(servedBefore) !== JSON.stringify(servedAfter)) out.servedRoutes = servedAfter;
	return out;
}

function entriesById(index: RouteIndex): Map<string, number> {
	return new Map(index.entries.map((e, k) => [`${e.kind}:${e.routeId}`, k]));
}

/** What a receiver of the entry holds, apart from who else receives it. */
function clientSide(index: AccessIndex, e: RouteEntry): string {
	return JSON.stringify([
		e.networkId,
		e.network,
		e.description,
		e.keepRoute,
		e.skipAutoApply,
		e.routers.map((r) => {
			const p = index.peerAt(r.peer);
			return [p.id, p.wgPublicKey, r.metric];
		}),
	]);
}

/** What a router of the entry holds, apart from who receives it. */
function routerSide(index: AccessIndex, k: number): string {
	const e = index.routing.entries[k]!;
	return JSON.stringify([
		e.routers.map((r) => [index.peerAt(r.peer).id, r.masquerade]),
		e.filter !== null,
		index.routing.forwardedThrough(k),
	]);
}

/** Same peers (id, key, address) at the same indices. */
function samePeers(a: AccessIndex, b: AccessIndex): boolean {
	if (a.size !== b.size) return false;
	for (let i = 0; i < a.size; i++) {
		const p = a.peerAt(i);
		const q = b.peerAt(i);
		if (p.id !== q.id || p.wgPublicKey !== q.wgPublicKey || p.ip !== q.ip) return false;
	}
	return true;
}
