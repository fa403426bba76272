import { setupKeyState } from "../core/setup-keys.js";
import type { Account, Group, Peer, PersonalAccessToken, SetupKey, User } from "../domain/types.js";
import type { PeerJson, SetupKeyJson, TokenJson, UserJson } from "./schemas.js";

// Domain objects to NetBird's JSON shapes. Times are ISO 8601 strings; a
// time that never happened is null (NetBird writes "0001-01-01T00:00:00Z").

const iso = (d: Date) => d.toISOString();
const isoOrNull = (d: Date | null) => (d === null ? null : d.toISOString());

/** How a stored key is shown after creation: its first characters, then "****" (as NetBird). */
export function maskedSetupKey(key: SetupKey): string {
	return `${key.keyPrefix}****`;
}

/**
 * `plainKey` only in the answer to its creation: nothing else has it, the
 * store keeps a hash.
 */
export function setupKeyJson(key: SetupKey, now: Date, plainKey?: string): SetupKeyJson {
	const state = setupKeyState(key, now);
	return {
		id: key.id,
		name: key.name,
		key: plainKey ?? maskedSetupKey(key),
		expires: isoOrNull(key.expiresAt),
		type: key.type,
		valid: state === "valid",
		revoked: key.revoked,
		used_times: key.usedTimes,
		last_used: isoOrNull(key.lastUsed),
		state,
		auto_groups: key.autoGroups,
		updated_at: iso(key.updatedAt),
		usage_limit: key.usageLimit,
		ephemeral: key.ephemeral,
		allow_extra_dns_labels: false,
	};
}

/** What mapping peers needs to know about their account, loaded once per request. */
export interface PeerContext {
	account: Account;
	groups: ReadonlyMap<string, Group>;
	/** Group ids of each peer. */
	peerGroupIds: ReadonlyMap<string, readonly string[]>;
	/** Peers in the account. */
	peerCount: number;
}

export function peerJson(peer: Peer, ctx: PeerContext): PeerJson {
	const groups = (ctx.peerGroupIds.get(peer.id) ?? [])
		.map((id) => ctx.groups.get(id))
		.filter((g): g is Group => g !== undefined)
		.sort((a, b) => a.name.localeCompare(b.name))
		.map((g) => ({ id: g.id, name: g.name, peers_count: g.peerIds.length }));
	const { os, osVersion } = peer.system;
	return {
		id: peer.id,
		name: peer.name,
		ip: peer.ip,
		connected: peer.connected,
		last_seen: iso(peer.lastSeen),
		os: osVersion ? `${os} ${osVersion}` : os,
		kernel_version: peer.system.kernelVersion,
		version: peer.system.agentVersion,
		ui_version: "",
		groups,
		ssh_enabled: peer.sshEnabled,
		user_id: peer.userId ?? "",
		hostname: peer.system.hostname,
		// NetBird's dns_label holds the fully qualified name.
		dns_label: `${peer.dnsLabel}.${ctx.account.dnsDomain}`,
		extra_dns_labels: [],
		login_expiration_enabled: peer.loginExpirationEnabled,
		login_expired: false,
		inactivity_expiration_enabled: false,
		last_login: iso(peer.lastLogin),
		created_at: iso(peer.createdAt),
		approval_required: false,
		// Without policies every peer of the account reaches every other one.
		accessible_peers_count: Math.max(0, ctx.peerCount - 1),
		ephemeral: peer.ephemeral,
		serial_number: "",
	};
}

export function userJson(
	user: User,
	opts: { currentUserId: string; lastLogin: Date | null },
): UserJson {
	return {
		id: user.id,
		email: user.email,
		name: user.name,
		role: user.role,
		status: user.blocked ? "blocked" : "active",
		last_login: isoOrNull(opts.lastLogin),
		auto_groups: [],
		is_current: user.id === opts.currentUserId,
		is_service_user: user.isServiceUser,
		is_blocked: user.blocked,
		issued: "api",
	};
}

export function tokenJson(token: PersonalAccessToken): TokenJson {
	return {
		id: token.id,
		name: token.name,
		expiration_date: iso(token.expiresAt),
		created_by: token.createdBy,
		created_at: iso(token.createdAt),
		last_used: isoOrNull(token.lastUsed),
	};
}
