import type { Logger } from "@starling/log";
import type { SelfConfig, SyncResponse } from "@starling/proto";
import type { NetworkChangeSink } from "../app/events.js";
import { deltaForViewer } from "../core/map-updates.js";
import { computeNetworkMap, type ServiceEndpoints, selfConfigOf } from "../core/network-map.js";
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
}

interface Subscriber {
	peerKey: string;
	peerId: string;
	sink: SyncSink;
	sentSerial: number;
	lastSelf: SelfConfig | undefined;
	/**
	 * Set while the transport is full. Changes meanwhile are remembered by
	 * key only (bounded by the account's size) and sent as one delta, or a
	 * full map if most of the account changed, once the stream drains.
	 */
	congested: boolean;
	backlog: Set<string>;
	/** The first full map has not been sent yet (management was busy). */
	needsFull: boolean;
}

interface AccountState {
	account: Account;
	peers: Map<string, Peer>;
	subscribers: Map<string, Subscriber>;
	serial: number;
	pending: Map<string, Peer | null>;
	flushTimer: NodeJS.Timeout | undefined;
}

export interface SyncHubOptions {
	store: Store;
	logger: Logger;
	endpoints: ServiceEndpoints;
	/** Changes within this window are pushed together. */
	flushDelayMs?: number;
	heartbeatIntervalMs?: number;
	now?: () => Date;
}

export interface SyncHubStats {
	accounts: number;
	streams: number;
	updatesSent: number;
	fullMapsSent: number;
}

/**
 * Keeps every connected agent's network map current. Holds each account's
 * peers in memory while any of its agents is connected, batches changes for
 * `flushDelayMs`, and sends each affected agent a delta from the serial it
 * last received; a full map on connect and after congestion.
 */
export class SyncHub implements NetworkChangeSink {
	private readonly accounts = new Map<string, AccountState>();
	private readonly loading = new Map<string, Promise<AccountState | undefined>>();
	private readonly flushDelayMs: number;
	private readonly heartbeatTimer: NodeJS.Timeout;
	private readonly now: () => Date;
	private closed = false;
	private readonly counters = { updatesSent: 0, fullMapsSent: 0 };

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
		const state = await this.load(peer.accountId);
		if (!state || this.closed) {
			sink.end("shutdown", "management is shutting down");
			return async () => {};
		}
		const connected =
			(await this.options.store.setPeerConnected(peer.id, true, this.now())) ?? peer;
		const previous = state.subscribers.get(peer.wgPublicKey);
		const sub: Subscriber = {
			peerKey: peer.wgPublicKey,
			peerId: peer.id,
			sink,
			sentSerial: 0,
			lastSelf: undefined,
			congested: false,
			backlog: new Set(),
			needsFull: false,
		};
		state.subscribers.set(peer.wgPublicKey, sub);
		previous?.sink.end("replaced", "replaced by a newer Sync stream of the same peer");
		state.peers.set(connected.wgPublicKey, connected);
		if (sink.writable()) {
			this.sendFull(state, sub);
		} else {
			// Everyone is reconnecting at once: queue for a turn rather than
			// pile full maps into memory.
			sub.needsFull = true;
			this.holdBack(state, sub);
		}
		this.enqueue(state, connected.wgPublicKey, connected);

