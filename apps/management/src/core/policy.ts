import type { FirewallRule, RemotePeer } from "@starling/proto";
import type {
	Account,
	Group,
	Peer,
	Policy,
	PolicyRule,
	PortRange,
	Protocol,
	RoutingConfig,
} from "../domain/types.js";
import { cidrContainsIp, ipToInt, parseCidr } from "./ipam.js";
import { remotePeerOf } from "./peer-view.js";
import { canonicalPorts, grantAllows } from "./ports.js";
import { RouteIndex } from "./routes.js";

export { canonicalPorts, grantAllows };

// Access policy evaluation, pure (no I/O). An AccessIndex is built once per
// snapshot of an account (peers, groups, policies) and answers, per peer:
// which peers it may see (some enabled rule connects the two, in either
// direction), and which inbound firewall rules apply to it.
//
// Cost model. Groups map to sorted member arrays and rules are indexed by
// the groups they name, so a peer's relevant rules are found from its own
// groups (O(groups of the peer x rules naming them)), never by scanning
// every rule. A peer's visible set is the union of the members of the groups
// "on the other side" of its rules, deduplicated per group first: a rule
// naming the All group makes every peer visible without touching any list.
// The work per peer is O(size of its answer), so all maps of an account cost
// O(total map size), not O(peers^2 x rules).
//
// Firewall rules. For peer p, a rule whose destinations hold p admits its
// sources; a bidirectional rule whose sources hold p also admits its
// destinations. Each admitted source becomes one FirewallRule {source
// "ip/32", protocol, ports, policy_id}, except when the admitted side is the
// All group: every address of the account network then belongs to a peer
// that is admitted, so the rule is one FirewallRule with the account network
// as source. (Traffic can only reach p's interface from peers in its map,
// whose WireGuard allowed IPs are their /32s, so the two forms admit the
// same peers; the network form does not change when peers join or leave.)
// FirewallRule objects are shared between the maps of all peers of an index.
//
// Routes (core/routes.ts) add to visibility only: a peer also sees the
// routers of the routes it receives and the receivers of the routes it
// serves (`routing`, built on first use). Firewall rules are policies' alone.

export interface AccessConfig {
	groups: readonly Group[];
	policies: readonly Policy[];
	/** The account's routes and networks; absent = none. */
	routing?: RoutingConfig;
}

/**
 * Whether a list of inbound firewall rules admits `sourceIp` to `port` over
 * `protocol`: the agent's reading of a map, as a reference for tests.
 */
export function firewallAllows(
	rules: readonly FirewallRule[],
	sourceIp: string,
	protocol: Exclude<Protocol, "all">,
	port: number,
): boolean {
	const ip = ipToInt(sourceIp);
	return rules.some(
		(r) =>
			cidrContainsIp(parseCidr(r.source), ip) &&
			grantAllows(r.protocol as Protocol, r.ports, protocol, port),
	);
}

/** What one rule grants in one direction, shared by the rules of a policy that grant the same. */
interface Grant {
	key: string;
	order: number;
	policyId: string;
	protocol: Protocol;
	ports: PortRange[];
	/** FirewallRule per source peer index, made on first use (allocated with the first). */
	bySource: (FirewallRule | undefined)[];
	/** The rule with the account network as source (the All group admitted). */
	network: FirewallRule | undefined;
}

interface CompiledRule {
	policy: Policy;
	rule: PolicyRule;
	/** Group ordinals, deduplicated. */
	sources: number[];
	destinations: number[];
	sourceAll: boolean;
	destinationAll: boolean;
	bidirectional: boolean;
	grant: Grant;
	sourceSide: RuleSide;
	destinationSide: RuleSide;
}

/** One side (sources or destinations) of a compiled rule. */
interface RuleSide {
	/** Group ordinals, deduplicated. */
	groups: number[];
	/** Members of the groups, ascending; made on first use. */
	members: Int32Array | undefined;
	/** The rule's grant for each member (firewall rules admitting them); made on first use. */
	rules: FirewallRule[] | undefined;
}

