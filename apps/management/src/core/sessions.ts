import type { ManagementInstance, Peer } from "../domain/types.js";

// The rules of connected state when several management instances share one
// database: a peer is connected while it holds a Sync session, and a session
// lives as long as the instance holding it keeps its heartbeat fresh.

/**
 * The instances other than `selfId` whose last heartbeat is older than
 * `expireAfterMs` at `now`: dead, so their sessions are expired. An
 * instance never expires itself (it would be alive to decide it).
 */
export function deadInstances(
	instances: readonly ManagementInstance[],
	selfId: string,
	now: Date,
	expireAfterMs: number,
): ManagementInstance[] {
	const cutoff = now.getTime() - expireAfterMs;
	return instances.filter((i) => i.id !== selfId && i.heartbeatAt.getTime() < cutoff);
}

/**
 * The peer as it should be stored once it holds `sessions` Sync sessions:
 * connected while it holds any; `lastSeen` moves to `at` whenever it
 * connects or is seen leaving. Undefined when nothing changes.
 */
export function peerWithSessions(peer: Peer, sessions: number, at: Date): Peer | undefined {
	const connected = sessions > 0;
	if (peer.connected === connected && !connected) return undefined;
	return { ...peer, connected, lastSeen: at };
}
