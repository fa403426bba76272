import { deadInstances, peerWithSessions } from "../core/sessions.js";
import type { ManagementInstance, Peer, SyncSession } from "../domain/types.js";
import type { Store, StoreWriter, StoreWrites } from "../store/store.js";

// Sync sessions and instance heartbeats: the connected state of peers when
// several management instances share one database. peers.connected is a
// derived column, rewritten in the same transaction as the sessions it is
// derived from, so REST listings and the account revision see it as before.

/** Sets the stored peer's connected flag from the sessions it holds now; the accounts touched. */
async function refreshConnected(
	tx: StoreWriter,
	peerIds: Iterable<{ accountId: string; peerId: string }>,
	at: Date,
): Promise<Set<string>> {
	const touched = new Set<string>();
	for (const { accountId, peerId } of peerIds) {
		const peer = await tx.getPeer(accountId, peerId);
		if (!peer) continue;
		const after = peerWithSessions(peer, await tx.countSyncSessionsOfPeer(peerId), at);
		if (!after) continue;
		await tx.updatePeer(after);
		touched.add(accountId);
	}
	return touched;
}

/** The peers (with their accounts) holding sessions of `instanceId`. */
async function peersOfInstance(
	tx: StoreWriter,
	instanceId: string,
): Promise<{ accountId: string; peerId: string }[]> {
	const sessions = await tx.listSyncSessionsOfInstance(instanceId);
	const out: { accountId: string; peerId: string }[] = [];
	const seen = new Set<string>();
	for (const s of sessions) {
		if (seen.has(s.peerId)) continue;
		seen.add(s.peerId);
		out.push({ accountId: s.accountId, peerId: s.peerId });
	}
	return out;
}

/**
 * Registers this instance at start: its row (new, or refreshed after a
 * restart with the same id) and none of its old sessions. With
 * `aloneOnDatabase` (one instance, no bus to others) every other instance
 * is a previous run of this one and is removed too, so no peer stays
 * connected across a restart. Returns the accounts whose peers changed.
 */
export function registerInstance(
	store: Store,
	instanceId: string,
	now: Date,
	aloneOnDatabase: boolean,
): Promise<Set<string>> {
	return store.write(async (tx) => {
		const others = aloneOnDatabase
			? (await tx.listInstances()).filter((i) => i.id !== instanceId)
			: [];
		const affected: { accountId: string; peerId: string }[] = [];
		for (const i of [{ id: instanceId }, ...others])
			affected.push(...(await peersOfInstance(tx, i.id)));
		await tx.deleteSyncSessionsOfInstance(instanceId);
		for (const i of others) await tx.deleteInstance(i.id);
		await tx.putInstance({ id: instanceId, startedAt: now, heartbeatAt: now });
		return refreshConnected(tx, affected, now);
	});
}

export interface HeartbeatResult {
	/**
	 * This instance's row was gone (another instance took it for dead, e.g.
	 * after a long pause): it was stored again, and its sessions, which were
	 * expired with it, must be recorded again.
	 */
	reRegistered: boolean;
	/** Instances found dead, whose sessions were expired. */
	expired: ManagementInstance[];
	/** Accounts whose peers changed (disconnected). */
	accounts: Set<string>;
}

/**
 * One heartbeat: refreshes this instance's row, then expires every instance
 * whose heartbeat is older than `expireAfterMs` (its sessions removed, its
 * peers' connected state recomputed). Two transactions, own row first:
 * expiring another instance may wait for that instance's row locks (on
 * PostgreSQL a process frozen inside a transaction keeps them until the
 * server ends its idle transaction), and that wait must never hold back this
 * instance's own heartbeat, or a third instance would take it for dead.
 */
export async function heartbeat(
	store: Store,
	instanceId: string,
	now: Date,
	expireAfterMs: number,
): Promise<HeartbeatResult> {
	const known = await store.write(
		async (tx) => {
			const stored = await tx.touchInstance(instanceId, now);
			if (!stored) await tx.putInstance({ id: instanceId, startedAt: now, heartbeatAt: now });
			return stored;
		},
		{ urgent: true },
	);
	const { expired, accounts } = await store.write(async (tx) => {
		const dead = deadInstances(await tx.listInstances(), instanceId, now, expireAfterMs);
		const affected: { accountId: string; peerId: string }[] = [];
		for (const instance of dead) {
			affected.push(...(await peersOfInstance(tx, instance.id)));
			await tx.deleteInstance(instance.id);
		}
		return { expired: dead, accounts: await refreshConnected(tx, affected, now) };
	});
	return { reRegistered: !known, expired, accounts };
}

/** Removes this instance and its sessions at a graceful stop; the accounts whose peers changed. */
export function deregisterInstance(
	store: Store,
	instanceId: string,
	now: Date,
): Promise<Set<string>> {
	return store.write(async (tx) => {
		const affected = await peersOfInstance(tx, instanceId);
		await tx.deleteInstance(instanceId);
		return refreshConnected(tx, affected, now);
	});
}

/**
 * Records an opened Sync stream and marks the peer connected; the stored
 * peer after, or undefined when it was deleted meanwhile.
 */
export function openSyncSession(
	store: StoreWrites,
	peer: Peer,
	session: SyncSession,
): Promise<Peer | undefined> {
	return store.write(async (tx) => {
		const current = await tx.getPeer(peer.accountId, peer.id);
		if (!current) return undefined;
		await tx.insertSyncSession(session);
		const after = { ...current, connected: true, lastSeen: session.since };
		await tx.updatePeer(after);
		return after;
	});
}

/**
 * Removes one stream's session (only its own: a newer stream of the same
 * peer, here or on another instance, keeps the peer connected); the stored
 * peer after, or undefined when it was deleted meanwhile.
 */
export function closeSyncSession(
	store: StoreWrites,
	peer: Peer,
	streamId: string,
	at: Date,
): Promise<Peer | undefined> {
	return store.write(async (tx) => {
		await tx.deleteSyncSession(streamId);
		const current = await tx.getPeer(peer.accountId, peer.id);
		if (!current) return undefined;
		const after = peerWithSessions(current, await tx.countSyncSessionsOfPeer(peer.id), at);
		if (!after) return current;
		await tx.updatePeer(after);
		return after;
	});
}

/**
 * Records again the sessions of streams this instance still holds (after
 * its row was expired by another instance); peers deleted meanwhile are
 * skipped. The accounts whose peers changed.
 */
export function restoreSyncSessions(
	store: Store,
	sessions: readonly { peer: Peer; session: SyncSession }[],
	now: Date,
): Promise<Set<string>> {
	return store.write(async (tx) => {
		const touched = new Set<string>();
		for (const { peer, session } of sessions) {
			const current = await tx.getPeer(peer.accountId, peer.id);
			if (!current) continue;
			await tx.deleteSyncSession(session.streamId);
			await tx.insertSyncSession(session);
			if (!current.connected) {
				await tx.updatePeer({ ...current, connected: true, lastSeen: now });
				touched.add(peer.accountId);
			}
		}
		return touched;
	});
}
