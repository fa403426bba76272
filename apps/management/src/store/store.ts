import type {
	Account,
	AuditEvent,
	Group,
	GroupSummary,
	ManagementInstance,
	Network,
	NetworkResource,
	NetworkRouter,
	NewAuditEvent,
	Peer,
	PeerAddress,
	PersonalAccessToken,
	Policy,
	Route,
	SetupKey,
	SyncSession,
	User,
} from "../domain/types.js";

// The persistence boundary: storage only. Domain rules (the default policy,
// network overlap, groups in use, address and DNS-label allocation) live in
// core/ and are applied by the use cases in app/ inside `Store.write`, so a
// backend implements rows and transactions, nothing else. The contract is
// written out in store/README.md and checked by store/conformance/.

export interface StoredKeyPair {
	privateKey: Uint8Array;
	publicKey: Uint8Array;
}

/** A unique name, key, address or network is taken (a unique constraint refused the row). */
export class StoreConflictError extends Error {
	override name = "StoreConflictError";
}

/** The change names objects that do not exist, or removes one still in use. */
export class StoreReferenceError extends Error {
	override name = "StoreReferenceError";
}

/**
 * The database cannot be reached (connection refused or lost, a timeout), or
 * stayed too busy to commit: nothing was changed; the same request may
 * succeed later. REST answers 503, gRPC UNAVAILABLE.
 */
export class StoreUnavailableError extends Error {
	override name = "StoreUnavailableError";
}

/**
 * Reads. Within one `Store.read` or `Store.write` every call sees the same
 * snapshot (plus, in a write, the transaction's own changes). Lists have a
 * stable order, given per method.
 */
export interface StoreReader {
	getServerKey(): Promise<StoredKeyPair | undefined>;

	getAccount(accountId: string): Promise<Account | undefined>;
	/**
	 * A number that grows with every committed change to the account's
	 * peers, groups, group memberships, policies or settings, by any writer
	 * on the database (this instance, another one, the CLI); undefined when
	 * there is no such account. Other changes (tokens, users, setup keys,
	 * events) may leave it. Read in one snapshot with data, it names that
	 * data's state: caches of what is derived from it compare revisions.
	 */
	getAccountRevision(accountId: string): Promise<number | undefined>;
	/** Every account's network (CIDR text), in no particular order. */
	listAccountNetworks(): Promise<string[]>;

	/** Users of all accounts. */
	countUsers(): Promise<number>;
	getUser(userId: string): Promise<User | undefined>;
	/** The installation's oldest owner (the CLI's default user), if any. */
	getFirstOwner(): Promise<User | undefined>;
	/** Oldest first. */
	listUsers(accountId: string): Promise<User[]>;

	getTokenByHash(hashedToken: string): Promise<PersonalAccessToken | undefined>;
	getToken(userId: string, tokenId: string): Promise<PersonalAccessToken | undefined>;
	/** Oldest first. */
	listTokens(userId: string): Promise<PersonalAccessToken[]>;

	getSetupKey(accountId: string, keyId: string): Promise<SetupKey | undefined>;
	getSetupKeyByHash(hashedKey: string): Promise<SetupKey | undefined>;
	/** Oldest first. */
	listSetupKeys(accountId: string): Promise<SetupKey[]>;

	/** By name; each group's peer ids sorted. */
	listGroups(accountId: string): Promise<Group[]>;
	/** By name, without members (a registration reads these, not every membership). */
	listGroupSummaries(accountId: string): Promise<GroupSummary[]>;
	/** The group's peer ids sorted. */
	getGroup(accountId: string, groupId: string): Promise<Group | undefined>;

	/** In creation order. */
	listPolicies(accountId: string): Promise<Policy[]>;
	getPolicy(accountId: string, policyId: string): Promise<Policy | undefined>;

