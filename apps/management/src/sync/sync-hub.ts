import type { Logger } from "@starling/log";
import type { SelfConfig, SyncResponse } from "@starling/proto";
import type { NetworkChangeSink } from "../app/events.js";
import { readRoutingConfig } from "../app/routing.js";
import { deltaForViewer, MapTransition } from "../core/map-updates.js";
import { computeNetworkMap, type ServiceEndpoints, selfConfigOf } from "../core/network-map.js";
import { type AccessConfig, AccessIndex } from "../core/policy.js";
import { newId } from "../core/random.js";
import type { Account, Peer } from "../domain/types.js";
import type { Store } from "../store/store.js";

/** One open Sync stream, as the hub sees it. The transport seals and writes. */
export interface SyncSink {
	/** Queues one update for sending. */
	write(update: SyncResponse): void;
	/** False while this stream, or management as a whole, has too much unsent. */
	writable(): boolean;
	/** Calls `cb` once when the stream is writable again. */
	onWritable(cb: () => void): void;
	/** Ends the stream with a reason the agent sees. */
	end(code: "replaced" | "deleted" | "shutdown", message: string): void;
	/** The agent said it folds firewall changes rule by rule (SyncRequest.accepts_firewall_changes). */
	readonly acceptsFirewallChanges?: boolean;
}

/**
 * Where the hub records which Sync streams are open (the session rows that
 * make a peer connected). Both return the stored peer after the change, or
 * undefined when it was deleted meanwhile.
 */
export interface SyncSessions {
	open(peer: Peer, streamId: string, since: Date): Promise<Peer | undefined>;
	/** Removes that stream's session only; another stream of the peer may keep it connected. */
	close(peer: Peer, streamId: string, at: Date): Promise<Peer | undefined>;
}

/** A stream this instance holds, as the session row that records it. */
export interface OpenStream {
	peer: Peer;
	streamId: string;
	since: Date;
}

interface Subscriber {
	peerKey: string;
	peerId: string;
	streamId: string;
	/** When the stream opened (ms): a stream opened later elsewhere replaces it. */
	since: number;
	sink: SyncSink;
	sentSerial: number;
	lastSelf: SelfConfig | undefined;
	/**
	 * The snapshot this agent's map was computed from: the next update is the
	 * difference between it and the current snapshot. Indexes are shared by
	 * every subscriber that is up to date, so at most a few are alive.
	 */
	base: AccessIndex | undefined;
	/**
	 * Set while the transport is full. Changed peers meanwhile are remembered
	 * by key only (bounded by the account's size) and sent as one delta from
	 * `base`, or a full map if most of the account changed, once it drains.
	 */
	congested: boolean;
	backlog: Set<string>;
	/** The first full map has not been sent yet (management was busy). */
	needsFull: boolean;
	/** When the relay token this agent holds was issued and expires (0: none). */
	relayIssuedAt: number;
	relayExpiresAt: number;
}

interface AccountState {
	account: Account;
	peers: Map<string, Peer>;
	config: AccessConfig;
	/** Index of the current peers and config; rebuilt lazily after a structural change. */
	index: AccessIndex | undefined;
	/** The index built last, whose firewall rule objects the next one may share. */
	lastIndex: AccessIndex | undefined;
	subscribers: Map<string, Subscriber>;
	serial: number;
	/** The store's revision of the account (getAccountRevision) that was loaded last. */
	revision: number;
	pending: Map<string, Peer | null>;
	/** The account changed in the store (here or elsewhere): reload it before the next push. */
	reloadNeeded: boolean;
	reloading: Promise<boolean> | undefined;
	flushTimer: NodeJS.Timeout | undefined;
	flushing: boolean;
	flushAgain: boolean;
}

export interface SyncHubOptions {
	store: Store;
	sessions: SyncSessions;
	logger: Logger;
	endpoints: ServiceEndpoints;
	/** Changes within this window are pushed together. */
	flushDelayMs?: number;
	heartbeatIntervalMs?: number;
	now?: () => Date;
	/** Told how long each full map and each delta push over an account took. */
	observeMapSeconds?: (kind: "full" | "delta", seconds: number) => void;
}

export interface SyncHubStats {
	accounts: number;
	streams: number;
	updatesSent: number;
	fullMapsSent: number;
	/** Duration of the last push (recompute and deltas), ms. */
	lastPushMs: number;
}

