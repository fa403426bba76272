import { auditEvent, type Initiator } from "../core/audit.js";
import { hashSecret } from "../core/secrets.js";
import type { NewAuditEvent, Peer, PeerSystemInfo } from "../domain/types.js";
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
 * when the key is new (the store records the registration in the audit
 * log). Refusals are AppError(403) with a one-line reason.
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

/** Audit events for the differences between two versions of a peer. */
function peerUpdateEvents(initiator: Initiator, before: Peer, after: Peer, at: Date) {
	const out: NewAuditEvent[] = [];
	const ev = (code: NewAuditEvent["activityCode"], meta: Record<string, string>) =>
		out.push(auditEvent(after.accountId, initiator, code, after.id, at, meta));
	if (before.name !== after.name)
		ev("peer.rename", { old_name: before.name, name: after.name, dns_label: after.dnsLabel });
	if (before.sshEnabled !== after.sshEnabled)
		ev(after.sshEnabled ? "peer.ssh.enable" : "peer.ssh.disable", { name: after.name });
	if (before.loginExpirationEnabled !== after.loginExpirationEnabled)
		ev(
			after.loginExpirationEnabled
				? "peer.login.expiration.enable"
				: "peer.login.expiration.disable",
			{ name: after.name },
		);
	return out;
}

export async function updatePeer(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	peerId: string,
	update: PeerUpdate,
	initiator?: Initiator,
	now: Date = new Date(),
): Promise<Peer> {
	const peer = await store.updatePeer(accountId, peerId, update, (before, after) =>
		initiator ? peerUpdateEvents(initiator, before, after, now) : [],
	);
	if (!peer) throw notFound("peer");
	sink.peerChanged(peer);
	return peer;
}

/**
 * Deletes a peer; `initiator` is the user (REST) or the peer itself (a
 * logout), recorded in the audit log.
 */
export async function deletePeer(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	peerId: string,
	initiator?: Initiator,
	now: Date = new Date(),
): Promise<Peer> {
	const peer = await store.deletePeer(accountId, peerId, (p) =>
		initiator
			? [
					auditEvent(accountId, initiator, "user.peer.delete", p.id, now, {
						name: p.name,
						ip: p.ip,
						dns_label: p.dnsLabel,
					}),
				]
			: [],
	);
	if (!peer) throw notFound("peer");
	sink.peerRemoved(peer);
	return peer;
}