	/** Routes and Networks (migration 6): each list in creation order, all of the account. */
	listRoutes(accountId: string): Promise<Route[]>;
	getRoute(accountId: string, routeId: string): Promise<Route | undefined>;
	listNetworks(accountId: string): Promise<Network[]>;
	getNetwork(accountId: string, networkId: string): Promise<Network | undefined>;
	listNetworkResources(accountId: string): Promise<NetworkResource[]>;
	getNetworkResource(accountId: string, resourceId: string): Promise<NetworkResource | undefined>;
	listNetworkRouters(accountId: string): Promise<NetworkRouter[]>;
	getNetworkRouter(accountId: string, routerId: string): Promise<NetworkRouter | undefined>;

	/** Newest first, at most `limit`. */
	listEvents(accountId: string, limit: number): Promise<AuditEvent[]>;

	getPeerByPublicKey(wgPublicKey: string): Promise<Peer | undefined>;
	getPeer(accountId: string, peerId: string): Promise<Peer | undefined>;
	/** Oldest first (creation time, then id). */
	listPeers(accountId: string): Promise<Peer[]>;
	/**
	 * The address and DNS label of every peer of the account, in no
	 * particular order: what a registration needs, without building whole
	 * peers (a registration storm would otherwise read every peer per login).
	 */
	listPeerAddresses(accountId: string): Promise<PeerAddress[]>;
	/** Groups (ids, sorted) each peer of the account belongs to; peers in no group are absent. */
	listPeerGroupIds(accountId: string): Promise<Map<string, string[]>>;

	/** Every registered management instance, by id. */
	listInstances(): Promise<ManagementInstance[]>;
	/** The Sync sessions an instance holds, oldest first (since, then stream id). */
	listSyncSessionsOfInstance(instanceId: string): Promise<SyncSession[]>;
	/** How many Sync sessions the peer holds, on any instance. */
	countSyncSessionsOfPeer(peerId: string): Promise<number>;
}

/**
 * Writes inside one transaction: plain row operations, no domain rules.
 * Unique constraints (account network; user id; token hash; setup-key hash;
 * group name in an account; peer WireGuard key; peer address and DNS label in
 * an account) throw StoreConflictError. Rows of another account are never
 * touched: every write is scoped by the account id it names. Deleting a row
 * removes what belongs to it (a user's tokens, a peer's and a group's
 * memberships).
 */
export interface StoreWriter extends StoreReader {
	/** StoreConflictError when a key is already stored. */
	insertServerKey(pair: StoredKeyPair, at: Date): Promise<void>;

	insertAccount(account: Account): Promise<void>;
	/** Stores `settings` and `network`; false when there is no such account. */
	updateAccount(account: Account): Promise<boolean>;

	insertUser(user: User): Promise<void>;
	/** Stores role, autoGroups and blocked. */
	updateUser(user: User): Promise<boolean>;
	/** Removes the user and its tokens. */
	deleteUser(accountId: string, userId: string): Promise<boolean>;

	insertToken(token: PersonalAccessToken): Promise<void>;
	touchToken(tokenId: string, at: Date): Promise<void>;
	deleteToken(userId: string, tokenId: string): Promise<boolean>;

	insertSetupKey(key: SetupKey): Promise<void>;
	/** Stores name, revoked, autoGroups, usedTimes, lastUsed and updatedAt. */
	updateSetupKey(key: SetupKey): Promise<boolean>;
	deleteSetupKey(accountId: string, keyId: string): Promise<boolean>;

	/** Inserts the group with its members (which must be peers of the account). */
	insertGroup(group: Group): Promise<void>;
	/** Stores the name and replaces the membership. */
	updateGroup(group: Group): Promise<boolean>;
	deleteGroup(accountId: string, groupId: string): Promise<boolean>;
	/** Adds one peer to groups of its account (idempotent). */
	addPeerToGroups(accountId: string, peerId: string, groupIds: readonly string[]): Promise<void>;

	insertPolicy(policy: Policy): Promise<void>;
	/** Stores name, description, enabled and rules. */
	updatePolicy(policy: Policy): Promise<boolean>;
	deletePolicy(accountId: string, policyId: string): Promise<boolean>;

