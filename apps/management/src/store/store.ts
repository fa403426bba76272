import type {
	Account,
	AccountSettings,
	AuditEvent,
	Group,
	NewAuditEvent,
	Peer,
	PeerSystemInfo,
	PersonalAccessToken,
	Policy,
	PolicyRule,
	SetupKey,
	User,
	UserRole,
} from "../domain/types.js";

// The persistence boundary. Methods are async so that a PostgreSQL store can
// implement the same interface; each method is one atomic unit of work.

export interface StoredKeyPair {
	privateKey: Uint8Array;
	publicKey: Uint8Array;
}

export interface NewPeer {
	wgPublicKey: string;
	system: PeerSystemInfo;
	/** Requested name (usually the hostname); the label is made unique in the account. */
	name: string;
	now: Date;
}

export type RegisterResult =
	| { ok: true; peer: Peer; setupKey: SetupKey; groupIds: string[] }
	| { ok: false; reason: string };

export interface PeerUpdate {
	name?: string;
	sshEnabled?: boolean;
	loginExpirationEnabled?: boolean;
}

export interface SetupKeyUpdate {
	revoked?: boolean;
	autoGroups?: string[];
	name?: string;
}

export interface GroupUpdate {
	name: string;
	peerIds: string[];
}

export interface PolicyInput {
	name: string;
	description: string;
	enabled: boolean;
	rules: PolicyRule[];
}

export interface UserUpdate {
	role: UserRole;
	autoGroups: string[];
	blocked: boolean;
}

export interface AccountUpdate {
	settings: AccountSettings;
	/** A new account network; refused while the account has peers. */
	network?: string;
}

/**
 * Audit events for a change, made inside the change's transaction from the
 * object as it was and as it is now: they are stored only if the change is.
 */
export type AuditFor<T> = (before: T, after: T) => NewAuditEvent[];

/** A unique name (or network) is taken. */
export class StoreConflictError extends Error {
	override name = "StoreConflictError";
}

/** The change names objects that do not exist, or removes one still in use. */
export class StoreReferenceError extends Error {
	override name = "StoreReferenceError";
}

export interface Store {
	close(): Promise<void>;

	/** Returns the persisted server key pair, creating it with `generate` the first time. */
	getOrCreateServerKey(generate: () => StoredKeyPair): Promise<StoredKeyPair>;

	/**
	 * Creates an account with its All group, its Default policy (All to All,
	 * every protocol, both ways) and its owner.
	 */
	createAccount(account: Account, owner: User): Promise<void>;
	getAccount(accountId: string): Promise<Account | undefined>;
	listAccountNetworks(): Promise<string[]>;
	/**
	 * Changes settings (and the network, only while the account has no peers:
	 * StoreReferenceError otherwise; StoreConflictError when another account
	 * has an overlapping network).
	 */
	updateAccount(
		accountId: string,
		update: AccountUpdate,
		audit: AuditFor<Account>,
	): Promise<Account | undefined>;

	countUsers(): Promise<number>;
	/** Plain insert (bootstrap, tests, the CLI): no audit event, no checks. */
	createUser(user: User): Promise<void>;
	/** Creates a user through the API: auto-groups must exist; the email is unique in the account. */
	addUser(user: User, audit: NewAuditEvent[]): Promise<void>;
	getUser(userId: string): Promise<User | undefined>;
	listUsers(accountId: string): Promise<User[]>;
	updateUser(
		accountId: string,
		userId: string,
		update: UserUpdate,
		audit: AuditFor<User>,
	): Promise<User | undefined>;
	deleteUser(accountId: string, userId: string, audit: AuditFor<User>): Promise<User | undefined>;

