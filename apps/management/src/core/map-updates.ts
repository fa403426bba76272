import { diffFirewallRules, firewallChangeSize } from "@starling/netmap";
import type { NetworkMapDelta, SelfConfig } from "@starling/proto";
import type { Peer, Policy } from "../domain/types.js";
import { sameSelf, selfConfigOf } from "./peer-view.js";
import type { AccessIndex } from "./policy.js";
import { routeAffectedViewers, routeListsDelta } from "./route-updates.js";

// Deltas between two snapshots of an account, per viewer, without building
// either map. A viewer's map changes in three ways:
//   1. A peer it sees changed (renamed, connected...): one upsert.
//   2. A peer joined or left: an upsert or a removal if the viewer sees it,
//      and its firewall rules if the peer is one of its explicit sources.
//   3. Its access changed (a policy or group membership that concerns it):
//      its visible set and firewall rules are diffed in full.
//   4. Its routes changed (core/route-updates.ts): its route lists are
//      compared and sent whole when they differ, and its visible set is
//      diffed in full (routers and receivers see each other).
// Case 3 applies only to the viewers in the transition's scope (computed
// from the two configurations, see `affectedViewers`); everyone else costs
// O(changed peers). A viewer outside the scope gets nothing unless 1 or 2
// touch it.

/**
 * Peers changed since the base snapshot, keyed by WireGuard public key;
 * null means the peer was deleted.
 */
export type PeerChanges = ReadonlyMap<string, Peer | null>;

export class MapTransition {
	/** Viewers (peer ids) whose access may differ between base and next, or everyone. */
	readonly scope: ReadonlySet<string> | "all";
	/** Viewers (peer ids) whose routes or route-linked peers may differ between base and next. */
	readonly routeScope: ReadonlySet<string>;
	private baseToNextCache: Int32Array | undefined;

	constructor(
		readonly base: AccessIndex,
		readonly next: AccessIndex,
		readonly changed: PeerChanges,
	) {
		this.scope = affectedViewers(base, next);
		this.routeScope = routeAffectedViewers(base, next);
	}

	inScope(peerId: string): boolean {
		return this.scope === "all" || this.scope.has(peerId);
	}

	inRouteScope(peerId: string): boolean {
		return this.routeScope.has(peerId);
	}

	/** For each peer of base, its index in next (same key and id), or -1. */
	baseToNext(): Int32Array {
		if (!this.baseToNextCache) {
			const map = new Int32Array(this.base.size);
			for (let i = 0; i < this.base.size; i++) {
				const peer = this.base.peerAt(i);
				const j = this.next.indexOfKey(peer.wgPublicKey);
				map[i] = j !== undefined && this.next.peerAt(j).id === peer.id ? j : -1;
			}
			this.baseToNextCache = map;
		}
		return this.baseToNextCache;
	}
}

function samePolicy(a: Policy | undefined, b: Policy | undefined): boolean {
	if (!a || !b) return a === b;
	return a.enabled === b.enabled && JSON.stringify(a.rules) === JSON.stringify(b.rules);
}

/**
 * The peers whose visible set or firewall rules may differ between two
 * configurations, ignoring peers that joined or left (handled per peer):
 * members of groups named by a changed policy, peers whose group membership
 * changed, and peers on the other side of any rule naming a group whose
 * membership changed.
 */
export function affectedViewers(base: AccessIndex, next: AccessIndex): ReadonlySet<string> | "all" {
	const affected = new Set<string>();
	if (base.account.network !== next.account.network) return "all";
	if (base.account.dnsDomain !== next.account.dnsDomain) return "all";
	if (base.config === next.config) return affected;

	const touched = new Set<string>();
	const oldPolicies = new Map(base.config.policies.map((p) => [p.id, p]));
	const newPolicies = new Map(next.config.policies.map((p) => [p.id, p]));
	for (const id of new Set([...oldPolicies.keys(), ...newPolicies.keys()])) {
		const a = oldPolicies.get(id);
		const b = newPolicies.get(id);
		if (samePolicy(a, b)) continue;
		for (const rule of [...(a?.rules ?? []), ...(b?.rules ?? [])]) {
			for (const g of rule.sources) touched.add(g);
			for (const g of rule.destinations) touched.add(g);
		}
	}

	// Membership changes among peers present in both snapshots.
	const membershipChanged = new Set<string>();
	const groupIds = new Set([
		...base.config.groups.map((g) => g.id),
		...next.config.groups.map((g) => g.id),
	]);
	for (const id of groupIds) {
		if (base.isAllGroup(id) || next.isAllGroup(id)) continue;
		const before = new Set(base.memberIdsOf(id).filter((p) => next.indexOfId(p) !== undefined));
		const after = new Set(next.memberIdsOf(id).filter((p) => base.indexOfId(p) !== undefined));
		let changed = false;
		for (const p of before) {
			if (!after.has(p)) {
				affected.add(p);
				changed = true;
			}
		}
		for (const p of after) {
			if (!before.has(p)) {
				affected.add(p);
				changed = true;
			}
		}
		if (changed) membershipChanged.add(id);
	}

	const include = (index: AccessIndex, groupId: string): boolean => {
		if (index.isAllGroup(groupId)) return false;
		for (const p of index.memberIdsOf(groupId)) affected.add(p);
		return true;
	};
	if (membershipChanged.size > 0) {
		for (const index of [base, next]) {
			for (const policy of index.config.policies) {
				if (!policy.enabled) continue;
				for (const rule of policy.rules) {
					if (!rule.enabled) continue;
					if (rule.sources.some((g) => membershipChanged.has(g))) {
						for (const g of rule.destinations) if (!include(index, g)) return "all";
					}
					if (rule.destinations.some((g) => membershipChanged.has(g))) {
						for (const g of rule.sources) if (!include(index, g)) return "all";
					}
				}
			}
		}
	}
	for (const g of touched) {
		if (!include(base, g) || !include(next, g)) return "all";
	}
	return affected;
}