interface Relevant {
	/** Rules (indices) whose sources hold the peer. */
	asSource: number[];
	/** Rules whose destinations hold the peer. */
	asDestination: number[];
}

export type CheckProtocol = Exclude<Protocol, "all">;

export type AccessCheck =
	| { allowed: true; policy: Policy; rule: PolicyRule }
	| { allowed: false; connected: boolean };

const EMPTY = new Int32Array(0);
const EMPTY_RULES: FirewallRule[] = [];

export class AccessIndex {
	readonly account: Account;
	readonly config: AccessConfig;
	private readonly peers: Peer[];
	private readonly byKey = new Map<string, number>();
	private readonly byId = new Map<string, number>();
	private readonly groupOrdinal = new Map<string, number>();
	private readonly groups: Group[];
	private readonly allOrdinal: number;
	private readonly members: Int32Array[];
	private readonly peerGroups: number[][];
	private readonly rules: CompiledRule[] = [];
	private readonly rulesBySource: number[][];
	private readonly rulesByDestination: number[][];
	private readonly remote: (RemotePeer | undefined)[];
	private remoteAll: RemotePeer[] | undefined;
	/** Public keys in index order; made on first use (a peer's key never changes in an index). */
	private keys: string[] | undefined;
	private readonly prefixes: (string | undefined)[];
	private readonly relevantCache: (Relevant | undefined)[];
	/** Per viewer: 1 for each group whose members it sees; null: it sees everyone. */
	private readonly seenGroups: (Uint8Array | null | undefined)[];
	private readonly networkSource: string;
	// Scratch marks, so unions need no Set: a slot equals the epoch once visited.
	private readonly peerMark: Int32Array;
	private peerEpoch = 0;
	/** All zero between calls: a union sets bits, then clears them as it reads them back in order. */
	private readonly peerWords: Uint32Array;
	private readonly groupMark: Int32Array;
	private groupEpoch = 0;
	private readonly ruleMark: Int32Array;
	private ruleEpoch = 0;

	private readonly grantsByKey: Map<string, Grant>;
	private routingCache: RouteIndex | undefined;