/**
 * Keeps every connected agent's network map current. Holds each account's
 * peers, groups and policies in memory while any of its agents is
 * connected, batches changes for `flushDelayMs`, and sends each affected
 * agent a delta from the snapshot it last received (see core/map-updates.ts);
 * a full map on connect and after congestion. Peer changes arrive with the
 * peer; group and policy changes as `accessChanged`, after which the
 * account's groups and policies are reloaded from the store and every
 * connected peer whose access they touch gets the difference in one pass.
 *
 * Memory: per account, the peers, the config and one AccessIndex (O(peers +
 * memberships + rules), plus firewall rule objects shared between maps); per
 * subscriber, a reference to the index its map came from. No per-subscriber
 * copy of a map is kept.
 */
export class SyncHub implements NetworkChangeSink {
	private readonly accounts = new Map<string, AccountState>();
	private readonly loading = new Map<string, Promise<AccountState | undefined>>();
	private readonly flushDelayMs: number;
	private readonly heartbeatTimer: NodeJS.Timeout;
	private readonly now: () => Date;
	private closed = false;
	private readonly counters = { updatesSent: 0, fullMapsSent: 0, lastPushMs: 0 };

	constructor(private readonly options: SyncHubOptions) {
		this.flushDelayMs = options.flushDelayMs ?? 50;
		this.now = options.now ?? (() => new Date());
		this.heartbeatTimer = setInterval(
			() => this.heartbeat(),
			options.heartbeatIntervalMs ?? 25_000,
		);
		this.heartbeatTimer.unref();
	}

	stats(): SyncHubStats {
		let streams = 0;
		for (const s of this.accounts.values()) streams += s.subscribers.size;
		return { accounts: this.accounts.size, streams, ...this.counters };
	}

	/** Registers an open Sync stream for `peer` and sends it its full map. */
	async subscribe(peer: Peer, sink: SyncSink): Promise<() => Promise<void>> {
		const streamId = newId();
		const since = this.now();
		const opened = await this.options.sessions.open(peer, streamId, since);
		if (!opened) {
			// Deleted between the caller's read and the session write: its
			// removal has already been pushed, and attaching the caller's copy
			// would put it back into the others' maps.
			sink.end("deleted", "this peer has been deleted from the network");
			return async () => {};
		}
		const closeSession = async () => {
			await this.options.sessions.close(peer, streamId, this.now());
		};
		const attached = await this.attach(opened, streamId, since, sink).catch(
			async (err: unknown) => {
				await closeSession();
				throw err;
			},
		);
		if (!attached) {
			await closeSession();
			return async () => {};
		}
		const { state, sub } = attached;
		return async () => {
			const current = state.subscribers.get(peer.wgPublicKey) === sub;
			if (current) state.subscribers.delete(peer.wgPublicKey);
			if (this.closed) return;
			// Only this stream's session goes: a newer one (here or on another
			// instance) keeps the peer connected.
			const after = await this.options.sessions.close(peer, streamId, this.now());
			if (after && state.peers.get(peer.wgPublicKey)?.id === after.id) {
				this.setPeer(state, after);
				this.enqueue(state, after.wgPublicKey, after);
			}
			this.maybeEvict(state);
		};
	}

	/** Adds the subscriber to its account's state and sends its first map; undefined when it was ended. */
	private async attach(
		peer: Peer,
		streamId: string,
		since: Date,
		sink: SyncSink,
	): Promise<{ state: AccountState; sub: Subscriber } | undefined> {
		const state = await this.load(peer.accountId);
		if (state?.reloadNeeded && !(await this.reload(state))) {
			// A map from data that could not be read is never sent: the agent retries.
			sink.end("shutdown", "management cannot read its store right now; try again");
			return undefined;
		}
		if (!state || this.closed) {
			sink.end("shutdown", "management is shutting down");
			return undefined;
		}
		// The account's state may have been dropped (no subscribers) while we waited: start over.
		if (this.accounts.get(peer.accountId) !== state)
			return this.attach(peer, streamId, since, sink);
		const previous = state.subscribers.get(peer.wgPublicKey);
		const sub: Subscriber = {
			peerKey: peer.wgPublicKey,
			peerId: peer.id,
			streamId,
			since: since.getTime(),
			sink,
			sentSerial: 0,
			lastSelf: undefined,
			base: undefined,
			congested: false,
			backlog: new Set(),
			needsFull: false,
			relayIssuedAt: 0,
			relayExpiresAt: 0,
		};
		state.subscribers.set(peer.wgPublicKey, sub);
		previous?.sink.end("replaced", "replaced by a newer Sync stream of the same peer");
		this.setPeer(state, peer);
		if (sink.writable()) {
			this.sendFull(state, sub);
		} else {
			// Everyone is reconnecting at once: queue for a turn rather than
			// pile full maps into memory.
			sub.needsFull = true;
			this.holdBack(state, sub);
		}
		this.enqueue(state, peer.wgPublicKey, peer);
		return { state, sub };
	}