/**
 * The delta that takes the viewer (by public key) from its map under
 * `t.base` to its map under `t.next`, or undefined when nothing it holds
 * changed. `lastSelf` is the self config it last received.
 * `acceptsFirewallChanges`: the agent folds rule-by-rule firewall changes
 * (`firewall_changes`); otherwise changed rules go as the whole list.
 */
export function deltaForViewer(
	viewerKey: string,
	t: MapTransition,
	lastSelf: SelfConfig | undefined,
	baseSerial: number,
	serial: number,
	acceptsFirewallChanges = false,
): NetworkMapDelta | undefined {
	const { base, next, changed } = t;
	const v = next.indexOfKey(viewerKey);
	if (v === undefined) return undefined;
	const viewer = next.peerAt(v);
	const vb = base.indexOfKey(viewerKey);
	const vBase = vb !== undefined && base.peerAt(vb).id === viewer.id ? vb : undefined;
	const delta: NetworkMapDelta = {
		baseSerial,
		serial,
		upsertedPeers: [],
		removedPeerKeys: [],
		self: undefined,
		signal: undefined,
		stunServers: undefined,
		relay: undefined,
		firewallRules: undefined,
		firewallChanges: undefined,
		routes: undefined,
		servedRoutes: undefined,
	};
	const accountChanged =
		base.account.network !== next.account.network ||
		base.account.dnsDomain !== next.account.dnsDomain;
	if (changed.has(viewerKey) || accountChanged) {
		const self = selfConfigOf(viewer, next.account);
		if (!lastSelf || !sameSelf(lastSelf, self)) delta.self = self;
	}

	let checkRules = false;
	const routesMayDiffer = vBase === undefined || t.inRouteScope(viewer.id);
	if (routesMayDiffer) {
		const lists = routeListsDelta(base.routing, vBase, next.routing, v);
		if (lists.routes) delta.routes = { routes: lists.routes };
		if (lists.servedRoutes) delta.servedRoutes = { routes: lists.servedRoutes };
	}
	if (vBase === undefined || t.inScope(viewer.id) || routesMayDiffer) {
		// The viewer's access or routes changed: diff its visible sets in full.
		const mapped = t.baseToNext();
		const after = next.visibleIndices(v);
		// Sees nobody now (a policy disabled): everyone it saw is removed, one copy.
		if (after.length === 0 && vBase !== undefined) delta.removedPeerKeys = base.visibleKeys(vBase);
		const before =
			vBase === undefined || after.length === 0 ? new Int32Array(0) : base.visibleIndices(vBase);
		let i = 0;
		let j = 0;
		while (i < before.length || j < after.length) {
			const a = i < before.length ? mapped[before[i]!]! : Number.POSITIVE_INFINITY;
			const b = j < after.length ? after[j]! : Number.POSITIVE_INFINITY;
			if (a === -1) {
				delta.removedPeerKeys.push(base.peerAt(before[i]!).wgPublicKey);
				i++;
			} else if (a === b) {
				const key = next.peerAt(b).wgPublicKey;
				if (changed.has(key)) delta.upsertedPeers.push(next.remotePeer(b));
				i++;
				j++;
			} else if (a < b) {
				delta.removedPeerKeys.push(base.peerAt(before[i]!).wgPublicKey);
				i++;
			} else {
				delta.upsertedPeers.push(next.remotePeer(b));
				j++;
			}
		}
		checkRules = true;
	} else {
		for (const [key, peer] of changed) {
			if (key === viewerKey) continue;
			const qn = peer ? next.indexOfKey(key) : undefined;
			const qb = base.indexOfKey(key);
			if (qn !== undefined && next.isVisible(v, qn)) {
				delta.upsertedPeers.push(next.remotePeer(qn));
			} else if (qb !== undefined && base.isVisible(vBase, qb)) {
				delta.removedPeerKeys.push(key);
			}
			const replaced =
				qb === undefined || qn === undefined || base.peerAt(qb).id !== next.peerAt(qn).id;
			if (
				replaced &&
				!checkRules &&
				((qn !== undefined && next.explicitSource(v, qn)) ||
					(qb !== undefined && base.explicitSource(vBase, qb)))
			) {
				checkRules = true;
			}
		}
	}
	if (checkRules) {
		const before = vBase === undefined ? [] : base.firewallRules(vBase);
		const after = next.firewallRules(v);
		const changes = diffFirewallRules(before, after);
		if (changes) {
			// A change listing as many rules as the new list is no smaller: replace the list.
			if (
				acceptsFirewallChanges &&
				vBase !== undefined &&
				firewallChangeSize(changes) < after.length
			)
				delta.firewallChanges = changes;
			else delta.firewallRules = { rules: after };
		}
	}

	const empty =
		delta.upsertedPeers.length === 0 &&
		delta.removedPeerKeys.length === 0 &&
		!delta.self &&
		!delta.firewallRules &&
		!delta.firewallChanges &&
		!delta.routes &&
		!delta.servedRoutes;
	return empty ? undefined : delta;
}
