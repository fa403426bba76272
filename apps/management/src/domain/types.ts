// The management domain: one definition of each persistent object. REST
// shapes (NetBird's field names) and wire messages (proto/) are mapped from
// these in their adapters.

export type UserRole = "owner" | "admin" | "user";
export type SetupKeyType = "reusable" | "one-off";

export interface AccountSettings {
	peerLoginExpirationEnabled: boolean;
	peerLoginExpirationSeconds: number;
}

export interface Account {
	id: string;
	/** The account's overlay network, e.g. "100.64.0.0/16". */
	network: string;
	dnsDomain: string;
	createdAt: Date;
	settings: AccountSettings;
}

export interface User {
	id: string;
	accountId: string;
	name: string;
	email: string;
	role: UserRole;
	isServiceUser: boolean;
	blocked: boolean;
	/**
	 * Groups that peers registered by this user join. Stored and validated;
	 * peers are only registered with setup keys so far, so nothing applies it.
	 */
	autoGroups: string[];
	createdAt: Date;
}

export interface PersonalAccessToken {
	id: string;
	userId: string;
	name: string;
	/** SHA-256 of the plain token, hex. The plain token is shown once and never stored. */
	hashedToken: string;
	expiresAt: Date;
	createdBy: string;
	createdAt: Date;
	lastUsed: Date | null;
}

export interface SetupKey {
	id: string;
	accountId: string;
	name: string;
	/** SHA-256 of the plain key, hex. */
	hashedKey: string;
	/** The first characters of the plain key, to recognise it in listings. */
	keyPrefix: string;
	type: SetupKeyType;
	createdAt: Date;
	updatedAt: Date;
	/** null: never expires. */
	expiresAt: Date | null;
	revoked: boolean;
	usedTimes: number;
	lastUsed: Date | null;
	/** 0 = unlimited. One-off keys have 1. */
	usageLimit: number;
	autoGroups: string[];
	ephemeral: boolean;
}

export interface Group {
	id: string;
	accountId: string;
	name: string;
	/** "all" for the built-in All group, "api" for groups made by admins. */
	issued: "all" | "api";
	peerIds: string[];
}

/** A group without its members, for decisions that only need which groups exist. */
export type GroupSummary = Omit<Group, "peerIds">;

export interface PeerSystemInfo {
	hostname: string;
	os: string;
	osVersion: string;
	kernelVersion: string;
	agentVersion: string;
	/**
	 * The public address management saw the peer's last login or sync come
	 * from; "" when unknown.
	 */
	connectionIp: string;
}

export interface Peer {
	id: string;
	accountId: string;
	/** WireGuard public key, base64 as `wg` prints it. */
	wgPublicKey: string;
	name: string;
	dnsLabel: string;
	/** Overlay address without prefix, e.g. "100.64.3.7". */
	ip: string;
	system: PeerSystemInfo;
	setupKeyId: string | null;
	userId: string | null;
	ephemeral: boolean;
	sshEnabled: boolean;
	loginExpirationEnabled: boolean;
	connected: boolean;
	createdAt: Date;
	lastLogin: Date;
	lastSeen: Date;
}

/**
 * A running management process sharing the database with others. It
 * refreshes `heartbeatAt` every few seconds; one whose heartbeat stopped is
 * dead, and its Sync sessions are expired by any live instance.
 */
export interface ManagementInstance {
	id: string;
	startedAt: Date;
	heartbeatAt: Date;
}

/** One open Sync stream of a peer, held by one management instance. */
export interface SyncSession {
	/** Random per stream, unique across instances. */
	streamId: string;
	accountId: string;
	peerId: string;
	instanceId: string;
	since: Date;
}

/**
 * A network reached through routing peers, as NetBird's `/api/routes`
 * resource: served by one peer or by every peer of `peerGroups` (exactly
 * one of the two), received by the peers of `groups`. Routes sharing a
 * `networkId` are one network with several routers (high availability).
 */
export interface Route {
	id: string;
	accountId: string;
	description: string;
	/** High-availability key, at most 40 characters. */
	networkId: string;
	enabled: boolean;
	/** The routing peer's id, or null when `peerGroups` is used. */
	peerId: string | null;
	/** Group ids whose peers all route; empty when `peerId` is used. */
	peerGroups: string[];
	/** IPv4 CIDR in canonical form; "0.0.0.0/0" makes an exit node. */
	network: string;
	/** 1-9999, lower is preferred. */
	metric: number;
	masquerade: boolean;
	/** Group ids of the peers that receive the route. */
	groups: string[];
	keepRoute: boolean;
	/** Group ids: when set, forwarded traffic is filtered by the policies with these groups as destination. */
	accessControlGroups: string[];
	/** Exit nodes only: offered to clients, applied only when the user selects it. */
	skipAutoApply: boolean;
}