	/**
	 * The account changed in the store, written by another instance (or
	 * found by the periodic check): reload it and push the difference within
	 * the batching window (many calls within the window make one reload).
	 * Ignored when no agent of the account is connected here.
	 */
	refreshAccount(accountId: string): void {
		this.accessChanged(accountId);
	}

	/** Schedules a push for every held account whose last reload failed (the periodic check calls it). */
	retryFailedReloads(): void {
		for (const state of this.accounts.values()) {
			if (state.reloadNeeded && !state.reloading) this.schedule(state);
		}
	}

	/** The accounts held here (an agent of theirs is connected), each with the revision loaded last. */
	heldAccountRevisions(): Map<string, number> {
		const out = new Map<string, number>();
		for (const [id, state] of this.accounts) out.set(id, state.revision);
		return out;
	}

	/**
	 * The routing config (routes, networks, resources, routers) held for an
	 * account, as loaded last; undefined while no agent of it is connected.
	 * For diagnostics and tests: maps are computed from it.
	 */
	heldRoutingConfig(accountId: string): AccessConfig["routing"] | undefined {
		return this.accounts.get(accountId)?.config.routing;
	}

	/**
	 * A Sync stream of the peer opened on another instance at `sinceMs`:
	 * the stream this instance holds for it, if older, ends as replaced.
	 */
	streamOpenedElsewhere(peerKey: string, streamId: string, sinceMs: number): void {
		for (const state of this.accounts.values()) {
			const sub = state.subscribers.get(peerKey);
			if (!sub || sub.streamId === streamId || sub.since > sinceMs) continue;
			state.subscribers.delete(peerKey);
			sub.sink.end(
				"replaced",
				"replaced by a newer Sync stream of the same peer on another instance",
			);
		}
	}

	/** Every stream held here, as the sessions that record them. */
	openStreams(): OpenStream[] {
		const out: OpenStream[] = [];
		for (const state of this.accounts.values()) {
			for (const sub of state.subscribers.values()) {
				const peer = state.peers.get(sub.peerKey);
				if (peer) out.push({ peer, streamId: sub.streamId, since: new Date(sub.since) });
			}
		}
		return out;
	}

	peerChanged(peer: Peer): void {
		const state = this.accounts.get(peer.accountId);
		if (!state) return;
		const known = state.peers.get(peer.wgPublicKey);
		// A new peer: its group memberships (All, the setup key's auto-groups) are in the store.
		if (!known || known.id !== peer.id) state.reloadNeeded = true;
		this.setPeer(state, peer);
		this.enqueue(state, peer.wgPublicKey, peer);
	}

	peerRemoved(peer: Peer): void {
		const state = this.accounts.get(peer.accountId);
		if (!state) return;
		if (state.peers.get(peer.wgPublicKey)?.id === peer.id) {
			state.peers.delete(peer.wgPublicKey);
			state.index = undefined;
		}
		const sub = state.subscribers.get(peer.wgPublicKey);
		if (sub && sub.peerId === peer.id) {
			state.subscribers.delete(peer.wgPublicKey);
			sub.sink.end("deleted", "this peer has been deleted from the network");
		}
		this.enqueue(state, peer.wgPublicKey, null);
	}

	accessChanged(accountId: string): void {
		const state = this.accounts.get(accountId);
		if (!state) return;
		state.reloadNeeded = true;
		this.schedule(state);
	}

	/** Pushes pending changes now (tests and shutdown). */
	async flushAll(): Promise<void> {
		await Promise.all([...this.accounts.values()].map((s) => this.flush(s)));
	}

