import type {
	Account,
	AccountSettings,
	Group,
	Peer,
	PeerSystemInfo,
	PersonalAccessToken,
	SetupKey,
	User,
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
	| { ok: true; peer: Peer; setupKey: SetupKey }
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

export class StoreConflictError extends Error {
	override name = "StoreConflictError";
}

export interface Store {
	close(): Promise<void>;

	/** Returns the persisted server key pair, creating it with `generate` the first time. */
	getOrCreateServerKey(generate: () => StoredKeyPair): Promise<StoredKeyPair>;

	createAccount(account: Account, owner: User): Promise<void>;
	getAccount(accountId: string): Promise<Account | undefined>;
	listAccountNetworks(): Promise<string[]>;
	updateAccountSettings(accountId: string, settings: AccountSettings): Promise<Account | undefined>;

	countUsers(): Promise<number>;
	createUser(user: User): Promise<void>;
	getUser(userId: string): Promise<User | undefined>;
	listUsers(accountId: string): Promise<User[]>;

	createToken(token: PersonalAccessToken): Promise<void>;
	getTokenByHash(hashedToken: string): Promise<PersonalAccessToken | undefined>;
	getToken(userId: string, tokenId: string): Promise<PersonalAccessToken | undefined>;
	listTokens(userId: string): Promise<PersonalAccessToken[]>;
	deleteToken(userId: string, tokenId: string): Promise<boolean>;
	touchToken(tokenId: string, at: Date): Promise<void>;

	createSetupKey(key: SetupKey): Promise<void>;
	getSetupKey(accountId: string, keyId: string): Promise<SetupKey | undefined>;
	listSetupKeys(accountId: string): Promise<SetupKey[]>;
	updateSetupKey(
		accountId: string,
		keyId: string,
		update: SetupKeyUpdate,
		now: Date,
	): Promise<SetupKey | undefined>;
	deleteSetupKey(accountId: string, keyId: string): Promise<boolean>;

	listGroups(accountId: string): Promise<Group[]>;

	/**
	 * Registers a new peer with a setup key, atomically: checks the key
	 * (by hash) is usable, allocates an address and DNS label unique in the
	 * account, counts the use, and adds the peer to All and the key's
	 * auto-groups. Concurrent calls with a one-off key register exactly one peer.
	 */
	registerPeer(hashedSetupKey: string, peer: NewPeer): Promise<RegisterResult>;
	getPeerByPublicKey(wgPublicKey: string): Promise<Peer | undefined>;
	getPeer(accountId: string, peerId: string): Promise<Peer | undefined>;
	listPeers(accountId: string): Promise<Peer[]>;
	/** Groups (ids) each peer of the account belongs to. */
	listPeerGroupIds(accountId: string): Promise<Map<string, string[]>>;
	updatePeer(accountId: string, peerId: string, update: PeerUpdate): Promise<Peer | undefined>;
	recordPeerLogin(peerId: string, system: PeerSystemInfo, at: Date): Promise<Peer | undefined>;
	setPeerConnected(peerId: string, connected: boolean, at: Date): Promise<Peer | undefined>;
	/** Marks every peer disconnected (after a restart no stream survives). */
	markAllPeersDisconnected(at: Date): Promise<void>;
	deletePeer(accountId: string, peerId: string): Promise<Peer | undefined>;
}
