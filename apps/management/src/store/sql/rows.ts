import { intToIp } from "../../core/ipam.js";
import type {
	Account,
	AccountSettings,
	AuditEvent,
	Group,
	GroupSummary,
	ManagementInstance,
	Network,
	NetworkResource,
	NetworkRouter,
	Peer,
	PersonalAccessToken,
	Policy,
	Route,
	SetupKey,
	SyncSession,
	User,
} from "../../domain/types.js";

// Rows of either backend to domain objects and back: times are epoch
// milliseconds, booleans 0/1 (SQLite) or true/false (PostgreSQL), lists JSON
// text, peer addresses 32-bit integers. PostgreSQL returns BIGINT columns and
// COUNT(*) as strings (a JavaScript number cannot hold every int8), so every
// number goes through Number(): ours are milliseconds, counters and IPv4
// addresses, all far below 2^53.

export type Row = Record<string, unknown>;

export const ms = (d: Date) => d.getTime();
export const optMs = (d: Date | null) => (d === null ? null : d.getTime());
const date = (v: unknown) => new Date(Number(v));
const optDate = (v: unknown) => (v === null || v === undefined ? null : new Date(Number(v)));
const bool = (v: unknown) => v === true || v === 1 || v === 1n;

export function toAccount(r: Row): Account {
	return {
		id: String(r.id),
		network: String(r.network),
		dnsDomain: String(r.dns_domain),
		createdAt: date(r.created_at),
		settings: JSON.parse(String(r.settings)) as AccountSettings,
	};
}

export function toUser(r: Row): User {
	return {
		id: String(r.id),
		accountId: String(r.account_id),
		name: String(r.name),
		email: String(r.email),
		role: r.role as User["role"],
		isServiceUser: bool(r.is_service_user),
		blocked: bool(r.blocked),
		autoGroups: JSON.parse(String(r.auto_groups ?? "[]")) as string[],
		createdAt: date(r.created_at),
	};
}

export function toPolicy(r: Row): Policy {
	return {
		id: String(r.id),
		accountId: String(r.account_id),
		name: String(r.name),
		description: String(r.description),
		enabled: bool(r.enabled),
		rules: JSON.parse(String(r.rules)) as Policy["rules"],
		createdAt: date(r.created_at),
	};
}

export function toEvent(r: Row): AuditEvent {
	return {
		id: Number(r.id),
		accountId: String(r.account_id),
		timestamp: date(r.timestamp),
		activityCode: r.activity_code as AuditEvent["activityCode"],
		initiatorId: String(r.initiator_id),
		initiatorName: String(r.initiator_name),
		initiatorEmail: String(r.initiator_email),
		targetId: String(r.target_id),
		meta: JSON.parse(String(r.meta)) as Record<string, string>,
	};
}

export function toToken(r: Row): PersonalAccessToken {
	return {
		id: String(r.id),
		userId: String(r.user_id),
		name: String(r.name),
		hashedToken: String(r.hashed_token),
		expiresAt: date(r.expires_at),
		createdBy: String(r.created_by),
		createdAt: date(r.created_at),
		lastUsed: optDate(r.last_used),
	};
}

export function toSetupKey(r: Row): SetupKey {
	return {
		id: String(r.id),
		accountId: String(r.account_id),
		name: String(r.name),
		hashedKey: String(r.hashed_key),
		keyPrefix: String(r.key_prefix),
		type: r.type as SetupKey["type"],
		createdAt: date(r.created_at),
		updatedAt: date(r.updated_at),
		expiresAt: optDate(r.expires_at),
		revoked: bool(r.revoked),
		usedTimes: Number(r.used_times),
		lastUsed: optDate(r.last_used),
		usageLimit: Number(r.usage_limit),
		autoGroups: JSON.parse(String(r.auto_groups)) as string[],
		ephemeral: bool(r.ephemeral),
	};
}

export function toGroupSummary(r: Row): GroupSummary {
	return {
		id: String(r.id),
		accountId: String(r.account_id),
		name: String(r.name),
		issued: r.issued as Group["issued"],
	};
}

export function toGroup(r: Row, peerIds: string[]): Group {
	return { ...toGroupSummary(r), peerIds };
}

export function toPeer(r: Row): Peer {
	return {
		id: String(r.id),
		accountId: String(r.account_id),
		wgPublicKey: String(r.wg_public_key),
		name: String(r.name),
		dnsLabel: String(r.dns_label),
		ip: intToIp(Number(r.ip)),
		system: {
			hostname: String(r.hostname),
			os: String(r.os),
			osVersion: String(r.os_version),
			kernelVersion: String(r.kernel_version),
			agentVersion: String(r.agent_version),
			connectionIp: String(r.connection_ip),
		},
		setupKeyId: r.setup_key_id === null ? null : String(r.setup_key_id),
		userId: r.user_id === null ? null : String(r.user_id),
		ephemeral: bool(r.ephemeral),
		sshEnabled: bool(r.ssh_enabled),
		loginExpirationEnabled: bool(r.login_expiration_enabled),
		connected: bool(r.connected),
		createdAt: date(r.created_at),
		lastLogin: date(r.last_login),
		lastSeen: date(r.last_seen),
	};
}

export function toInstance(r: Row): ManagementInstance {
	return {
		id: String(r.id),
		startedAt: date(r.started_at),
		heartbeatAt: date(r.heartbeat_at),
	};
}

export function toSyncSession(r: Row): SyncSession {
	return {
		streamId: String(r.stream_id),
		accountId: String(r.account_id),
		peerId: String(r.peer_id),
		instanceId: String(r.instance_id),
		since: date(r.since),
	};
}

const ids = (v: unknown) => JSON.parse(String(v)) as string[];
const optId = (v: unknown) => (v === null || v === undefined ? null : String(v));

export function toRoute(r: Row): Route {
	return {
		id: String(r.id),
		accountId: String(r.account_id),
		description: String(r.description),
		networkId: String(r.network_id),
		enabled: bool(r.enabled),
		peerId: optId(r.peer_id),
		peerGroups: ids(r.peer_groups),
		network: String(r.network),
		metric: Number(r.metric),
		masquerade: bool(r.masquerade),
		groups: ids(r.groups),
		keepRoute: bool(r.keep_route),
		accessControlGroups: ids(r.access_control_groups),
		skipAutoApply: bool(r.skip_auto_apply),
	};
}

export function toNetwork(r: Row): Network {
	return {
		id: String(r.id),
		accountId: String(r.account_id),
		name: String(r.name),
		description: String(r.description),
	};
}

export function toNetworkResource(r: Row): NetworkResource {
	return {
		id: String(r.id),
		accountId: String(r.account_id),
		networkId: String(r.network_id),
		name: String(r.name),
		description: String(r.description),
		address: String(r.address),
		type: String(r.type) === "host" ? "host" : "subnet",
		prefix: String(r.prefix),
		enabled: bool(r.enabled),
		groups: ids(r.groups),
	};
}

export function toNetworkRouter(r: Row): NetworkRouter {
	return {
		id: String(r.id),
		accountId: String(r.account_id),
		networkId: String(r.network_id),
		peerId: optId(r.peer_id),
		peerGroups: ids(r.peer_groups),
		metric: Number(r.metric),
		masquerade: bool(r.masquerade),
		enabled: bool(r.enabled),
	};
}
