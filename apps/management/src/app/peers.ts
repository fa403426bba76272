import { hashSecret } from "../core/secrets.js";
import type { Peer, PeerSystemInfo } from "../domain/types.js";
import type { PeerUpdate, Store } from "../store/store.js";
import { AppError, notFound } from "./errors.js";
import type { NetworkChangeSink } from "./events.js";

export interface LoginInput {
	wgPublicKey: string;
	/** Empty when logging an already-registered peer back in. */
	setupKey: string;
	system: PeerSystemInfo;
}

/**
 * Logs a peer in by its WireGuard key, registering it first with a setup key
 * when the key is new. Refusals are AppError(403) with a one-line reason.
 */
export async function loginPeer(
	store: Store,
	sink: NetworkChangeSink,
	input: LoginInput,
	now: Date,
): Promise<{ peer: Peer; registered: boolean }> {
	const existing = await store.getPeerByPublicKey(input.wgPublicKey);
	if (existing) {
		const peer = (await store.recordPeerLogin(existing.id, input.system, now)) ?? existing;
		return { peer, registered: false };
	}
	if (!input.setupKey) {
		throw new AppError(403, "peer is not registered: a setup key is required for the first login");
	}
	const result = await store.registerPeer(hashSecret(input.setupKey.trim().toUpperCase()), {
		wgPublicKey: input.wgPublicKey,
		system: input.system,
		name: input.system.hostname || "peer",
		now,
	});
	if (!result.ok) {
		// Another login with the same WireGuard key may have registered it first.
		const raced = await store.getPeerByPublicKey(input.wgPublicKey);
		if (raced) return { peer: raced, registered: false };
		throw new AppError(403, result.reason);
	}
	sink.peerChanged(result.peer);
	return { peer: result.peer, registered: true };
}

export async function updatePeer(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	peerId: string,
	update: PeerUpdate,
): Promise<Peer> {
	const peer = await store.updatePeer(accountId, peerId, update);
	if (!peer) throw notFound("peer");
	sink.peerChanged(peer);
	return peer;
}

export async function deletePeer(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	peerId: string,
): Promise<Peer> {
	const peer = await store.deletePeer(accountId, peerId);
	if (!peer) throw notFound("peer");
	sink.peerRemoved(peer);
	return peer;
}
