import { ACTIVITY_TEXT } from "../core/audit.js";
import { permissionsOf } from "../core/permissions.js";
import type { AccessIndex } from "../core/policy.js";
import { setupKeyState } from "../core/setup-keys.js";
import type {
	Account,
	AuditEvent,
	Group,
	Peer,
	PersonalAccessToken,
	Policy,
	SetupKey,
	User,
} from "../domain/types.js";
import type {
	AccessiblePeerJson,
	AccountJson,
	EventJson,
	GroupJson,
	PeerJson,
	PolicyJson,
	SetupKeyJson,
	TokenJson,
	UserJson,
} from "./schemas.js";
import { NEVER } from "./schemas.js";

// Domain objects to NetBird's JSON shapes. Times are ISO 8601 strings; a
// time that never happened is NEVER, Go's zero time as NetBird's server
// writes it. Fields NetBird requires that Starling has no value for carry
// the value NetBird's server sends when it has none ("", 0, false, []).

const iso = (d: Date) => d.toISOString();
const isoOrNever = (d: Date | null) => (d === null ? NEVER : d.toISOString());

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
		expires: isoOrNever(key.expiresAt),
		type: key.type,
		valid: state === "valid",
		revoked: key.revoked,
		used_times: key.usedTimes,
		last_used: isoOrNever(key.lastUsed),
		state,
		auto_groups: key.autoGroups,
		updated_at: iso(key.updatedAt),
		usage_limit: key.usageLimit,
		ephemeral: key.ephemeral,
		allow_extra_dns_labels: false,
	};
}

/** NetBird's geolocation fields: Starling does not geolocate peers. */
const NOT_GEOLOCATED = { country_code: "", city_name: "", geoname_id: 0 };

/** What mapping peers needs to know about their account, loaded once per request. */
export interface PeerContext {
	account: Account;
	groups: ReadonlyMap<string, Group>;
	/** Group ids of each peer. */
	peerGroupIds: ReadonlyMap<string, readonly string[]>;
	/** The account's peers under its policies (for accessible_peers_count). */
	access: AccessIndex;
}

export function peerJson(peer: Peer, ctx: PeerContext): PeerJson {
	const groups = (ctx.peerGroupIds.get(peer.id) ?? [])
		.map((id) => ctx.groups.get(id))
		.filter((g): g is Group => g !== undefined)
		.sort((a, b) => a.name.localeCompare(b.name))
		.map((g) => groupMinimum(g.id, ctx.groups));
	const { os, osVersion } = peer.system;
	return {
		id: peer.id,
		name: peer.name,
		ip: peer.ip,
		connection_ip: peer.system.connectionIp,
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
		accessible_peers_count: accessiblePeers(peer, ctx.access),
		ephemeral: peer.ephemeral,
		serial_number: "",
		...NOT_GEOLOCATED,
	};
}

/** A peer as another peer's reachable neighbour (NetBird's AccessiblePeer). */
export function accessiblePeerJson(peer: Peer, ctx: PeerContext): AccessiblePeerJson {
	const { os, osVersion } = peer.system;
	return {
		id: peer.id,
		name: peer.name,
		ip: peer.ip,
		dns_label: `${peer.dnsLabel}.${ctx.account.dnsDomain}`,
		user_id: peer.userId ?? "",
		os: osVersion ? `${os} ${osVersion}` : os,
		...NOT_GEOLOCATED,
		connected: peer.connected,
		last_seen: iso(peer.lastSeen),
	};
}

export function userJson(
	user: User,
	opts: { currentUserId: string; lastLogin: Date | null; withPermissions?: boolean },
): UserJson {
	const json: UserJson = {
		id: user.id,
		email: user.email,
		name: user.name,
		role: user.role,
		status: user.blocked ? "blocked" : "active",
		last_login: isoOrNever(opts.lastLogin),
		auto_groups: user.autoGroups,
		is_current: user.id === opts.currentUserId,
		is_service_user: user.isServiceUser,
		is_blocked: user.blocked,
		pending_approval: false,
		issued: "api",
	};
	if (opts.withPermissions) {
		const p = permissionsOf(user.role);
		json.permissions = { is_restricted: p.isRestricted, modules: p.modules };
	}
	return json;
}

