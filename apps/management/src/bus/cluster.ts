import type { Bus, BusSubscription } from "@starling/bus";
import type { Logger } from "@starling/log";
import type { NetworkChangeSink } from "../app/events.js";
import {
	closeSyncSession,
	deregisterInstance,
	heartbeat,
	openSyncSession,
	registerInstance,
	restoreSyncSessions,
} from "../app/sessions.js";
import type { Peer } from "../domain/types.js";
import type { Store, StoreWrites } from "../store/store.js";
import type { SyncHub, SyncSessions } from "../sync/sync-hub.js";
import { accountsBehind, reloadForMessage, streamOpenedElsewhere } from "./decisions.js";
import {
	ALL_ACCOUNTS_SUBJECT,
	accountSubject,
	decodeAccountChanged,
	decodeStreamOpened,
	encodeAccountChanged,
	encodeStreamOpened,
	STREAM_OPENED_SUBJECT,
} from "./messages.js";

export interface ClusterOptions {
	bus: Bus;
	store: Store;
	instanceId: string;
	logger: Logger;
	/** How often held accounts' stored revisions are compared with the loaded ones. */
	checkIntervalMs: number;
	/** How often this instance's heartbeat is stored (and dead instances looked for). */
	heartbeatIntervalMs: number;
	/** An instance whose heartbeat is older than this is dead: its sessions are expired. */
	expireAfterMs: number;
	/** Where Sync sessions are written (a GroupCommit, so a reconnect storm commits in batches); the store by default. */
	sessionWrites?: StoreWrites;
	now?: () => Date;
}

/**
 * This instance among others on one database: records Sync sessions under
 * its id, keeps its heartbeat, expires dead instances' sessions, tells the
 * others (over the bus) which accounts changed and which streams opened,
 * and reloads the accounts it holds when told, or when the periodic check
 * finds their stored revision moved. With the in-process bus it is alone:
 * the same code, no one else listening, and any other instance row in the
 * store is a previous run of this one.
 */
export class ManagementCluster {
	private hub: SyncHub | undefined;
	private readonly subscriptions: BusSubscription[] = [];
	private readonly timers: NodeJS.Timeout[] = [];
	private readonly dirty = new Set<string>();
	private publishScheduled = false;
	private publishing: Promise<void> = Promise.resolve();
	private checking = false;
	private beating = false;
	private storeFailing = { check: false, heartbeat: false };
	private stopBusWatch: (() => void) | undefined;
	private closed = false;
	private readonly now: () => Date;
	private readonly sessionWrites: StoreWrites;

	private constructor(private readonly options: ClusterOptions) {
		this.now = options.now ?? (() => new Date());
		this.sessionWrites = options.sessionWrites ?? options.store;
	}

	/**
	 * Registers the instance (clearing its own sessions of a previous run
	 * with the same id; never touching another live instance's) and tells
	 * the others which accounts that changed.
	 */
	static async register(options: ClusterOptions): Promise<ManagementCluster> {
		const cluster = new ManagementCluster(options);
		const accounts = await registerInstance(
			options.store,
			options.instanceId,
			cluster.now(),
			options.bus.kind === "in-process",
		);
		for (const id of accounts) cluster.accountChanged(id);
		return cluster;
	}

	get instanceId(): string {
		return this.options.instanceId;
	}

	/** Where the hub records its streams: session rows under this instance, announced on the bus. */
	readonly sessions: SyncSessions = {
		open: async (peer: Peer, streamId: string, since: Date) => {
			const after = await openSyncSession(this.sessionWrites, peer, {
				streamId,
				accountId: peer.accountId,
				peerId: peer.id,
				instanceId: this.options.instanceId,
				since,
			});
			this.publish(
				STREAM_OPENED_SUBJECT,
				encodeStreamOpened({
					instance: this.options.instanceId,
					peerKey: peer.wgPublicKey,
					streamId,
					since: since.getTime(),
				}),
			);
			this.accountChanged(peer.accountId);
			return after;
		},
		close: async (peer: Peer, streamId: string, at: Date) => {
			const after = await closeSyncSession(this.sessionWrites, peer, streamId, at);
			this.accountChanged(peer.accountId);
			return after;
		},
	};

	/** A sink for the use cases: tells the hub, then the other instances. */
	sinkFor(hub: SyncHub): NetworkChangeSink {
		return {
			peerChanged: (peer) => {
				hub.peerChanged(peer);
				this.accountChanged(peer.accountId);
			},
			peerRemoved: (peer) => {
				hub.peerRemoved(peer);
				this.accountChanged(peer.accountId);
			},
			accessChanged: (accountId) => {
				hub.accessChanged(accountId);
				this.accountChanged(accountId);
			},
		};
	}

	/** Starts listening to the bus and the timers of the check and the heartbeat. */
	start(hub: SyncHub): void {
		this.hub = hub;
		const { bus, logger, instanceId } = this.options;
		this.subscriptions.push(
			bus.subscribe(ALL_ACCOUNTS_SUBJECT, (payload, subject) => {
				const message = decodeAccountChanged(subject, payload);
				if (message && reloadForMessage(message, instanceId, hub.heldAccountRevisions())) {
					hub.refreshAccount(message.accountId);
				}
			}),
			bus.subscribe(STREAM_OPENED_SUBJECT, (payload) => {
				const message = decodeStreamOpened(payload);
				if (message && streamOpenedElsewhere(message, instanceId)) {
					hub.streamOpenedElsewhere(message.peerKey, message.streamId, message.since);
				}
			}),
		);
		this.stopBusWatch = bus.onStateChange((state, detail) => {
			if (state === "disconnected") {
				logger.warn(
					{ detail },
					"lost the bus; changes from other instances arrive through the periodic check",
				);
			} else if (state === "connected") {
				logger.info({ detail }, "bus is back");
				void this.check();
			}
		});
		const every = (ms: number, fn: () => Promise<void>) => {
			const t = setInterval(() => void fn(), ms);
			t.unref();
			this.timers.push(t);
		};
		every(this.options.checkIntervalMs, () => this.check());
		every(this.options.heartbeatIntervalMs, () => this.heartbeat());
	}