	close(): void {
		this.closed = true;
		clearInterval(this.heartbeatTimer);
		for (const state of this.accounts.values()) {
			if (state.flushTimer) clearTimeout(state.flushTimer);
			for (const sub of state.subscribers.values())
				sub.sink.end("shutdown", "management is shutting down");
			state.subscribers.clear();
		}
		this.accounts.clear();
	}

	private async load(accountId: string): Promise<AccountState | undefined> {
		const existing = this.accounts.get(accountId);
		if (existing) return existing;
		let pending = this.loading.get(accountId);
		if (!pending) {
			pending = (async () => {
				const { store } = this.options;
				const snapshot = await store.read(async (tx) => {
					const account = await tx.getAccount(accountId);
					if (!account) return undefined;
					return {
						account,
						revision: (await tx.getAccountRevision(accountId)) ?? 0,
						peers: await tx.listPeers(accountId),
						groups: await tx.listGroups(accountId),
						policies: await tx.listPolicies(accountId),
						routing: await readRoutingConfig(tx, accountId),
					};
				});
				if (!snapshot) return undefined;
				const { account, revision, peers, groups, policies, routing } = snapshot;
				const state: AccountState = {
					account,
					peers: new Map(peers.map((p) => [p.wgPublicKey, p])),
					config: { groups, policies, routing },
					index: undefined,
					lastIndex: undefined,
					subscribers: new Map(),
					// Serials start from the clock so they keep rising across restarts.
					serial: Date.now(),
					revision,
					pending: new Map(),
					reloadNeeded: false,
					reloading: undefined,
					flushTimer: undefined,
					flushing: false,
					flushAgain: false,
				};
				this.accounts.set(accountId, state);
				return state;
			})().finally(() => this.loading.delete(accountId));
			this.loading.set(accountId, pending);
		}
		return pending;
	}

	/**
	 * Reloads the account, its peers, groups, policies and routing config
	 * (routes, networks, resources, routers) from one snapshot
	 * (one reload at a time) and queues every peer that differs from what is
	 * held. False when the store could not be read: the held state is kept
	 * as it was and `reloadNeeded` stays set (the periodic check retries), so
	 * nothing is pushed from data that was not read.
	 */
	private reload(state: AccountState): Promise<boolean> {
		state.reloading ??= (async () => {
			try {
				while (state.reloadNeeded) {
					state.reloadNeeded = false;
					const { store } = this.options;
					const id = state.account.id;
					const snapshot = await store.read(async (tx) => ({
						account: await tx.getAccount(id),
						revision: await tx.getAccountRevision(id),
						peers: await tx.listPeers(id),
						groups: await tx.listGroups(id),
						policies: await tx.listPolicies(id),
						routing: await readRoutingConfig(tx, id),
					}));
					// A deleted account keeps its last state until its agents leave.
					if (!snapshot.account) return true;
					this.applySnapshot(state, { ...snapshot, account: snapshot.account });
				}
				return true;
			} catch (err) {
				state.reloadNeeded = true;
				this.options.logger.error(
					{ err, accountId: state.account.id },
					"reloading the account failed; keeping the previous state and pushing nothing",
				);
				return false;
			} finally {
				state.reloading = undefined;
			}
		})();
		return state.reloading;
	}

	/** Replaces the held account with a snapshot, queueing the peers that differ. */
	private applySnapshot(
		state: AccountState,
		snapshot: {
			account: Account;
			revision: number | undefined;
			peers: Peer[];
			groups: AccessConfig["groups"];
			policies: AccessConfig["policies"];
			routing: NonNullable<AccessConfig["routing"]>;
		},
	): void {
		const fresh = new Map(snapshot.peers.map((p) => [p.wgPublicKey, p]));
		for (const [key, held] of state.peers) {
			const now = fresh.get(key);
			if (now && now.id === held.id) continue;
			// Deleted (or re-registered under a new id) in the store.
			state.peers.delete(key);
			state.index = undefined;
			state.pending.set(key, null);
			const sub = state.subscribers.get(key);
			if (sub && sub.peerId === held.id && !now) {
				state.subscribers.delete(key);
				sub.sink.end("deleted", "this peer has been deleted from the network");
			}
		}
		for (const [key, peer] of fresh) {
			const held = state.peers.get(key);
			if (held && samePeer(held, peer)) continue;
			this.setPeer(state, peer);
			state.pending.set(key, peer);
		}
		// Routes and networks are part of the config: a change to them rebuilds the index.
		const config = {
			groups: snapshot.groups,
			policies: snapshot.policies,
			routing: snapshot.routing,
		};
		if (
			JSON.stringify(config) !== JSON.stringify(state.config) ||
			JSON.stringify(snapshot.account) !== JSON.stringify(state.account)
		) {
			state.config = config;
			state.account = snapshot.account;
			state.index = undefined;
		}
		if (snapshot.revision !== undefined) state.revision = snapshot.revision;
	}

