import { auditEvent, type Initiator } from "../core/audit.js";
import { labelForRename, type NewPeer, planRegistration } from "../core/peer-registration.js";
import { cryptoRandomInt, newId } from "../core/random.js";
import { routingAfterPeerDeleted } from "../core/route-rules.js";
import { hashSecret } from "../core/secrets.js";
import type { NewAuditEvent, Peer, PeerSystemInfo, SetupKey } from "../domain/types.js";
import type { Store, StoreWrites } from "../store/store.js";
import { AppError, notFound, stored } from "./errors.js";
import type { NetworkChangeSink } from "./events.js";

export interface LoginInput {
	wgPublicKey: string;
	/** Empty when logging an already-registered peer back in. */
	setupKey: string;
	system: PeerSystemInfo;
}

/**
 * Logs a peer in by its WireGuard key, registering it first with a setup key
 * when the key is new (the registration is recorded in the audit log).
 * Refusals are AppError(403) with a one-line reason.
 */
export async function loginPeer(
	store: Store,
	sink: NetworkChangeSink,
	input: LoginInput,
	now: Date,
	/** Where the login of a known peer is recorded (a GroupCommit under load); the store by default. */
	loginWrites: StoreWrites = store,
): Promise<{ peer: Peer; registered: boolean }> {
	const existing = await store.getPeerByPublicKey(input.wgPublicKey);
	if (existing) {
		const peer = (await recordPeerLogin(loginWrites, existing, input.system, now)) ?? existing;
		return { peer, registered: false };
	}
	if (!input.setupKey) {
		throw new AppError(403, "peer is not registered: a setup key is required for the first login");
	}
	const result = await registerPeer(store, hashSecret(input.setupKey.trim().toUpperCase()), {
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

export type RegisterResult =
	| { ok: true; peer: Peer; setupKey: SetupKey; groupIds: string[] }
	| { ok: false; reason: string };

/**
 * Registers a new peer with a setup key (by hash) in one write transaction:
 * checks the key, gives the peer an address and DNS label unique in the
 * account, counts the use, adds the peer to All and the key's auto-groups
 * and records the registration in the audit log. Concurrent registrations
 * with a one-off key register exactly one peer.
 */
export async function registerPeer(
	store: Store,
	hashedSetupKey: string,
	input: NewPeer,
): Promise<RegisterResult> {
	return stored(
		store.write(async (tx): Promise<RegisterResult> => {
			const key = await tx.getSetupKeyByHash(hashedSetupKey);
			if (!key) return { ok: false, reason: "setup key is not valid" };
			if (await tx.getPeerByPublicKey(input.wgPublicKey)) {
				return { ok: false, reason: "a peer with this WireGuard key is already registered" };
			}
			const account = await tx.getAccount(key.accountId);
			if (!account) return { ok: false, reason: "setup key is not valid" };
			const [peers, groups] = [
				await tx.listPeerAddresses(account.id),
				await tx.listGroupSummaries(account.id),
			];
			const plan = planRegistration(
				{ key, account, peers, groups },
				input,
				newId(),
				cryptoRandomInt,
			);
			if (!plan.ok) return plan;
			await tx.insertPeer(plan.peer);
			await tx.updateSetupKey(plan.setupKey);
			await tx.addPeerToGroups(account.id, plan.peer.id, plan.groupIds);
			await tx.appendEvents([plan.event]);
			return { ok: true, peer: plan.peer, setupKey: plan.setupKey, groupIds: plan.groupIds };
		}),
	);
}

/**
 * Records the system info a Sync stream brings, only when it differs from
 * the stored one (the agent's Login just before usually stored the same):
 * a reconnect storm then writes once per agent, not twice. The login time
 * stays; only Login moves it.
 */
export async function recordPeerMeta(
	store: StoreWrites,
	peer: Peer,
	system: PeerSystemInfo,
): Promise<Peer | undefined> {
	if (sameSystemInfo(peer.system, system)) return peer;
	return rewritePeer(store, peer, (current) => ({ ...current, system }));
}

function sameSystemInfo(a: PeerSystemInfo, b: PeerSystemInfo): boolean {
	return (
		a.hostname === b.hostname &&
		a.os === b.os &&
		a.osVersion === b.osVersion &&
		a.kernelVersion === b.kernelVersion &&
		a.agentVersion === b.agentVersion &&
		a.connectionIp === b.connectionIp
	);
}

/** Records a login of a registered peer (its system info may have changed). */
export function recordPeerLogin(
	store: StoreWrites,
	peer: Peer,
	system: PeerSystemInfo,
	at: Date,
): Promise<Peer | undefined> {
	return rewritePeer(store, peer, (current) => ({ ...current, system, lastLogin: at }));
}

/**
 * Rewrites the stored peer (not the possibly stale `peer` the caller holds)
 * in one write transaction; undefined when it has been deleted meanwhile.
 */
function rewritePeer(
	store: StoreWrites,
	peer: Peer,
	change: (current: Peer) => Peer,
): Promise<Peer | undefined> {
	return store.write(async (tx) => {
		const current = await tx.getPeer(peer.accountId, peer.id);
		if (!current) return undefined;
		const after = change(current);
		await tx.updatePeer(after);
		return after;
	});
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

export interface PeerUpdate {
	name?: string;
	sshEnabled?: boolean;
	loginExpirationEnabled?: boolean;
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
	const peer = await stored(
		store.write(async (tx) => {
			const before = await tx.getPeer(accountId, peerId);
			if (!before) return undefined;
			const name = update.name ?? before.name;
			const after: Peer = {
				...before,
				name,
				dnsLabel:
					name === before.name
						? before.dnsLabel
						: labelForRename(before, name, await tx.listPeers(accountId)),
				sshEnabled: update.sshEnabled ?? before.sshEnabled,
				loginExpirationEnabled: update.loginExpirationEnabled ?? before.loginExpirationEnabled,
			};
			await tx.updatePeer(after);
			if (initiator) await tx.appendEvents(peerUpdateEvents(initiator, before, after, now));
			return after;
		}),
	);
	if (!peer) throw notFound("peer");
	sink.peerChanged(peer);
	return peer;
}

/**
 * Deletes a peer; `initiator` is the user (REST) or the peer itself (a
 * logout), recorded in the audit log. Routing follows NetBird: a route the
 * peer served alone is disabled and loses its routing peer, a network router
 * that was the peer is removed (core/route-rules.ts), in the same
 * transaction, each with its audit event.
 */
export async function deletePeer(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	peerId: string,
	initiator?: Initiator,
	now: Date = new Date(),
): Promise<Peer> {
	const deleted = await store.write(async (tx) => {
		const peer = await tx.getPeer(accountId, peerId);
		if (!peer || !(await tx.deletePeer(accountId, peerId))) return undefined;
		const { disabledRoutes, removedRouters } = routingAfterPeerDeleted(
			peerId,
			await tx.listRoutes(accountId),
			await tx.listNetworkRouters(accountId),
		);
		for (const r of disabledRoutes) await tx.updateRoute(r);
		for (const r of removedRouters) await tx.deleteNetworkRouter(accountId, r.id);
		const by = initiator ?? { id: peer.id, name: peer.name, email: "" };
		const events: NewAuditEvent[] = [
			...disabledRoutes.map((r) =>
				auditEvent(accountId, by, "route.update", r.id, now, {
					name: r.networkId,
					network: r.network,
					enabled: "false",
					reason: `routing peer ${peer.name} deleted`,
				}),
			),
			...removedRouters.map((r) =>
				auditEvent(accountId, by, "network.router.delete", r.id, now, {
					reason: `routing peer ${peer.name} deleted`,
				}),
			),
		];
		if (initiator) {
			events.push(
				auditEvent(accountId, initiator, "user.peer.delete", peer.id, now, {
					name: peer.name,
					ip: peer.ip,
					dns_label: peer.dnsLabel,
				}),
			);
		}
		if (events.length > 0) await tx.appendEvents(events);
		return { peer, routingChanged: disabledRoutes.length + removedRouters.length > 0 };
	});
	if (!deleted) throw notFound("peer");
	sink.peerRemoved(deleted.peer);
	if (deleted.routingChanged) sink.accessChanged(accountId);
	return deleted.peer;
}