	private constructor(
		account: Account,
		peers: Iterable<Peer>,
		config: AccessConfig,
		previous: AccessIndex | undefined,
	) {
		this.account = account;
		this.config = config;
		this.networkSource = account.network;
		// Sorted by public key, as maps list their peers: visible sets come out in map order.
		this.peers = [...peers]
			.filter((p) => p.accountId === account.id)
			.sort((a, b) => (a.wgPublicKey < b.wgPublicKey ? -1 : a.wgPublicKey > b.wgPublicKey ? 1 : 0));
		const n = this.peers.length;
		this.peers.forEach((p, i) => {
			this.byKey.set(p.wgPublicKey, i);
			this.byId.set(p.id, i);
		});
		this.remote = new Array(n);
		this.prefixes = new Array(n);
		this.relevantCache = new Array(n);
		this.seenGroups = new Array(n);
		this.peerMark = new Int32Array(n);
		this.peerWords = new Uint32Array((n + 31) >>> 5);

		this.groups = config.groups.filter((g) => g.accountId === account.id);
		this.groups.forEach((g, i) => {
			this.groupOrdinal.set(g.id, i);
		});
		this.allOrdinal = this.groups.findIndex((g) => g.issued === "all");
		this.peerGroups = Array.from({ length: n }, () => []);
		this.members = this.groups.map((g, ordinal) => {
			if (ordinal === this.allOrdinal) {
				// All holds every peer, whatever its stored membership says.
				const all = new Int32Array(n);
				for (let i = 0; i < n; i++) {
					all[i] = i;
					this.peerGroups[i]!.push(ordinal);
				}
				return all;
			}
			const idx: number[] = [];
			for (const id of new Set(g.peerIds)) {
				const i = this.byId.get(id);
				if (i !== undefined) {
					idx.push(i);
					this.peerGroups[i]!.push(ordinal);
				}
			}
			return Int32Array.from(idx).sort();
		});
		this.groupMark = new Int32Array(this.groups.length);
		this.rulesBySource = this.groups.map(() => []);
		this.rulesByDestination = this.groups.map(() => []);

		const grants = new Map<string, Grant>();
		for (const policy of config.policies) {
			if (!policy.enabled || policy.accountId !== account.id) continue;
			for (const rule of policy.rules) {
				if (!rule.enabled || rule.action !== "accept") continue;
				const sources = this.ordinals(rule.sources);
				const destinations = this.ordinals(rule.destinations);
				if (sources.length === 0 || destinations.length === 0) continue;
				const ports = canonicalPorts(rule.protocol, rule.ports, rule.portRanges);
				const key = `${policy.id}|${rule.protocol}|${ports.map((r) => `${r.start}-${r.end}`).join(",")}`;
				let grant = grants.get(key);
				if (!grant) {
					grant = {
						key,
						order: 0,
						policyId: policy.id,
						protocol: rule.protocol,
						ports,
						bySource: [],
						network: undefined,
					};
					grants.set(key, grant);
				}
				const r = this.rules.length;
				this.rules.push({
					policy,
					rule,
					sources,
					destinations,
					sourceAll: sources.includes(this.allOrdinal),
					destinationAll: destinations.includes(this.allOrdinal),
					bidirectional: rule.bidirectional,
					grant,
					sourceSide: { groups: sources, members: undefined, rules: undefined },
					destinationSide: { groups: destinations, members: undefined, rules: undefined },
				});
				for (const g of sources) this.rulesBySource[g]!.push(r);
				for (const g of destinations) this.rulesByDestination[g]!.push(r);
			}
		}
		[...grants.values()]
			.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
			.forEach((g, i) => {
				g.order = i;
			});
		this.grantsByKey = grants;
		// Same peers at the same indices (a policy or group change): the firewall
		// rule objects of grants that did not change are the same, so share them.
		if (previous && previous.account.network === account.network && this.samePeerLayout(previous)) {
			for (const grant of grants.values()) {
				const old = previous.grantsByKey.get(grant.key);
				if (old) {
					grant.bySource = old.bySource;
					grant.network = old.network;
				}
			}
		}
		this.ruleMark = new Int32Array(this.rules.length);
	}

	/**
	 * Indexes `peers` (those of `account`) under `config`. `previous`, the
	 * account's index before a change, lets unchanged firewall rule objects be
	 * shared (less garbage, faster comparisons); it is not modified.
	 */
	static build(
		account: Account,
		peers: Iterable<Peer>,
		config: AccessConfig,
		previous?: AccessIndex,
	): AccessIndex {
		return new AccessIndex(account, peers, config, previous);
	}

	private samePeerLayout(other: AccessIndex): boolean {
		if (other.peers.length !== this.peers.length) return false;
		for (let i = 0; i < this.peers.length; i++) {
			if (other.peers[i]!.ip !== this.peers[i]!.ip) return false;
		}
		return true;
	}

	get size(): number {
		return this.peers.length;
	}

	indexOfKey(wgPublicKey: string): number | undefined {
		return this.byKey.get(wgPublicKey);
	}

	indexOfId(peerId: string): number | undefined {
		return this.byId.get(peerId);
	}

	peerAt(i: number): Peer {
		return this.peers[i]!;
	}

	/** The peer as others see it in their maps (one object per peer, shared by all maps). */
	remotePeer(i: number): RemotePeer {
		let r = this.remote[i];
		if (!r) {
			r = remotePeerOf(this.peers[i]!, this.account);
			this.remote[i] = r;
		}
		return r;
	}

