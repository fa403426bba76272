import type { NetworkMap, NetworkMapDelta, RemotePeer } from "@starling/proto";
import { applyFirewallRuleChanges } from "./firewall-changes.js";

/** A delta whose base is not the map it was applied to: ask for a full map. */
export class DeltaGapError extends Error {
	override name = "DeltaGapError";
	constructor(
		readonly mapSerial: number,
		readonly deltaBaseSerial: number,
	) {
		super(`delta base serial ${deltaBaseSerial} does not match map serial ${mapSerial}`);
	}
}

export function remotePeersEqual(a: RemotePeer, b: RemotePeer): boolean {
	return (
		a.wgPublicKey === b.wgPublicKey &&
		a.peerId === b.peerId &&
		a.name === b.name &&
		a.dnsLabel === b.dnsLabel &&
		a.fqdn === b.fqdn &&
		a.connected === b.connected &&
		a.lastSeenUnixMs === b.lastSeenUnixMs &&
		sameList(a.allowedIps, b.allowedIps)
	);
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
	return a.length === b.length && a.every((v, i) => v === b[i]);
}

function sameJson(a: unknown, b: unknown): boolean {
	return JSON.stringify(a) === JSON.stringify(b);
}

/** The delta that turns `from` into `to` (peers keyed by public key). */
export function diffNetworkMaps(from: NetworkMap, to: NetworkMap): NetworkMapDelta {
	const before = new Map(from.peers.map((p) => [p.wgPublicKey, p]));
	const after = new Set(to.peers.map((p) => p.wgPublicKey));
	const delta: NetworkMapDelta = {
		baseSerial: from.serial,
		serial: to.serial,
		upsertedPeers: to.peers.filter((p) => {
			const old = before.get(p.wgPublicKey);
			return !old || !remotePeersEqual(old, p);
		}),
		removedPeerKeys: from.peers.filter((p) => !after.has(p.wgPublicKey)).map((p) => p.wgPublicKey),
		self: undefined,
		signal: undefined,
		stunServers: undefined,
		relay: undefined,
		firewallRules: undefined,
		firewallChanges: undefined,
		routes: undefined,
		servedRoutes: undefined,
	};
	if (!sameJson(from.self, to.self)) delta.self = to.self;
	if (!sameJson(from.signal, to.signal)) delta.signal = to.signal;
	if (!sameJson(from.stunServers, to.stunServers)) delta.stunServers = { servers: to.stunServers };
	// An optional message cannot say "now unset"; a relay config without URLs does.
	if (!sameJson(from.relay, to.relay))
		delta.relay = to.relay ?? { urls: [], token: "", tokenExpiresUnixMs: 0 };
	if (!sameJson(from.firewallRules, to.firewallRules)) {
		delta.firewallRules = { rules: to.firewallRules };
	}
	if (!sameJson(from.routes, to.routes)) delta.routes = { routes: to.routes };
	if (!sameJson(from.servedRoutes, to.servedRoutes))
		delta.servedRoutes = { routes: to.servedRoutes };
	return delta;
}

export function isEmptyDelta(delta: NetworkMapDelta): boolean {
	return (
		delta.upsertedPeers.length === 0 &&
		delta.removedPeerKeys.length === 0 &&
		delta.self === undefined &&
		delta.signal === undefined &&
		delta.stunServers === undefined &&
		delta.relay === undefined &&
		delta.firewallRules === undefined &&
		delta.firewallChanges === undefined &&
		delta.routes === undefined &&
		delta.servedRoutes === undefined
	);
}

/**
 * Applies a delta to the map at its base serial. Peer order in the result is
 * by public key so that equal maps compare equal. A whole firewall rule list
 * replaces the map's rules; firewall changes are folded into them. Route
 * lists, when set, replace the map's client and served routes. Throws
 * DeltaGapError when the serials do not line up.
 */
export function applyNetworkMapDelta(map: NetworkMap, delta: NetworkMapDelta): NetworkMap {
	if (delta.baseSerial !== map.serial) throw new DeltaGapError(map.serial, delta.baseSerial);
	// map.peers is sorted by key. Updates and removals keep that order; only
	// new keys are inserted (binary search), so a one-peer delta costs O(n)
	// copying instead of a full sort.
	const upserts = new Map(delta.upsertedPeers.map((p) => [p.wgPublicKey, p]));
	const removed = new Set(delta.removedPeerKeys);
	const peers: RemotePeer[] = [];
	for (const p of map.peers) {
		if (removed.has(p.wgPublicKey) && !upserts.has(p.wgPublicKey)) continue;
		const updated = upserts.get(p.wgPublicKey);
		if (updated) upserts.delete(p.wgPublicKey);
		peers.push(updated ?? p);
	}
	for (const p of upserts.values()) peers.splice(insertionIndex(peers, p.wgPublicKey), 0, p);
	return {
		...map,
		serial: delta.serial,
		peers,
		self: delta.self ?? map.self,
		signal: delta.signal ?? map.signal,
		stunServers: delta.stunServers ? delta.stunServers.servers : map.stunServers,
		relay: delta.relay ? (delta.relay.urls.length > 0 ? delta.relay : undefined) : map.relay,
		firewallRules: delta.firewallRules
			? delta.firewallRules.rules
			: delta.firewallChanges
				? applyFirewallRuleChanges(map.firewallRules, delta.firewallChanges)
				: map.firewallRules,
		// Route lists replace the whole lists (what this peer reaches, what it forwards).
		routes: delta.routes ? delta.routes.routes : map.routes,
		servedRoutes: delta.servedRoutes ? delta.servedRoutes.routes : map.servedRoutes,
	};
}

function insertionIndex(sorted: readonly RemotePeer[], key: string): number {
	let lo = 0;
	let hi = sorted.length;
	while (lo < hi) {
		const mid = (lo + hi) >>> 1;
		if (sorted[mid]!.wgPublicKey < key) lo = mid + 1;
		else hi = mid;
	}
	return lo;
}

export function sortPeers(peers: RemotePeer[]): RemotePeer[] {
	return peers.sort((a, b) =>
		a.wgPublicKey < b.wgPublicKey ? -1 : a.wgPublicKey > b.wgPublicKey ? 1 : 0,
	);
}