	/**
	 * After a committed change of the account: publish its new revision
	 * (read once for all accounts changed in the same turn of the event loop).
	 */
	accountChanged(accountId: string): void {
		if (this.closed) return;
		this.dirty.add(accountId);
		if (this.publishScheduled) return;
		this.publishScheduled = true;
		setImmediate(() => {
			this.publishScheduled = false;
			this.publishing = this.publishing.then(() => this.publishDirty());
		});
	}

	/** Compares held accounts' stored revisions with the loaded ones; reloads those that moved. */
	async check(): Promise<void> {
		const hub = this.hub;
		if (!hub || this.checking || this.closed) return;
		this.checking = true;
		try {
			const held = hub.heldAccountRevisions();
			if (held.size === 0) return;
			const stored = await this.options.store.read(async (tx) => {
				const out = new Map<string, number | undefined>();
				for (const id of held.keys()) out.set(id, await tx.getAccountRevision(id));
				return out;
			});
			this.storeRecovered("check");
			for (const id of accountsBehind(held, stored)) hub.refreshAccount(id);
			hub.retryFailedReloads();
		} catch (err) {
			this.storeFailed("check", err);
		} finally {
			this.checking = false;
		}
	}

	/** Stores this instance's heartbeat and expires the sessions of dead instances. */
	async heartbeat(): Promise<void> {
		if (this.beating || this.closed) return;
		this.beating = true;
		const { store, instanceId, logger, expireAfterMs } = this.options;
		try {
			const result = await heartbeat(store, instanceId, this.now(), expireAfterMs);
			this.storeRecovered("heartbeat");
			for (const dead of result.expired) {
				logger.warn(
					{ instance: dead.id, heartbeatAt: dead.heartbeatAt.toISOString() },
					"expired the Sync sessions of a management instance whose heartbeat stopped",
				);
			}
			if (result.reRegistered && this.hub) {
				logger.warn(
					"this instance had been taken for dead by another; recording its Sync sessions again",
				);
				const streams = this.hub.openStreams().map(({ peer, streamId, since }) => ({
					peer,
					session: { streamId, accountId: peer.accountId, peerId: peer.id, instanceId, since },
				}));
				for (const id of await restoreSyncSessions(store, streams, this.now()))
					result.accounts.add(id);
			}
			for (const id of result.accounts) {
				this.hub?.refreshAccount(id);
				this.accountChanged(id);
			}
		} catch (err) {
			this.storeFailed("heartbeat", err);
		} finally {
			this.beating = false;
		}
	}

	/**
	 * Stops listening and removes this instance's row and sessions (its
	 * agents are disconnected by the shutdown), telling the others.
	 */
	async close(): Promise<void> {
		if (this.closed) return;
		for (const t of this.timers) clearInterval(t);
		for (const s of this.subscriptions) s.unsubscribe();
		this.stopBusWatch?.();
		await this.publishing;
		try {
			const accounts = await deregisterInstance(
				this.options.store,
				this.options.instanceId,
				this.now(),
			);
			for (const id of accounts) this.dirty.add(id);
			await this.publishDirty();
			await this.options.bus.flush().catch(() => undefined);
		} catch (err) {
			this.options.logger.warn(
				{ err },
				"could not remove this instance's Sync sessions; others expire them when its heartbeat stops",
			);
		}
		this.closed = true;
	}

	private async publishDirty(): Promise<void> {
		if (this.dirty.size === 0) return;
		const ids = [...this.dirty];
		this.dirty.clear();
		let revisions: Map<string, number | undefined> | undefined;
		try {
			revisions = await this.options.store.read(async (tx) => {
				const out = new Map<string, number | undefined>();
				for (const id of ids) out.set(id, await tx.getAccountRevision(id));
				return out;
			});
		} catch {
			// Receivers reload on an unknown revision.
		}
		for (const id of ids) {
			this.publish(
				accountSubject(id),
				encodeAccountChanged({
					instance: this.options.instanceId,
					revision: revisions?.get(id) ?? null,
				}),
			);
		}
	}

	/** A publish is a hint: while the bus is down it may be lost, and the periodic check covers it. */
	private publish(subject: string, payload: Uint8Array): void {
		try {
			this.options.bus.publish(subject, payload);
		} catch (err) {
			this.options.logger.debug({ err, subject }, "publish failed");
		}
	}

	private storeFailed(what: "check" | "heartbeat", err: unknown): void {
		if (this.storeFailing[what]) return;
		this.storeFailing[what] = true;
		this.options.logger.error({ err }, `the ${what} cannot use the store; retrying`);
	}

	private storeRecovered(what: "check" | "heartbeat"): void {
		if (!this.storeFailing[what]) return;
		this.storeFailing[what] = false;
		this.options.logger.info(`the ${what} uses the store again`);
	}
}
