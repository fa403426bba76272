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

export interface PeerSystemInfo {
	hostname: string;
	os: string;
	osVersion: string;
	kernelVersion: string;
	agentVersion: string;
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