	/**
	 * The peers `viewer` sees, as others see them, in map order: the peers of
	 * its map. Seeing everyone (a rule naming All) is one native copy of the
	 * account's peers without the viewer.
	 */
	visiblePeers(viewer: number): RemotePeer[] {
		const all = this.allRemotePeers();
		const lists = this.visibleLists(viewer);
		if (lists === null) return all.toSpliced(viewer, 1);
		if (lists.length === 0) return [];
		const visible = this.union(lists, viewer);
		const out: RemotePeer[] = new Array(visible.length);
		for (let k = 0; k < visible.length; k++) out[k] = all[visible[k]!]!;
		return out;
	}

	/** Public keys of the peers `viewer` sees, in map order (a native copy when it sees everyone). */
	visibleKeys(viewer: number): string[] {
		if (!this.keys) this.keys = this.peers.map((p) => p.wgPublicKey);
		const keys = this.keys;
		if (this.visibleLists(viewer) === null) return keys.toSpliced(viewer, 1);
		return Array.from(this.visibleIndices(viewer), (i) => keys[i]!);
	}

	/** Every peer as others see it, in index order (packed, for native copies). */
	private allRemotePeers(): RemotePeer[] {
		if (!this.remoteAll) {
			const all: RemotePeer[] = [];
			for (let i = 0; i < this.peers.length; i++) all.push(this.remotePeer(i));
			this.remoteAll = all;
		}
		return this.remoteAll;
	}

	/**
	 * Replaces a peer whose visible attributes changed (name, status, last
	 * seen) but not what policies depend on (id, key, address). Returns false,
	 * changing nothing, when `peer` is not such an update: build a new index.
	 */
	updatePeer(peer: Peer): boolean {
		const i = this.byKey.get(peer.wgPublicKey);
		if (i === undefined) return false;
		const old = this.peers[i]!;
		if (old.id !== peer.id || old.ip !== peer.ip || old.accountId !== peer.accountId) return false;
		this.peers[i] = peer;
		this.remote[i] = undefined;
		if (this.remoteAll) this.remoteAll[i] = this.remotePeer(i);
		return true;
	}

	/** Members of a group (All: every peer), ascending indices; empty for an unknown group. */
	membersOf(groupId: string): Int32Array {
		const g = this.groupOrdinal.get(groupId);
		return g === undefined ? EMPTY : this.members[g]!;
	}

	/** The account's routes over this index's peers and groups, made on first use. */
	get routing(): RouteIndex {
		this.routingCache ??= RouteIndex.build(
			this,
			this.config.routing,
			this.config.policies,
			this.account.id,
		);
		return this.routingCache;
	}

	/**
	 * Lists whose union (without the viewer) is what `viewer` sees: the
	 * members of the groups its rules connect it to and the peers its routes
	 * link it to; null when it sees everyone.
	 */
	private visibleLists(viewer: number): Int32Array[] | null {
		const groups = this.counterpartGroups(viewer);
		if (groups === null) return null;
		const lists = groups.map((g) => this.members[g]!);
		const linked = this.routing.linked(viewer);
		if (linked.length > 0) {
			// Only the linked peers no rule shows already: most often none, and no list is added.
			const seen = this.seenGroupsOf(viewer)!;
			const extra = linked.filter((t) => !this.peerGroups[t]!.some((g) => seen[g] === 1));
			if (extra.length > 0) lists.push(extra);
		}
		return lists;
	}

	/** Ids of the peers of this index in the group (All: every peer). */
	memberIdsOf(groupId: string): string[] {
		const g = this.groupOrdinal.get(groupId);
		if (g === undefined) return [];
		return Array.from(this.members[g]!, (i) => this.peers[i]!.id);
	}

	isAllGroup(groupId: string): boolean {
		return this.allOrdinal >= 0 && this.groups[this.allOrdinal]!.id === groupId;
	}