	/** Records the latest version of a peer, keeping the index when only its attributes changed. */
	private setPeer(state: AccountState, peer: Peer): void {
		const known = state.peers.get(peer.wgPublicKey);
		state.peers.set(peer.wgPublicKey, peer);
		if (!known || known.id !== peer.id || known.ip !== peer.ip || !state.index?.updatePeer(peer)) {
			state.index = undefined;
		}
	}

	/** The index of the account as it is now. */
	private current(state: AccountState): AccessIndex {
		if (!state.index) {
			state.index = AccessIndex.build(
				state.account,
				state.peers.values(),
				state.config,
				state.lastIndex,
			);
			state.lastIndex = state.index;
		}
		return state.index;
	}

	private maybeEvict(state: AccountState): void {
		if (
			state.subscribers.size === 0 &&
			state.pending.size === 0 &&
			!state.flushTimer &&
			!state.flushing
		) {
			this.accounts.delete(state.account.id);
		}
	}

	private enqueue(state: AccountState, key: string, peer: Peer | null): void {
		state.pending.set(key, peer);
		this.schedule(state);
	}

	private schedule(state: AccountState): void {
		if (!state.flushTimer && !this.closed) {
			state.flushTimer = setTimeout(() => {
				state.flushTimer = undefined;
				void this.flush(state).then(() => this.maybeEvict(state));
			}, this.flushDelayMs);
		}
	}

	private async flush(state: AccountState): Promise<void> {
		if (state.flushing) {
			state.flushAgain = true;
			return;
		}
		state.flushing = true;
		try {
			do {
				state.flushAgain = false;
				// Pending changes wait (unsent) for a reload that succeeds.
				if (state.reloadNeeded && !(await this.reload(state))) return;
				if (this.closed) return;
				this.push(state);
			} while (state.flushAgain || state.reloadNeeded);
		} catch (err) {
			this.options.logger.error({ err, accountId: state.account.id }, "pushing map updates failed");
		} finally {
			state.flushing = false;
		}
	}

	/** Sends every subscriber whose map changed the difference from its base. */
	private push(state: AccountState): void {
		const next = this.current(state);
		const changes = state.pending;
		if (changes.size === 0 && [...state.subscribers.values()].every((s) => s.base === next)) {
			return;
		}
		const started = performance.now();
		state.pending = new Map();
		state.serial += 1;
		const transitions = new Map<AccessIndex, MapTransition>();
		let sent = 0;
		for (const sub of state.subscribers.values()) {
			if (sub.congested) {
				for (const key of changes.keys()) sub.backlog.add(key);
				continue;
			}
			const base = sub.base;
			if (!base) continue;
			let t = transitions.get(base);
			if (!t) {
				t = new MapTransition(base, next, changes);
				transitions.set(base, t);
			}
			const delta = deltaForViewer(
				sub.peerKey,
				t,
				sub.lastSelf,
				sub.sentSerial,
				state.serial,
				sub.sink.acceptsFirewallChanges === true,
			);
			sub.base = next;
			if (!delta) continue;
			sub.sentSerial = state.serial;
			if (delta.self) sub.lastSelf = delta.self;
			this.counters.updatesSent++;
			sent++;
			this.write(state, sub, { update: { $case: "delta", value: delta } });
		}
		const ms = performance.now() - started;
		this.counters.lastPushMs = ms;
		this.options.observeMapSeconds?.("delta", ms / 1000);
		this.options.logger.debug(
			{
				accountId: state.account.id,
				serial: state.serial,
				changes: changes.size,
				sent,
				ms,
			},
			"pushed map updates",
		);
	}