/** A NetBird "network": a named set of resources reachable through its routers. */
export interface Network {
	id: string;
	accountId: string;
	name: string;
	description: string;
}

/** Something inside a network that peers may reach: a host or a subnet. */
export interface NetworkResource {
	id: string;
	accountId: string;
	networkId: string;
	name: string;
	description: string;
	/** As given: an IPv4 address or CIDR. */
	address: string;
	/** "host" for a single address (stored as /32), "subnet" otherwise. */
	type: "host" | "subnet";
	/** Canonical IPv4 CIDR of `address`. */
	prefix: string;
	enabled: boolean;
	/** Group ids: access policies reach the resource through these groups as destinations. */
	groups: string[];
}

/** A peer (or the peers of groups) routing traffic into a network. */
export interface NetworkRouter {
	id: string;
	accountId: string;
	networkId: string;
	/** The routing peer's id, or null when `peerGroups` is used. */
	peerId: string | null;
	peerGroups: string[];
	metric: number;
	masquerade: boolean;
	enabled: boolean;
}

/** Everything of an account that makes routes: both REST views, one model. */
export interface RoutingConfig {
	routes: readonly Route[];
	networks: readonly Network[];
	networkResources: readonly NetworkResource[];
	networkRouters: readonly NetworkRouter[];
}

/** What a peer holds that must be unique in its account: its address and DNS label. */
export type PeerAddress = Pick<Peer, "ip" | "dnsLabel">;

export type Protocol = "all" | "tcp" | "udp" | "icmp";

export interface PortRange {
	start: number;
	end: number;
}

/**
 * One rule of a policy (NetBird's model): peers of the source groups may
 * open connections to peers of the destination groups with `protocol` on
 * `ports`/`portRanges` (both empty: every port); `bidirectional` allows the
 * reverse direction as well. Only "accept" exists: inbound traffic that no
 * rule accepts is dropped, so a "drop" rule would have nothing to do.
 */
export interface PolicyRule {
	id: string;
	name: string;
	description: string;
	enabled: boolean;
	action: "accept";
	bidirectional: boolean;
	protocol: Protocol;
	/** Single ports; only with tcp and udp. */
	ports: number[];
	/** Inclusive ranges; only with tcp and udp. */
	portRanges: PortRange[];
	/** Group ids. */
	sources: string[];
	/** Group ids. */
	destinations: string[];
}

export interface Policy {
	id: string;
	accountId: string;
	name: string;
	description: string;
	enabled: boolean;
	rules: PolicyRule[];
	createdAt: Date;
}

/**
 * What happened: NetBird's activity codes for the same activities (its
 * management/server/activity/codes.go), so that NetBird's clients read
 * Starling's audit log. The human text is derived (core/audit.ts).
 */
export type ActivityCode =
	| "account.create"
	| "account.setting.peer.login.expiration.enable"
	| "account.setting.peer.login.expiration.disable"
	| "account.setting.peer.login.expiration.update"
	| "account.network.range.update"
	| "peer.setupkey.add"
	| "peer.rename"
	| "peer.ssh.enable"
	| "peer.ssh.disable"
	| "peer.login.expiration.enable"
	| "peer.login.expiration.disable"
	| "user.peer.delete"
	| "setupkey.add"
	| "setupkey.update"
	| "setupkey.revoke"
	| "setupkey.delete"
	| "group.add"
	| "group.update"
	| "group.delete"
	| "policy.add"
	| "policy.update"
	| "policy.delete"
	| "user.create"
	| "service.user.create"
	| "user.role.update"
	| "user.group.add"
	| "user.group.delete"
	| "user.block"
	| "user.unblock"
	| "user.delete"
	| "service.user.delete"
	| "personal.access.token.create"
	| "personal.access.token.delete"
	| "route.add"
	| "route.update"
	| "route.delete"
	| "network.create"
	| "network.update"
	| "network.delete"
	| "network.resource.create"
	| "network.resource.update"
	| "network.resource.delete"
	| "network.router.create"
	| "network.router.update"
	| "network.router.delete";

/** One entry of the audit log: who did what to which object, when. */
export interface AuditEvent {
	id: number;
	accountId: string;
	timestamp: Date;
	activityCode: ActivityCode;
	/** A user id, a setup key id (registration) or a peer id (a peer logging out). */
	initiatorId: string;
	/** Name and email as they were when it happened. */
	initiatorName: string;
	initiatorEmail: string;
	/** The object acted on. */
	targetId: string;
	meta: Record<string, string>;
}

export type NewAuditEvent = Omit<AuditEvent, "id">;
