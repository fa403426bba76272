import type {
	Account,
	GroupSummary,
	NewAuditEvent,
	Peer,
	PeerAddress,
	PeerSystemInfo,
	SetupKey,
} from "../domain/types.js";
import { auditEvent } from "./audit.js";
import { toDnsLabel, uniqueDnsLabel } from "./dns-label.js";
import { allocateHost, intToIp, ipToInt, parseCidr, type RandomInt } from "./ipam.js";
import { checkSetupKeyUsable } from "./setup-keys.js";

// Registering a peer with a setup key, as a pure decision on what the
// account holds now: whether the key may register, which address and DNS
// label the peer gets (unique in the account), which groups it joins and
// what the audit log says. The store applies the result in one transaction.

export interface NewPeer {
	wgPublicKey: string;
	system: PeerSystemInfo;
	/** Requested name (usually the hostname); the label is made unique in the account. */
	name: string;
	now: Date;
}

export interface RegistrationState {
	key: SetupKey;
	account: Account;
	/** The address and DNS label of every peer of the key's account. */
	peers: readonly PeerAddress[];
	/** Every group of the key's account (members are not needed). */
	groups: readonly GroupSummary[];
}

export type RegistrationPlan =
	| {
			ok: true;
			peer: Peer;
			/** The key with this use counted. */
			setupKey: SetupKey;
			/** All and the key's auto-groups that exist, sorted. */
			groupIds: string[];
			event: NewAuditEvent;
	  }
	| { ok: false; reason: string };

export function planRegistration(
	state: RegistrationState,
	input: NewPeer,
	peerId: string,
	random: RandomInt,
): RegistrationPlan {
	const { key, account } = state;
	const check = checkSetupKeyUsable(key, input.now);
	if (!check.ok) return check;
	const used = new Set(state.peers.map((p) => ipToInt(p.ip)));
	const ip = intToIp(allocateHost(parseCidr(account.network), used, random));
	const dnsLabel = uniqueDnsLabel(
		toDnsLabel(input.name),
		new Set(state.peers.map((p) => p.dnsLabel)),
	);
	const peer: Peer = {
		id: peerId,
		accountId: account.id,
		wgPublicKey: input.wgPublicKey,
		name: input.name,
		dnsLabel,
		ip,
		system: input.system,
		setupKeyId: key.id,
		userId: null,
		ephemeral: key.ephemeral,
		sshEnabled: false,
		loginExpirationEnabled: false,
		connected: false,
		createdAt: input.now,
		lastLogin: input.now,
		lastSeen: input.now,
	};
	const groupIds = state.groups
		.filter((g) => g.issued === "all" || key.autoGroups.includes(g.id))
		.map((g) => g.id)
		.sort();
	return {
		ok: true,
		peer,
		setupKey: { ...key, usedTimes: key.usedTimes + 1, lastUsed: input.now },
		groupIds,
		event: auditEvent(
			account.id,
			{ id: key.id, name: key.name, email: "" },
			"peer.setupkey.add",
			peer.id,
			input.now,
			{ name: peer.name, ip: peer.ip, dns_label: peer.dnsLabel, setup_key: key.name },
		),
	};
}

/**
 * The DNS label a peer gets when renamed to `name` (as in NetBird, renaming
 * renames the label), unique among the other peers of the account.
 */
export function labelForRename(peer: Peer, name: string, peers: readonly Peer[]): string {
	if (name === peer.name) return peer.dnsLabel;
	const taken = new Set(peers.filter((p) => p.id !== peer.id).map((p) => p.dnsLabel));
	return uniqueDnsLabel(toDnsLabel(name), taken);
}