	/** Whether `viewer` sees `target` (indices): some enabled rule or some route connects them. */
	isVisible(viewer: number, target: number): boolean {
		if (viewer === target) return false;
		const seen = this.seenGroupsOf(viewer);
		if (seen === null) return true;
		for (const g of this.peerGroups[target]!) if (seen[g] === 1) return true;
		return this.routing.isLinked(viewer, target);
	}

	/** The peers `viewer` sees, ascending (map order), without itself. */
	visibleIndices(viewer: number): Int32Array {
		const lists = this.visibleLists(viewer);
		if (lists === null) {
			const out = new Int32Array(Math.max(0, this.peers.length - 1));
			let k = 0;
			for (let i = 0; i < this.peers.length; i++) if (i !== viewer) out[k++] = i;
			return out;
		}
		if (lists.length === 0) return EMPTY;
		return this.union(lists, viewer);
	}

	visibleCount(viewer: number): number {
		const lists = this.visibleLists(viewer);
		if (lists === null) return Math.max(0, this.peers.length - 1);
		if (lists.length === 0) return 0;
		return this.union(lists, viewer).length;
	}

	/**
	 * Inbound firewall rules of `viewer`: grants ordered by (policy, protocol,
	 * ports), sources ascending within a grant, so equal rule sets are equal lists.
	 *
	 * Most grants reach a viewer through one rule side (one member list): that
	 * side's rules are built once per index, as an array shared by every
	 * viewer it admits, and copied into the answer by Array.prototype.concat
	 * (a native copy), cut around the viewer's own rule when it is a member.
	 * Only a grant reached through several sides is unioned per viewer.
	 */
	firewallRules(viewer: number): FirewallRule[] {
		const { asSource, asDestination } = this.relevant(viewer);
		// Per grant: the rule sides it admits through, or null for All.
		const admitted = new Map<Grant, RuleSide[] | null>();
		const admit = (grant: Grant, side: RuleSide, all: boolean) => {
			const entry = admitted.get(grant);
			if (entry === null) return;
			if (all) admitted.set(grant, null);
			else if (entry) entry.push(side);
			else admitted.set(grant, [side]);
		};
		for (const r of asDestination) {
			const rule = this.rules[r]!;
			admit(rule.grant, rule.sourceSide, rule.sourceAll);
		}
		for (const r of asSource) {
			const rule = this.rules[r]!;
			if (rule.bidirectional) admit(rule.grant, rule.destinationSide, rule.destinationAll);
		}
		const grants = [...admitted.keys()].sort((a, b) => a.order - b.order);
		const parts: FirewallRule[][] = [];
		for (const grant of grants) {
			const sides = admitted.get(grant);
			if (!sides) {
				grant.network ??= {
					source: this.networkSource,
					protocol: grant.protocol,
					ports: grant.ports,
					policyId: grant.policyId,
				};
				parts.push([grant.network]);
			} else if (sides.length === 1 || sides.every((s) => s === sides[0])) {
				const side = sides[0]!;
				const members = this.sideMembers(side);
				const rules = this.sideRules(side, grant, members);
				const at = indexOf(members, viewer);
				if (at < 0) parts.push(rules);
				else parts.push(rules.slice(0, at), rules.slice(at + 1));
			} else {
				const sources = this.union(
					sides.map((side) => this.sideMembers(side)),
					viewer,
				);
				const out: FirewallRule[] = new Array(sources.length);
				for (let k = 0; k < sources.length; k++) out[k] = this.ruleFor(grant, sources[k]!);
				parts.push(out);
			}
		}
		return EMPTY_RULES.concat(...parts);
	}

	/** Members of a rule side (its groups' members, ascending), made on first use. */
	private sideMembers(side: RuleSide): Int32Array {
		side.members ??= this.union(
			side.groups.map((g) => this.members[g]!),
			-1,
		);
		return side.members;
	}