	insertRoute(route: Route): Promise<void>;
	/** Stores every field but id and accountId. */
	updateRoute(route: Route): Promise<boolean>;
	deleteRoute(accountId: string, routeId: string): Promise<boolean>;
	insertNetwork(network: Network): Promise<void>;
	/** Stores name and description. */
	updateNetwork(network: Network): Promise<boolean>;
	/** Removes the network with its resources and routers. */
	deleteNetwork(accountId: string, networkId: string): Promise<boolean>;
	/** StoreReferenceError when the network is not stored. */
	insertNetworkResource(resource: NetworkResource): Promise<void>;
	/** Stores every field but id, accountId and networkId; false unless it is in that network. */
	updateNetworkResource(resource: NetworkResource): Promise<boolean>;
	deleteNetworkResource(accountId: string, resourceId: string): Promise<boolean>;
	/** StoreReferenceError when the network is not stored. */
	insertNetworkRouter(router: NetworkRouter): Promise<void>;
	/** Stores every field but id, accountId and networkId; false unless it is in that network. */
	updateNetworkRouter(router: NetworkRouter): Promise<boolean>;
	deleteNetworkRouter(accountId: string, routerId: string): Promise<boolean>;

	insertPeer(peer: Peer): Promise<void>;
	/** Stores every field but id, accountId, wgPublicKey, ip, setupKeyId, userId and createdAt. */
	updatePeer(peer: Peer): Promise<boolean>;
	/** Removes the peer and its memberships. */
	deletePeer(accountId: string, peerId: string): Promise<boolean>;
	/** Marks every connected peer disconnected, last seen `at` (after a restart no stream survives). */
	markAllPeersDisconnected(at: Date): Promise<void>;

	/** Inserts the instance, or replaces its startedAt and heartbeatAt when the id is stored. */
	putInstance(instance: ManagementInstance): Promise<void>;
	/** Stores a new heartbeat; false when the instance is not stored (it was expired). */
	touchInstance(instanceId: string, at: Date): Promise<boolean>;
	/** Removes the instance and every Sync session it holds; false when it was not stored. */
	deleteInstance(instanceId: string): Promise<boolean>;
	/**
	 * StoreConflictError when the stream id is stored; StoreReferenceError
	 * when the peer or the instance is not. Deleting the peer deletes it.
	 */
	insertSyncSession(session: SyncSession): Promise<void>;
	/** Removes that one stream's session; false when it was not stored. */
	deleteSyncSession(streamId: string): Promise<boolean>;
	/** Removes every session the instance holds (the instance row stays). */
	deleteSyncSessionsOfInstance(instanceId: string): Promise<void>;

	appendEvents(events: readonly NewAuditEvent[]): Promise<void>;
}

export interface WriteOptions {
	/**
	 * Goes before this instance's queued writes and reads (PostgreSQL: ahead
	 * of the write turn and the wait for a pool connection). For the
	 * instance heartbeat: a backlog of writes must never make a live
	 * instance look dead to the others. SQLite runs every transaction of an
	 * instance in call order; they take milliseconds, so it needs no jump.
	 */
	urgent?: boolean;
}

/** What runs write transactions: the store itself, or a GroupCommit in front of it. */
export interface StoreWrites {
	/**
	 * Runs `fn` as one transaction, SERIALIZABLE with every other write (of
	 * this instance and of others on the same database): all its changes
	 * commit together, or none when `fn` throws (the error is re-thrown).
	 * A backend may run `fn` again after a serialization failure, so `fn`
	 * must have no effect outside `tx` before it returns.
	 */
	write<T>(fn: (tx: StoreWriter) => Promise<T>, options?: WriteOptions): Promise<T>;
}

export interface Store extends StoreReader, StoreWrites {
	/**
	 * Runs `fn` on one consistent snapshot: every read in it agrees with every
	 * other (REPEATABLE READ). Concurrent writes commit independently and are
	 * not seen. `fn` must not call `read`/`write` on the same store (use `tx`).
	 */
	read<T>(fn: (tx: StoreReader) => Promise<T>): Promise<T>;
	close(): Promise<void>;
}