	private sendFull(state: AccountState, sub: Subscriber): void {
		const index = this.current(state);
		const viewer = index.indexOfKey(sub.peerKey);
		if (viewer === undefined) return;
		const started = performance.now();
		const map = computeNetworkMap(index, viewer, this.options.endpoints, state.serial);
		this.options.observeMapSeconds?.("full", (performance.now() - started) / 1000);
		sub.base = index;
		sub.sentSerial = state.serial;
		sub.lastSelf = selfConfigOf(index.peerAt(viewer), state.account);
		sub.relayIssuedAt = Date.now();
		sub.relayExpiresAt = map.relay?.tokenExpiresUnixMs ?? 0;
		this.counters.fullMapsSent++;
		this.write(state, sub, { update: { $case: "full", value: map } });
	}

	private write(state: AccountState, sub: Subscriber, update: SyncResponse): void {
		sub.sink.write(update);
		if (!sub.sink.writable()) this.holdBack(state, sub);
	}

	/** Stops sending to `sub` until its transport has room, then catches it up in one message. */
	private holdBack(state: AccountState, sub: Subscriber): void {
		if (sub.congested) return;
		sub.congested = true;
		sub.sink.onWritable(() => {
			if (state.subscribers.get(sub.peerKey) !== sub) return;
			sub.congested = false;
			if (sub.needsFull) {
				sub.needsFull = false;
				sub.backlog.clear();
				this.sendFull(state, sub);
			} else {
				this.catchUp(state, sub);
			}
		});
	}

	private catchUp(state: AccountState, sub: Subscriber): void {
		const keys = sub.backlog;
		sub.backlog = new Set();
		const next = this.current(state);
		if (!sub.base || keys.size * 2 > state.peers.size) {
			this.sendFull(state, sub);
			return;
		}
		if (keys.size === 0 && sub.base === next) return;
		const changes = new Map<string, Peer | null>();
		for (const key of keys) changes.set(key, state.peers.get(key) ?? null);
		const t = new MapTransition(sub.base, next, changes);
		// Most of the account's access changed: a full map is as small and cheaper to make.
		if (t.scope === "all" && state.peers.size > 64) {
			this.sendFull(state, sub);
			return;
		}
		const delta = deltaForViewer(
			sub.peerKey,
			t,
			sub.lastSelf,
			sub.sentSerial,
			state.serial + 1,
			sub.sink.acceptsFirewallChanges === true,
		);
		sub.base = next;
		if (!delta) return;
		state.serial += 1;
		sub.sentSerial = state.serial;
		if (delta.self) sub.lastSelf = delta.self;
		this.counters.updatesSent++;
		this.write(state, sub, { update: { $case: "delta", value: delta } });
	}

	/**
	 * Relay tokens are short-lived: once half of an agent's token lifetime has
	 * passed, send it a fresh one (a delta carrying only the relay config).
	 */
	private refreshRelayToken(state: AccountState, sub: Subscriber, now: number): void {
		const relayFor = this.options.endpoints.relayFor;
		if (!relayFor || sub.relayExpiresAt === 0) return;
		if (now < sub.relayIssuedAt + (sub.relayExpiresAt - sub.relayIssuedAt) / 2) return;
		const peer = state.peers.get(sub.peerKey);
		const relay = peer ? relayFor(peer) : undefined;
		if (!relay) return;
		state.serial += 1;
		const delta = {
			baseSerial: sub.sentSerial,
			serial: state.serial,
			upsertedPeers: [],
			removedPeerKeys: [],
			self: undefined,
			signal: undefined,
			stunServers: undefined,
			relay,
			firewallRules: undefined,
			firewallChanges: undefined,
		};
		sub.sentSerial = state.serial;
		sub.relayIssuedAt = now;
		sub.relayExpiresAt = relay.tokenExpiresUnixMs;
		this.counters.updatesSent++;
		this.write(state, sub, { update: { $case: "delta", value: delta } });
	}

	private heartbeat(): void {
		const now = Date.now();
		for (const state of this.accounts.values()) {
			for (const sub of state.subscribers.values()) {
				if (sub.congested) continue;
				this.refreshRelayToken(state, sub, now);
				if (sub.congested) continue;
				this.write(state, sub, {
					update: { $case: "heartbeat", value: { serverTimeUnixMs: now, serial: sub.sentSerial } },
				});
			}
		}
	}
}

/** Same stored fields (peers are plain data: dates, strings, booleans). */
function samePeer(a: Peer, b: Peer): boolean {
	return JSON.stringify(a) === JSON.stringify(b);
}