	/** The grant's rule for each member of the side, in member order, made on first use. */
	private sideRules(side: RuleSide, grant: Grant, members: Int32Array): FirewallRule[] {
		if (!side.rules) {
			const rules: FirewallRule[] = new Array(members.length);
			for (let k = 0; k < members.length; k++) rules[k] = this.ruleFor(grant, members[k]!);
			side.rules = rules;
		}
		return side.rules;
	}

	/** The grant's rule admitting peer `source`: one object per (grant, source), shared. */
	private ruleFor(grant: Grant, source: number): FirewallRule {
		if (grant.bySource.length === 0) grant.bySource = new Array(this.peers.length);
		let fr = grant.bySource[source];
		if (fr === undefined) {
			fr = {
				source: this.sourcePrefix(source),
				protocol: grant.protocol,
				ports: grant.ports,
				policyId: grant.policyId,
			};
			grant.bySource[source] = fr;
		}
		return fr;
	}

	/** "ip/32" of a peer, made once per index. */
	private sourcePrefix(i: number): string {
		let p = this.prefixes[i];
		if (p === undefined) {
			p = `${this.peers[i]!.ip}/32`;
			this.prefixes[i] = p;
		}
		return p;
	}

	/**
	 * Whether `target` may appear as its own (/32) source in `viewer`'s
	 * firewall rules. May answer true when it does not; never false when it
	 * does. Used to skip recomputing rules when a peer joins or leaves.
	 */
	explicitSource(viewer: number, target: number): boolean {
		const { asSource, asDestination } = this.relevant(viewer);
		const tg = this.peerGroups[target]!;
		for (const r of asDestination) {
			const rule = this.rules[r]!;
			if (!rule.sourceAll && intersects(rule.sources, tg)) return true;
		}
		for (const r of asSource) {
			const rule = this.rules[r]!;
			if (rule.bidirectional && !rule.destinationAll && intersects(rule.destinations, tg))
				return true;
		}
		return false;
	}

	/**
	 * May `source` reach `destination` with `protocol` on `port`? The first
	 * allowing rule in policy order (then rule order) is the answer.
	 */
	check(source: number, destination: number, protocol: CheckProtocol, port: number): AccessCheck {
		if (source !== destination) {
			const sg = this.peerGroups[source]!;
			const dg = this.peerGroups[destination]!;
			for (const rule of this.rules) {
				const forward = intersects(rule.sources, sg) && intersects(rule.destinations, dg);
				const backward =
					rule.bidirectional && intersects(rule.destinations, sg) && intersects(rule.sources, dg);
				if (
					(forward || backward) &&
					grantAllows(rule.grant.protocol, rule.grant.ports, protocol, port)
				)
					return { allowed: true, policy: rule.policy, rule: rule.rule };
			}
		}
		return { allowed: false, connected: this.isVisible(source, destination) };
	}

	private ordinals(groupIds: readonly string[]): number[] {
		const out: number[] = [];
		for (const id of groupIds) {
			const g = this.groupOrdinal.get(id);
			if (g !== undefined && !out.includes(g)) out.push(g);
		}
		return out;
	}

	private relevant(viewer: number): Relevant {
		let r = this.relevantCache[viewer];
		if (r) return r;
		r = { asSource: [], asDestination: [] };
		const epoch = ++this.ruleEpoch;
		for (const g of this.peerGroups[viewer]!) {
			for (const i of this.rulesBySource[g]!) {
				if (this.ruleMark[i] !== epoch) {
					this.ruleMark[i] = epoch;
					r.asSource.push(i);
				}
			}
		}
		const epoch2 = ++this.ruleEpoch;
		for (const g of this.peerGroups[viewer]!) {
			for (const i of this.rulesByDestination[g]!) {
				if (this.ruleMark[i] !== epoch2) {
					this.ruleMark[i] = epoch2;
					r.asDestination.push(i);
				}
			}
		}
		this.relevantCache[viewer] = r;
		return r;
	}