export function tokenJson(token: PersonalAccessToken): TokenJson {
	return {
		id: token.id,
		name: token.name,
		expiration_date: iso(token.expiresAt),
		created_by: token.createdBy,
		created_at: iso(token.createdAt),
		// NetBird omits it for a token never used.
		...(token.lastUsed ? { last_used: iso(token.lastUsed) } : {}),
	};
}

function accessiblePeers(peer: Peer, access: AccessIndex): number {
	const i = access.indexOfId(peer.id);
	return i === undefined ? 0 : access.visibleCount(i);
}

/** Groups by id, for naming the groups that rules refer to. */
export type GroupsById = ReadonlyMap<string, Group>;

export function groupMinimum(id: string, groups: GroupsById) {
	const g = groups.get(id);
	return { id, name: g?.name ?? "", peers_count: g?.peerIds.length ?? 0, resources_count: 0 };
}

/** `peerNames`: names of the account's peers by id. */
export function groupJson(
	group: Group,
	peerNames: ReadonlyMap<string, string>,
	peerCount: number,
): GroupJson {
	// All holds every peer, whatever its stored membership.
	const ids = group.issued === "all" ? [...peerNames.keys()] : group.peerIds;
	const peers = ids
		.filter((id) => peerNames.has(id))
		.map((id) => ({ id, name: peerNames.get(id) ?? "" }));
	return {
		id: group.id,
		name: group.name,
		peers_count: group.issued === "all" ? peerCount : peers.length,
		resources_count: 0,
		issued: "api",
		peers,
		resources: [],
	};
}

export function policyJson(policy: Policy, groups: GroupsById): PolicyJson {
	return {
		id: policy.id,
		name: policy.name,
		description: policy.description,
		enabled: policy.enabled,
		source_posture_checks: [],
		rules: policy.rules.map((r) => ({
			id: r.id,
			name: r.name,
			description: r.description,
			enabled: r.enabled,
			action: r.action,
			bidirectional: r.bidirectional,
			protocol: r.protocol,
			ports: r.ports.map(String),
			port_ranges: r.portRanges.map((p) => ({ start: p.start, end: p.end })),
			sources: r.sources.map((id) => groupMinimum(id, groups)),
			destinations: r.destinations.map((id) => groupMinimum(id, groups)),
		})),
	};
}

export function accountJson(account: Account, ownerId: string): AccountJson {
	return {
		id: account.id,
		settings: {
			peer_login_expiration_enabled: account.settings.peerLoginExpirationEnabled,
			peer_login_expiration: account.settings.peerLoginExpirationSeconds,
			peer_inactivity_expiration_enabled: false,
			peer_inactivity_expiration: 0,
			regular_users_view_blocked: true,
			network_range: account.network,
			dns_domain: account.dnsDomain,
			peer_expose_enabled: false,
			peer_expose_groups: [],
		},
		domain: account.dnsDomain,
		domain_category: "private",
		created_at: iso(account.createdAt),
		created_by: ownerId,
		onboarding: { signup_form_pending: false, onboarding_flow_pending: false },
	};
}

export function eventJson(event: AuditEvent): EventJson {
	return {
		id: String(event.id),
		timestamp: iso(event.timestamp),
		activity: ACTIVITY_TEXT[event.activityCode] ?? event.activityCode,
		activity_code: event.activityCode,
		initiator_id: event.initiatorId,
		initiator_name: event.initiatorName,
		initiator_email: event.initiatorEmail,
		target_id: event.targetId,
		meta: event.meta,
	};
}