		return async () => {
			if (state.subscribers.get(peer.wgPublicKey) !== sub) return;
			state.subscribers.delete(peer.wgPublicKey);
			if (this.closed) return;
			const current = state.peers.get(peer.wgPublicKey);
			if (!current) return;
			const disconnected = await this.options.store.setPeerConnected(peer.id, false, this.now());
			if (disconnected && state.peers.has(peer.wgPublicKey)) {
				state.peers.set(disconnected.wgPublicKey, disconnected);
				this.enqueue(state, disconnected.wgPublicKey, disconnected);
			}
			this.maybeEvict(state);
		};
	}

	peerChanged(peer: Peer): void {
		const state = this.accounts.get(peer.accountId);
		if (!state) return;
		state.peers.set(peer.wgPublicKey, peer);
		this.enqueue(state, peer.wgPublicKey, peer);
	}

	peerRemoved(peer: Peer): void {
		const state = this.accounts.get(peer.accountId);
		if (!state) return;
		state.peers.delete(peer.wgPublicKey);
		const sub = state.subscribers.get(peer.wgPublicKey);
		if (sub) {
			state.subscribers.delete(peer.wgPublicKey);
			sub.sink.end("deleted", "this peer has been deleted from the network");
		}
		this.enqueue(state, peer.wgPublicKey, null);
	}

	/** Pushes pending changes now (tests and shutdown). */
	flushAll(): void {
		for (const state of this.accounts.values()) this.flush(state);
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
				const account = await this.options.store.getAccount(accountId);
				if (!account) return undefined;
				const peers = await this.options.store.listPeers(accountId);
				const state: AccountState = {
					account,
					peers: new Map(peers.map((p) => [p.wgPublicKey, p])),
					subscribers: new Map(),
					// Serials start from the clock so they keep rising across restarts.
					serial: Date.now(),
					pending: new Map(),
					flushTimer: undefined,
				};
				this.accounts.set(accountId, state);
				return state;
			})().finally(() => this.loading.delete(accountId));
			this.loading.set(accountId, pending);
		}
		return pending;
	}

	private maybeEvict(state: AccountState): void {
		if (state.subscribers.size === 0 && state.pending.size === 0 && !state.flushTimer) {
			this.accounts.delete(state.account.id);
		}
	}

	private enqueue(state: AccountState, key: string, peer: Peer | null): void {
		state.pending.set(key, peer);
		if (!state.flushTimer && !this.closed) {
			state.flushTimer = setTimeout(() => {
				state.flushTimer = undefined;
				this.flush(state);
				this.maybeEvict(state);
			}, this.flushDelayMs);
		}
	}

	private flush(state: AccountState): void {
		if (state.pending.size === 0) return;
		const started = performance.now();
		const changes = state.pending;
		state.pending = new Map();
		state.serial += 1;
		let sent = 0;
		for (const sub of state.subscribers.values()) {
			if (sub.congested) {
				for (const key of changes.keys()) sub.backlog.add(key);
				continue;
			}
			const viewer = state.peers.get(sub.peerKey);
			if (!viewer) continue;
			const delta = deltaForViewer(
				viewer,
				changes,
				state.account,
				sub.lastSelf,
				sub.sentSerial,
				state.serial,
			);
			if (!delta) continue;
			sub.sentSerial = state.serial;
			if (delta.self) sub.lastSelf = delta.self;
			this.counters.updatesSent++;
			sent++;
			this.write(state, sub, { update: { $case: "delta", value: delta } });
		}
		this.options.logger.debug(
			{
				accountId: state.account.id,
				serial: state.serial,
				changes: changes.size,
				sent,
				ms: performance.now() - started,
			},
			"pushed map updates",
		);
	}

	private sendFull(state: AccountState, sub: Subscriber): void {
		const viewer = state.peers.get(sub.peerKey);
		if (!viewer) return;
		const map = computeNetworkMap(
			viewer,
			state.peers.values(),
			state.account,
			this.options.endpoints,
			state.serial,
		);
		sub.sentSerial = state.serial;
		sub.lastSelf = selfConfigOf(viewer, state.account);
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
		if (keys.size === 0) return;
		if (keys.size * 2 > state.peers.size) {
			this.sendFull(state, sub);
			return;
		}
		const viewer = state.peers.get(sub.peerKey);
		if (!viewer) return;
		const changes = new Map<string, Peer | null>();
		for (const key of keys) changes.set(key, state.peers.get(key) ?? null);
		const delta = deltaForViewer(
			viewer,
			changes,
			state.account,
			sub.lastSelf,
			sub.sentSerial,
			state.serial,
		);
		if (!delta) return;
		sub.sentSerial = state.serial;
		if (delta.self) sub.lastSelf = delta.self;
		this.counters.updatesSent++;
		this.write(state, sub, { update: { $case: "delta", value: delta } });
	}

	private heartbeat(): void {
		const now = Date.now();
		for (const state of this.accounts.values()) {
			for (const sub of state.subscribers.values()) {
				if (sub.congested) continue;
				this.write(state, sub, {
					update: { $case: "heartbeat", value: { serverTimeUnixMs: now, serial: sub.sentSerial } },
				});
			}
		}
	}
}