	/** Groups whose members `viewer` sees, deduplicated; null when that includes All. */
	private counterpartGroups(viewer: number): number[] | null {
		const { asSource, asDestination } = this.relevant(viewer);
		const out: number[] = [];
		const epoch = ++this.groupEpoch;
		const add = (groups: number[]) => {
			for (const g of groups) {
				if (this.groupMark[g] !== epoch) {
					this.groupMark[g] = epoch;
					out.push(g);
				}
			}
		};
		for (const r of asSource) {
			const rule = this.rules[r]!;
			if (rule.destinationAll) return null;
			add(rule.destinations);
		}
		for (const r of asDestination) {
			const rule = this.rules[r]!;
			if (rule.sourceAll) return null;
			add(rule.sources);
		}
		return out;
	}

	private seenGroupsOf(viewer: number): Uint8Array | null {
		const cached = this.seenGroups[viewer];
		if (cached !== undefined) return cached;
		const groups = this.counterpartGroups(viewer);
		let seen: Uint8Array | null = null;
		if (groups !== null) {
			seen = new Uint8Array(this.groups.length);
			for (const g of groups) seen[g] = 1;
		}
		this.seenGroups[viewer] = seen;
		return seen;
	}

	/**
	 * The union of sorted index lists without `except` (-1: none), ascending.
	 * Large unions set bits, 32 peers a word, and read them back in order,
	 * skipping empty words and jumping from one set bit to the next
	 * (O(peers / 32 + answer), no sort); small ones are marked, collected and
	 * sorted.
	 */
	private union(lists: Int32Array[], except: number): Int32Array {
		if (lists.length === 1) return except < 0 ? lists[0]! : without(lists[0]!, except);
		let capacity = 0;
		for (const l of lists) capacity += l.length;
		const n = this.peers.length;
		if (capacity * 32 >= n) {
			const words = this.peerWords;
			for (const l of lists) {
				for (let k = 0; k < l.length; k++) {
					const i = l[k]!;
					words[i >>> 5]! |= 1 << (i & 31);
				}
			}
			if (except >= 0) words[except >>> 5]! &= ~(1 << (except & 31));
			const out = new Int32Array(Math.min(capacity, n));
			let m = 0;
			for (let w = 0; w < words.length; w++) {
				let word = words[w]!;
				if (word === 0) continue;
				words[w] = 0;
				const base = w << 5;
				while (word !== 0) {
					const lowest = word & -word;
					out[m++] = base + 31 - Math.clz32(lowest);
					word ^= lowest;
				}
			}
			return out.subarray(0, m);
		}
		const out = new Int32Array(capacity);
		const epoch = ++this.peerEpoch;
		if (except >= 0) this.peerMark[except] = epoch;
		let m = 0;
		for (const l of lists) {
			for (let k = 0; k < l.length; k++) {
				const i = l[k]!;
				if (this.peerMark[i] !== epoch) {
					this.peerMark[i] = epoch;
					out[m++] = i;
				}
			}
		}
		return out.subarray(0, m).sort();
	}
}

/** Position of `value` in `sorted`, or -1. */
function indexOf(sorted: Int32Array, value: number): number {
	let lo = 0;
	let hi = sorted.length;
	while (lo < hi) {
		const mid = (lo + hi) >>> 1;
		if (sorted[mid]! < value) lo = mid + 1;
		else hi = mid;
	}
	return lo < sorted.length && sorted[lo] === value ? lo : -1;
}

/** `sorted` without `value` (a copy only when it is there). */
function without(sorted: Int32Array, value: number): Int32Array {
	const lo = indexOf(sorted, value);
	if (lo < 0) return sorted;
	const out = new Int32Array(sorted.length - 1);
	out.set(sorted.subarray(0, lo));
	out.set(sorted.subarray(lo + 1), lo);
	return out;
}

function intersects(a: readonly number[], b: readonly number[]): boolean {
	for (const x of a) if (b.includes(x)) return true;
	return false;
}