	createToken(token: PersonalAccessToken, audit?: NewAuditEvent[]): Promise<void>;
	getTokenByHash(hashedToken: string): Promise<PersonalAccessToken | undefined>;
	getToken(userId: string, tokenId: string): Promise<PersonalAccessToken | undefined>;
	listTokens(userId: string): Promise<PersonalAccessToken[]>;
	deleteToken(userId: string, tokenId: string, audit?: NewAuditEvent[]): Promise<boolean>;
	touchToken(tokenId: string, at: Date): Promise<void>;

	/** Auto-groups must exist in the key's account (StoreReferenceError). */
	createSetupKey(key: SetupKey, audit?: NewAuditEvent[]): Promise<void>;
	getSetupKey(accountId: string, keyId: string): Promise<SetupKey | undefined>;
	listSetupKeys(accountId: string): Promise<SetupKey[]>;
	updateSetupKey(
		accountId: string,
		keyId: string,
		update: SetupKeyUpdate,
		now: Date,
		audit?: AuditFor<SetupKey>,
	): Promise<SetupKey | undefined>;
	deleteSetupKey(accountId: string, keyId: string, audit?: AuditFor<SetupKey>): Promise<boolean>;

	listGroups(accountId: string): Promise<Group[]>;
	getGroup(accountId: string, groupId: string): Promise<Group | undefined>;
	/** Peers must be the account's (StoreReferenceError); the name unique (StoreConflictError). */
	createGroup(group: Group, audit: NewAuditEvent[]): Promise<void>;
	/** Renames and replaces the membership. */
	updateGroup(
		accountId: string,
		groupId: string,
		update: GroupUpdate,
		audit: AuditFor<Group>,
	): Promise<Group | undefined>;
	/** Refused (StoreReferenceError) while a policy, setup key or user names the group. */
	deleteGroup(
		accountId: string,
		groupId: string,
		audit: AuditFor<Group>,
	): Promise<Group | undefined>;

	/** In creation order. */
	listPolicies(accountId: string): Promise<Policy[]>;
	getPolicy(accountId: string, policyId: string): Promise<Policy | undefined>;
	/** Groups named by rules must exist in the account (StoreReferenceError). */
	createPolicy(policy: Policy, audit: NewAuditEvent[]): Promise<void>;
	updatePolicy(
		accountId: string,
		policyId: string,
		update: PolicyInput,
		audit: AuditFor<Policy>,
	): Promise<Policy | undefined>;
	deletePolicy(
		accountId: string,
		policyId: string,
		audit: AuditFor<Policy>,
	): Promise<Policy | undefined>;

	/** Newest first. */
	listEvents(accountId: string, limit: number): Promise<AuditEvent[]>;

	/**
	 * Registers a new peer with a setup key, atomically: checks the key
	 * (by hash) is usable, allocates an address and DNS label unique in the
	 * account, counts the use, adds the peer to All and the key's
	 * auto-groups, and records the registration in the audit log. Concurrent
	 * calls with a one-off key register exactly one peer.
	 */
	registerPeer(hashedSetupKey: string, peer: NewPeer): Promise<RegisterResult>;
	getPeerByPublicKey(wgPublicKey: string): Promise<Peer | undefined>;
	getPeer(accountId: string, peerId: string): Promise<Peer | undefined>;
	listPeers(accountId: string): Promise<Peer[]>;
	/** Groups (ids) each peer of the account belongs to. */
	listPeerGroupIds(accountId: string): Promise<Map<string, string[]>>;
	updatePeer(
		accountId: string,
		peerId: string,
		update: PeerUpdate,
		audit?: AuditFor<Peer>,
	): Promise<Peer | undefined>;
	recordPeerLogin(peerId: string, system: PeerSystemInfo, at: Date): Promise<Peer | undefined>;
	setPeerConnected(peerId: string, connected: boolean, at: Date): Promise<Peer | undefined>;
	/** Marks every peer disconnected (after a restart no stream survives). */
	markAllPeersDisconnected(at: Date): Promise<void>;
	deletePeer(accountId: string, peerId: string, audit?: AuditFor<Peer>): Promise<Peer | undefined>;
}
