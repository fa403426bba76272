import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { auditEvent } from "../core/audit.js";
import { toDnsLabel, uniqueDnsLabel } from "../core/dns-label.js";
import { allocateHost, cidrContains, intToIp, parseCidr } from "../core/ipam.js";
import { cryptoRandomInt, newId } from "../core/random.js";
import { checkSetupKeyUsable } from "../core/setup-keys.js";
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
	SetupKey,
	User,
} from "../domain/types.js";
import { MIGRATIONS } from "./migrations.js";
import {
	type AccountUpdate,
	type AuditFor,
	type GroupUpdate,
	type NewPeer,
	type PeerUpdate,
	type PolicyInput,
	type RegisterResult,
	type SetupKeyUpdate,
	type Store,
	StoreConflictError,
	type StoredKeyPair,
	StoreReferenceError,
	type UserUpdate,
} from "./store.js";

type Row = Record<string, unknown>;

const ms = (d: Date) => d.getTime();
const date = (v: unknown) => new Date(Number(v));
const optDate = (v: unknown) => (v === null || v === undefined ? null : new Date(Number(v)));
const bool = (v: unknown) => v === 1 || v === 1n;

function toAccount(r: Row): Account {
	return {
		id: String(r.id),
		network: String(r.network),
		dnsDomain: String(r.dns_domain),
		createdAt: date(r.created_at),
		settings: JSON.parse(String(r.settings)) as AccountSettings,
	};
}

function toUser(r: Row): User {
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

function toPolicy(r: Row): Policy {
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

function toEvent(r: Row): AuditEvent {
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

/** The Default policy of a new account: All to All, both ways, every protocol. */
export function defaultPolicy(accountId: string, allGroupId: string, at: Date): Policy {
	return {
		id: newId(),
		accountId,
		name: "Default",
		description: "This is a default policy that allows connections between all the resources",
		enabled: true,
		rules: [
			{
				id: newId(),
				name: "Default",
				description: "This is a default rule that allows connections between all the resources",
				enabled: true,
				action: "accept",
				bidirectional: true,
				protocol: "all",
				ports: [],
				portRanges: [],
				sources: [allGroupId],
				destinations: [allGroupId],
			},
		],
		createdAt: at,
	};
}

const groupsOfRules = (p: Policy) => p.rules.flatMap((r) => [...r.sources, ...r.destinations]);

function toToken(r: Row): PersonalAccessToken {
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

function toSetupKey(r: Row): SetupKey {
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

function toPeer(r: Row): Peer {
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

/** SQLite (better-sqlite3) store: one file, WAL mode, versioned migrations. */
export class SqliteStore implements Store {
	readonly db: Database.Database;

	private constructor(db: Database.Database) {
		this.db = db;
	}

	/** Opens (creating if needed) the database file and applies pending migrations. */
	static open(path: string): SqliteStore {
		if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
		const db = new Database(path);
		db.pragma("journal_mode = WAL");
		db.pragma("synchronous = NORMAL");
		db.pragma("foreign_keys = ON");
		// Several processes may share the file (two management instances, the CLI).
		db.pragma("busy_timeout = 5000");
		const store = new SqliteStore(db);
		store.migrate();
		return store;
	}

	private migrate(): void {
		this.db.exec(
			"CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
		);
		const applied = new Set(
			(this.db.prepare("SELECT version FROM schema_migrations").all() as Row[]).map((r) =>
				Number(r.version),
			),
		);
		for (const m of MIGRATIONS) {
			if (applied.has(m.version)) continue;
			this.db
				.transaction(() => {
					this.db.exec(m.sql);
					this.db
						.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
						.run(m.version, m.name, Date.now());
				})
				.immediate();
		}
	}

	schemaVersion(): number {
		const row = this.db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as Row;
		return Number(row.v ?? 0);
	}

	async close(): Promise<void> {
		if (this.db.open) this.db.close();
	}

	async getOrCreateServerKey(generate: () => StoredKeyPair): Promise<StoredKeyPair> {
		return this.db
			.transaction(() => {
				const row = this.db
					.prepare("SELECT private_key, public_key FROM server_keys WHERE id = 1")
					.get() as Row | undefined;
				if (row) {
					return {
						privateKey: new Uint8Array(row.private_key as Buffer),
						publicKey: new Uint8Array(row.public_key as Buffer),
					};
				}
				const pair = generate();
				this.db
					.prepare(
						"INSERT INTO server_keys (id, private_key, public_key, created_at) VALUES (1, ?, ?, ?)",
					)
					.run(Buffer.from(pair.privateKey), Buffer.from(pair.publicKey), Date.now());
				return pair;
			})
			.immediate();
	}

	async createAccount(account: Account, owner: User): Promise<void> {
		this.db
			.transaction(() => {
				this.db
					.prepare(
						"INSERT INTO accounts (id, network, dns_domain, created_at, settings) VALUES (?, ?, ?, ?, ?)",
					)
					.run(
						account.id,
						account.network,
						account.dnsDomain,
						ms(account.createdAt),
						JSON.stringify(account.settings),
					);
				const allId = newId();
				this.db
					.prepare("INSERT INTO groups (id, account_id, name, issued) VALUES (?, ?, 'All', 'all')")
					.run(allId, account.id);
				this.insertPolicy(defaultPolicy(account.id, allId, account.createdAt));
				this.insertUser(owner);
			})
			.immediate();
	}

	async getAccount(accountId: string): Promise<Account | undefined> {
		const row = this.db.prepare("SELECT * FROM accounts WHERE id = ?").get(accountId) as
			| Row
			| undefined;
		return row && toAccount(row);
	}

	async listAccountNetworks(): Promise<string[]> {
		return (this.db.prepare("SELECT network FROM accounts").all() as Row[]).map((r) =>
			String(r.network),
		);
	}

	async updateAccount(
		accountId: string,
		update: AccountUpdate,
		audit: AuditFor<Account>,
	): Promise<Account | undefined> {
		return this.tx(() => {
			const row = this.db.prepare("SELECT * FROM accounts WHERE id = ?").get(accountId) as
				| Row
				| undefined;
			if (!row) return undefined;
			const before = toAccount(row);
			const network = update.network ?? before.network;
			if (network !== before.network) {
				const peers = this.db
					.prepare("SELECT COUNT(*) AS n FROM peers WHERE account_id = ?")
					.get(accountId) as Row;
				if (Number(peers.n) > 0) {
					throw new StoreReferenceError(
						"the network range can only be changed while the account has no peers",
					);
				}
				const wanted = parseCidr(network);
				const others = this.db
					.prepare("SELECT network FROM accounts WHERE id != ?")
					.all(accountId) as Row[];
				for (const o of others) {
					const c = parseCidr(String(o.network));
					if (cidrContains(c, wanted) || cidrContains(wanted, c)) {
						throw new StoreConflictError(`network range ${network} overlaps another account's`);
					}
				}
			}
			this.db
				.prepare("UPDATE accounts SET settings = ?, network = ? WHERE id = ?")
				.run(JSON.stringify(update.settings), network, accountId);
			const after: Account = { ...before, settings: update.settings, network };
			this.insertEvents(audit(before, after));
			return after;
		});
	}

	async countUsers(): Promise<number> {
		return Number((this.db.prepare("SELECT COUNT(*) AS n FROM users").get() as Row).n);
	}

	/** Runs `fn` as one IMMEDIATE transaction (takes the write lock before reading). */
	private tx<T>(fn: () => T): T {
		return this.db.transaction(fn).immediate();
	}

	private insertEvents(events: readonly NewAuditEvent[]): void {
		if (events.length === 0) return;
		const insert = this.db.prepare(
			`INSERT INTO audit_events (account_id, timestamp, activity_code, initiator_id, initiator_name,
			 initiator_email, target_id, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		);
		for (const e of events) {
			insert.run(
				e.accountId,
				ms(e.timestamp),
				e.activityCode,
				e.initiatorId,
				e.initiatorName,
				e.initiatorEmail,
				e.targetId,
				JSON.stringify(e.meta),
			);
		}
	}

	/** Throws StoreReferenceError naming the ids that are not groups of the account. */
	private assertGroups(accountId: string, groupIds: readonly string[]): void {
		this.assertKnownIds("groups", "group", accountId, groupIds);
	}

	/** Throws StoreReferenceError naming the ids that are not peers of the account. */
	private assertPeers(accountId: string, peerIds: readonly string[]): void {
		this.assertKnownIds("peers", "peer", accountId, peerIds);
	}

	/** `table` is one of our own table names, never input. */
	private assertKnownIds(
		table: "groups" | "peers",
		noun: string,
		accountId: string,
		ids: readonly string[],
	): void {
		if (ids.length === 0) return;
		const unique = [...new Set(ids)];
		const known = new Set(
			(
				this.db
					.prepare(
						`SELECT id FROM ${table} WHERE account_id = ? AND id IN (SELECT value FROM json_each(?))`,
					)
					.all(accountId, JSON.stringify(unique)) as Row[]
			).map((r) => String(r.id)),
		);
		const missing = unique.filter((id) => !known.has(id));
		if (missing.length > 0)
			throw new StoreReferenceError(`unknown ${noun} id(s): ${missing.join(", ")}`);
	}

	private insertUser(user: User): void {
		this.db
			.prepare(
				"INSERT INTO users (id, account_id, name, email, role, is_service_user, blocked, auto_groups, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			)
			.run(
				user.id,
				user.accountId,
				user.name,
				user.email,
				user.role,
				user.isServiceUser ? 1 : 0,
				user.blocked ? 1 : 0,
				JSON.stringify(user.autoGroups),
				ms(user.createdAt),
			);
	}

	async createUser(user: User): Promise<void> {
		this.insertUser(user);
	}

	async addUser(user: User, audit: NewAuditEvent[]): Promise<void> {
		this.tx(() => {
			this.assertGroups(user.accountId, user.autoGroups);
			if (
				user.email !== "" &&
				this.db
					.prepare("SELECT 1 FROM users WHERE account_id = ? AND lower(email) = lower(?)")
					.get(user.accountId, user.email)
			) {
				throw new StoreConflictError(`a user with email ${user.email} already exists`);
			}
			this.insertUser(user);
			this.insertEvents(audit);
		});
	}

	async updateUser(
		accountId: string,
		userId: string,
		update: UserUpdate,
		audit: AuditFor<User>,
	): Promise<User | undefined> {
		return this.tx(() => {
			const row = this.db
				.prepare("SELECT * FROM users WHERE account_id = ? AND id = ?")
				.get(accountId, userId) as Row | undefined;
			if (!row) return undefined;
			const before = toUser(row);
			this.assertGroups(accountId, update.autoGroups);
			this.db
				.prepare("UPDATE users SET role = ?, auto_groups = ?, blocked = ? WHERE id = ?")
				.run(update.role, JSON.stringify(update.autoGroups), update.blocked ? 1 : 0, userId);
			const after: User = {
				...before,
				role: update.role,
				autoGroups: update.autoGroups,
				blocked: update.blocked,
			};
			this.insertEvents(audit(before, after));
			return after;
		});
	}

	async deleteUser(
		accountId: string,
		userId: string,
		audit: AuditFor<User>,
	): Promise<User | undefined> {
		return this.deleteAudited("users", toUser, accountId, userId, audit);
	}

	async getUser(userId: string): Promise<User | undefined> {
		const row = this.db.prepare("SELECT * FROM users WHERE id = ?").get(userId) as Row | undefined;
		return row && toUser(row);
	}

	async listUsers(accountId: string): Promise<User[]> {
		return (
			this.db
				.prepare("SELECT * FROM users WHERE account_id = ? ORDER BY created_at")
				.all(accountId) as Row[]
		).map(toUser);
	}

	async createToken(t: PersonalAccessToken, audit: NewAuditEvent[] = []): Promise<void> {
		this.tx(() => this.insertToken(t, audit));
	}

	private insertToken(t: PersonalAccessToken, audit: NewAuditEvent[]): void {
		this.insertEvents(audit);
		this.db
			.prepare(
				"INSERT INTO personal_access_tokens (id, user_id, name, hashed_token, expires_at, created_by, created_at, last_used) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			)
			.run(
				t.id,
				t.userId,
				t.name,
				t.hashedToken,
				ms(t.expiresAt),
				t.createdBy,
				ms(t.createdAt),
				t.lastUsed && ms(t.lastUsed),
			);
	}

	async getTokenByHash(hashedToken: string): Promise<PersonalAccessToken | undefined> {
		const row = this.db
			.prepare("SELECT * FROM personal_access_tokens WHERE hashed_token = ?")
			.get(hashedToken) as Row | undefined;
		return row && toToken(row);
	}

	async getToken(userId: string, tokenId: string): Promise<PersonalAccessToken | undefined> {
		const row = this.db
			.prepare("SELECT * FROM personal_access_tokens WHERE user_id = ? AND id = ?")
			.get(userId, tokenId) as Row | undefined;
		return row && toToken(row);
	}

	async listTokens(userId: string): Promise<PersonalAccessToken[]> {
		return (
			this.db
				.prepare("SELECT * FROM personal_access_tokens WHERE user_id = ? ORDER BY created_at")
				.all(userId) as Row[]
		).map(toToken);
	}

	async deleteToken(
		userId: string,
		tokenId: string,
		audit: NewAuditEvent[] = [],
	): Promise<boolean> {
		return this.tx(() => {
			const deleted =
				this.db
					.prepare("DELETE FROM personal_access_tokens WHERE user_id = ? AND id = ?")
					.run(userId, tokenId).changes > 0;
			if (deleted) this.insertEvents(audit);
			return deleted;
		});
	}

	async touchToken(tokenId: string, at: Date): Promise<void> {
		this.db
			.prepare("UPDATE personal_access_tokens SET last_used = ? WHERE id = ?")
			.run(ms(at), tokenId);
	}

	async createSetupKey(k: SetupKey, audit: NewAuditEvent[] = []): Promise<void> {
		this.tx(() => {
			this.assertGroups(k.accountId, k.autoGroups);
			this.insertSetupKey(k);
			this.insertEvents(audit);
		});
	}

	private insertSetupKey(k: SetupKey): void {
		this.db
			.prepare(
				`INSERT INTO setup_keys (id, account_id, name, hashed_key, key_prefix, type, created_at, updated_at, expires_at,
				 revoked, used_times, last_used, usage_limit, auto_groups, ephemeral) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			)
			.run(
				k.id,
				k.accountId,
				k.name,
				k.hashedKey,
				k.keyPrefix,
				k.type,
				ms(k.createdAt),
				ms(k.updatedAt),
				k.expiresAt && ms(k.expiresAt),
				k.revoked ? 1 : 0,
				k.usedTimes,
				k.lastUsed && ms(k.lastUsed),
				k.usageLimit,
				JSON.stringify(k.autoGroups),
				k.ephemeral ? 1 : 0,
			);
	}

	async getSetupKey(accountId: string, keyId: string): Promise<SetupKey | undefined> {
		const row = this.db
			.prepare("SELECT * FROM setup_keys WHERE account_id = ? AND id = ?")
			.get(accountId, keyId) as Row | undefined;
		return row && toSetupKey(row);
	}

	async listSetupKeys(accountId: string): Promise<SetupKey[]> {
		return (
			this.db
				.prepare("SELECT * FROM setup_keys WHERE account_id = ? ORDER BY created_at")
				.all(accountId) as Row[]
		).map(toSetupKey);
	}

	async updateSetupKey(
		accountId: string,
		keyId: string,
		update: SetupKeyUpdate,
		now: Date,
		audit?: AuditFor<SetupKey>,
	): Promise<SetupKey | undefined> {
		return this.db
			.transaction(() => {
				const row = this.db
					.prepare("SELECT * FROM setup_keys WHERE account_id = ? AND id = ?")
					.get(accountId, keyId) as Row | undefined;
				if (!row) return undefined;
				const key = toSetupKey(row);
				if (update.autoGroups) this.assertGroups(accountId, update.autoGroups);
				const next = {
					revoked: update.revoked ?? key.revoked,
					autoGroups: update.autoGroups ?? key.autoGroups,
					name: update.name ?? key.name,
				};
				this.db
					.prepare(
						"UPDATE setup_keys SET revoked = ?, auto_groups = ?, name = ?, updated_at = ? WHERE id = ?",
					)
					.run(next.revoked ? 1 : 0, JSON.stringify(next.autoGroups), next.name, ms(now), keyId);
				const after = { ...key, ...next, updatedAt: now };
				if (audit) this.insertEvents(audit(key, after));
				return after;
			})
			.immediate();
	}

	async deleteSetupKey(
		accountId: string,
		keyId: string,
		audit?: AuditFor<SetupKey>,
	): Promise<boolean> {
		return (
			(await this.deleteAudited("setup_keys", toSetupKey, accountId, keyId, audit)) !== undefined
		);
	}

	async listGroups(accountId: string): Promise<Group[]> {
		const groups = this.db
			.prepare("SELECT * FROM groups WHERE account_id = ? ORDER BY name")
			.all(accountId) as Row[];
		const members = this.db
			.prepare(
				"SELECT gp.group_id, gp.peer_id FROM group_peers gp JOIN groups g ON g.id = gp.group_id WHERE g.account_id = ?",
			)
			.all(accountId) as Row[];
		const byGroup = new Map<string, string[]>();
		for (const m of members) {
			const list = byGroup.get(String(m.group_id)) ?? [];
			list.push(String(m.peer_id));
			byGroup.set(String(m.group_id), list);
		}
		return groups.map((g) => ({
			id: String(g.id),
			accountId: String(g.account_id),
			name: String(g.name),
			issued: g.issued as Group["issued"],
			peerIds: byGroup.get(String(g.id)) ?? [],
		}));
	}

	async getGroup(accountId: string, groupId: string): Promise<Group | undefined> {
		const row = this.db
			.prepare("SELECT * FROM groups WHERE account_id = ? AND id = ?")
			.get(accountId, groupId) as Row | undefined;
		return row && this.groupOf(row);
	}

	private groupOf(row: Row): Group {
		const peerIds = (
			this.db
				.prepare("SELECT peer_id FROM group_peers WHERE group_id = ? ORDER BY peer_id")
				.all(String(row.id)) as Row[]
		).map((r) => String(r.peer_id));
		return {
			id: String(row.id),
			accountId: String(row.account_id),
			name: String(row.name),
			issued: row.issued as Group["issued"],
			peerIds,
		};
	}

	private assertGroupNameFree(accountId: string, name: string, exceptId: string): void {
		if (
			this.db
				.prepare("SELECT 1 FROM groups WHERE account_id = ? AND name = ? AND id != ?")
				.get(accountId, name, exceptId)
		) {
			throw new StoreConflictError(`a group named "${name}" already exists`);
		}
	}

	private setMembers(groupId: string, peerIds: readonly string[]): void {
		this.db.prepare("DELETE FROM group_peers WHERE group_id = ?").run(groupId);
		const add = this.db.prepare(
			"INSERT OR IGNORE INTO group_peers (group_id, peer_id) VALUES (?, ?)",
		);
		for (const p of peerIds) add.run(groupId, p);
	}

	async createGroup(group: Group, audit: NewAuditEvent[]): Promise<void> {
		this.tx(() => {
			this.assertGroupNameFree(group.accountId, group.name, group.id);
			this.assertPeers(group.accountId, group.peerIds);
			this.db
				.prepare("INSERT INTO groups (id, account_id, name, issued) VALUES (?, ?, ?, ?)")
				.run(group.id, group.accountId, group.name, group.issued);
			this.setMembers(group.id, group.peerIds);
			this.insertEvents(audit);
		});
	}

	async updateGroup(
		accountId: string,
		groupId: string,
		update: GroupUpdate,
		audit: AuditFor<Group>,
	): Promise<Group | undefined> {
		return this.tx(() => {
			const row = this.db
				.prepare("SELECT * FROM groups WHERE account_id = ? AND id = ?")
				.get(accountId, groupId) as Row | undefined;
			if (!row) return undefined;
			const before = this.groupOf(row);
			this.assertGroupNameFree(accountId, update.name, groupId);
			this.assertPeers(accountId, update.peerIds);
			this.db.prepare("UPDATE groups SET name = ? WHERE id = ?").run(update.name, groupId);
			this.setMembers(groupId, update.peerIds);
			const after: Group = {
				...before,
				name: update.name,
				peerIds: [...new Set(update.peerIds)].sort(),
			};
			this.insertEvents(audit(before, after));
			return after;
		});
	}

	async deleteGroup(
		accountId: string,
		groupId: string,
		audit: AuditFor<Group>,
	): Promise<Group | undefined> {
		return this.tx(() => {
			const row = this.db
				.prepare("SELECT * FROM groups WHERE account_id = ? AND id = ?")
				.get(accountId, groupId) as Row | undefined;
			if (!row) return undefined;
			const group = this.groupOf(row);
			const users: string[] = [];
			for (const p of this.policiesOf(accountId)) {
				if (groupsOfRules(p).includes(groupId)) users.push(`policy "${p.name}"`);
			}
			for (const k of this.setupKeysOf(accountId)) {
				if (k.autoGroups.includes(groupId)) users.push(`setup key "${k.name}"`);
			}
			for (const u of this.usersOf(accountId)) {
				if (u.autoGroups.includes(groupId)) users.push(`user "${u.name}"`);
			}
			if (users.length > 0) {
				throw new StoreReferenceError(
					`group "${group.name}" is still used by ${users.slice(0, 5).join(", ")}${users.length > 5 ? ` and ${users.length - 5} more` : ""}`,
				);
			}
			this.db.prepare("DELETE FROM groups WHERE id = ?").run(groupId);
			this.insertEvents(audit(group, group));
			return group;
		});
	}

	private policiesOf(accountId: string): Policy[] {
		return (
			this.db
				.prepare("SELECT * FROM policies WHERE account_id = ? ORDER BY created_at, rowid")
				.all(accountId) as Row[]
		).map(toPolicy);
	}

	private setupKeysOf(accountId: string): SetupKey[] {
		return (
			this.db
				.prepare("SELECT * FROM setup_keys WHERE account_id = ? ORDER BY created_at")
				.all(accountId) as Row[]
		).map(toSetupKey);
	}

	private usersOf(accountId: string): User[] {
		return (
			this.db
				.prepare("SELECT * FROM users WHERE account_id = ? ORDER BY created_at")
				.all(accountId) as Row[]
		).map(toUser);
	}

	async listPolicies(accountId: string): Promise<Policy[]> {
		return this.policiesOf(accountId);
	}

	async getPolicy(accountId: string, policyId: string): Promise<Policy | undefined> {
		const row = this.db
			.prepare("SELECT * FROM policies WHERE account_id = ? AND id = ?")
			.get(accountId, policyId) as Row | undefined;
		return row && toPolicy(row);
	}

	private insertPolicy(p: Policy): void {
		this.db
			.prepare(
				"INSERT INTO policies (id, account_id, name, description, enabled, rules, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			)
			.run(
				p.id,
				p.accountId,
				p.name,
				p.description,
				p.enabled ? 1 : 0,
				JSON.stringify(p.rules),
				ms(p.createdAt),
			);
	}

	async createPolicy(policy: Policy, audit: NewAuditEvent[]): Promise<void> {
		this.tx(() => {
			this.assertGroups(policy.accountId, groupsOfRules(policy));
			this.insertPolicy(policy);
			this.insertEvents(audit);
		});
	}

	async updatePolicy(
		accountId: string,
		policyId: string,
		update: PolicyInput,
		audit: AuditFor<Policy>,
	): Promise<Policy | undefined> {
		return this.tx(() => {
			const row = this.db
				.prepare("SELECT * FROM policies WHERE account_id = ? AND id = ?")
				.get(accountId, policyId) as Row | undefined;
			if (!row) return undefined;
			const before = toPolicy(row);
			const after: Policy = { ...before, ...update };
			this.assertGroups(accountId, groupsOfRules(after));
			this.db
				.prepare(
					"UPDATE policies SET name = ?, description = ?, enabled = ?, rules = ? WHERE id = ?",
				)
				.run(
					after.name,
					after.description,
					after.enabled ? 1 : 0,
					JSON.stringify(after.rules),
					policyId,
				);
			this.insertEvents(audit(before, after));
			return after;
		});
	}

	async deletePolicy(
		accountId: string,
		policyId: string,
		audit: AuditFor<Policy>,
	): Promise<Policy | undefined> {
		return this.deleteAudited("policies", toPolicy, accountId, policyId, audit);
	}

	async listEvents(accountId: string, limit: number): Promise<AuditEvent[]> {
		return (
			this.db
				.prepare("SELECT * FROM audit_events WHERE account_id = ? ORDER BY id DESC LIMIT ?")
				.all(accountId, limit) as Row[]
		).map(toEvent);
	}

	async registerPeer(hashedSetupKey: string, input: NewPeer): Promise<RegisterResult> {
		// IMMEDIATE takes the write lock before reading, so two registrations
		// (in this process or another) can never both see a one-off key unused.
		return this.db
			.transaction((): RegisterResult => {
				const keyRow = this.db
					.prepare("SELECT * FROM setup_keys WHERE hashed_key = ?")
					.get(hashedSetupKey) as Row | undefined;
				if (!keyRow) return { ok: false, reason: "setup key is not valid" };
				const key = toSetupKey(keyRow);
				const check = checkSetupKeyUsable(key, input.now);
				if (!check.ok) return check;
				if (this.db.prepare("SELECT 1 FROM peers WHERE wg_public_key = ?").get(input.wgPublicKey)) {
					return { ok: false, reason: "a peer with this WireGuard key is already registered" };
				}
				const account = this.db
					.prepare("SELECT * FROM accounts WHERE id = ?")
					.get(key.accountId) as Row;
				const network = parseCidr(String(account.network));
				const used = new Set(
					(
						this.db.prepare("SELECT ip FROM peers WHERE account_id = ?").all(key.accountId) as Row[]
					).map((r) => Number(r.ip)),
				);
				const ip = allocateHost(network, used, cryptoRandomInt);
				const labels = new Set(
					(
						this.db
							.prepare("SELECT dns_label FROM peers WHERE account_id = ?")
							.all(key.accountId) as Row[]
					).map((r) => String(r.dns_label)),
				);
				const dnsLabel = uniqueDnsLabel(toDnsLabel(input.name), labels);
				const now = ms(input.now);
				const peer: Peer = {
					id: newId(),
					accountId: key.accountId,
					wgPublicKey: input.wgPublicKey,
					name: input.name,
					dnsLabel,
					ip: intToIp(ip),
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
				this.db
					.prepare(
						`INSERT INTO peers (id, account_id, wg_public_key, name, dns_label, ip, hostname, os, os_version, kernel_version,
						 agent_version, setup_key_id, user_id, ephemeral, ssh_enabled, login_expiration_enabled, connected, created_at,
						 last_login, last_seen, connection_ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, 0, 0, 0, ?, ?, ?, ?)`,
					)
					.run(
						peer.id,
						peer.accountId,
						peer.wgPublicKey,
						peer.name,
						peer.dnsLabel,
						ip,
						input.system.hostname,
						input.system.os,
						input.system.osVersion,
						input.system.kernelVersion,
						input.system.agentVersion,
						key.id,
						key.ephemeral ? 1 : 0,
						now,
						now,
						now,
						input.system.connectionIp ?? "",
					);
				this.db
					.prepare("UPDATE setup_keys SET used_times = used_times + 1, last_used = ? WHERE id = ?")
					.run(now, key.id);
				const groupIds = this.db
					.prepare(
						`SELECT id FROM groups WHERE account_id = ? AND (issued = 'all' OR id IN (SELECT value FROM json_each(?)))`,
					)
					.all(key.accountId, JSON.stringify(key.autoGroups)) as Row[];
				const addMember = this.db.prepare(
					"INSERT OR IGNORE INTO group_peers (group_id, peer_id) VALUES (?, ?)",
				);
				for (const g of groupIds) addMember.run(String(g.id), peer.id);
				this.insertEvents([
					auditEvent(
						key.accountId,
						{ id: key.id, name: key.name, email: "" },
						"peer.setupkey.add",
						peer.id,
						input.now,
						{ name: peer.name, ip: peer.ip, dns_label: peer.dnsLabel, setup_key: key.name },
					),
				]);
				return {
					ok: true,
					peer,
					setupKey: { ...key, usedTimes: key.usedTimes + 1, lastUsed: input.now },
					groupIds: groupIds.map((g) => String(g.id)),
				};
			})
			.immediate();
	}

	async getPeerByPublicKey(wgPublicKey: string): Promise<Peer | undefined> {
		const row = this.db.prepare("SELECT * FROM peers WHERE wg_public_key = ?").get(wgPublicKey) as
			| Row
			| undefined;
		return row && toPeer(row);
	}

	async getPeer(accountId: string, peerId: string): Promise<Peer | undefined> {
		const row = this.db
			.prepare("SELECT * FROM peers WHERE account_id = ? AND id = ?")
			.get(accountId, peerId) as Row | undefined;
		return row && toPeer(row);
	}

	async listPeers(accountId: string): Promise<Peer[]> {
		return (
			this.db
				.prepare("SELECT * FROM peers WHERE account_id = ? ORDER BY created_at, id")
				.all(accountId) as Row[]
		).map(toPeer);
	}

	async listPeerGroupIds(accountId: string): Promise<Map<string, string[]>> {
		const rows = this.db
			.prepare(
				"SELECT gp.peer_id, gp.group_id FROM group_peers gp JOIN peers p ON p.id = gp.peer_id WHERE p.account_id = ?",
			)
			.all(accountId) as Row[];
		const out = new Map<string, string[]>();
		for (const r of rows) {
			const list = out.get(String(r.peer_id)) ?? [];
			list.push(String(r.group_id));
			out.set(String(r.peer_id), list);
		}
		return out;
	}

	async updatePeer(
		accountId: string,
		peerId: string,
		update: PeerUpdate,
		audit?: AuditFor<Peer>,
	): Promise<Peer | undefined> {
		return this.db
			.transaction(() => {
				const row = this.db
					.prepare("SELECT * FROM peers WHERE account_id = ? AND id = ?")
					.get(accountId, peerId) as Row | undefined;
				if (!row) return undefined;
				const peer = toPeer(row);
				let dnsLabel = peer.dnsLabel;
				const name = update.name ?? peer.name;
				if (update.name !== undefined && update.name !== peer.name) {
					// As in NetBird, renaming a peer renames its DNS label.
					const labels = new Set(
						(
							this.db
								.prepare("SELECT dns_label FROM peers WHERE account_id = ? AND id != ?")
								.all(accountId, peerId) as Row[]
						).map((r) => String(r.dns_label)),
					);
					dnsLabel = uniqueDnsLabel(toDnsLabel(update.name), labels);
				}
				const sshEnabled = update.sshEnabled ?? peer.sshEnabled;
				const loginExpirationEnabled = update.loginExpirationEnabled ?? peer.loginExpirationEnabled;
				this.db
					.prepare(
						"UPDATE peers SET name = ?, dns_label = ?, ssh_enabled = ?, login_expiration_enabled = ? WHERE id = ?",
					)
					.run(name, dnsLabel, sshEnabled ? 1 : 0, loginExpirationEnabled ? 1 : 0, peerId);
				const after = { ...peer, name, dnsLabel, sshEnabled, loginExpirationEnabled };
				if (audit) this.insertEvents(audit(peer, after));
				return after;
			})
			.immediate();
	}

	async recordPeerLogin(
		peerId: string,
		system: PeerSystemInfo,
		at: Date,
	): Promise<Peer | undefined> {
		this.db
			.prepare(
				"UPDATE peers SET hostname = ?, os = ?, os_version = ?, kernel_version = ?, agent_version = ?, last_login = ?, connection_ip = ? WHERE id = ?",
			)
			.run(
				system.hostname,
				system.os,
				system.osVersion,
				system.kernelVersion,
				system.agentVersion,
				ms(at),
				system.connectionIp ?? "",
				peerId,
			);
		const row = this.db.prepare("SELECT * FROM peers WHERE id = ?").get(peerId) as Row | undefined;
		return row && toPeer(row);
	}

	async setPeerConnected(peerId: string, connected: boolean, at: Date): Promise<Peer | undefined> {
		this.db
			.prepare("UPDATE peers SET connected = ?, last_seen = ? WHERE id = ?")
			.run(connected ? 1 : 0, ms(at), peerId);
		const row = this.db.prepare("SELECT * FROM peers WHERE id = ?").get(peerId) as Row | undefined;
		return row && toPeer(row);
	}

	async markAllPeersDisconnected(at: Date): Promise<void> {
		this.db
			.prepare("UPDATE peers SET connected = 0, last_seen = ? WHERE connected = 1")
			.run(ms(at));
	}

	async deletePeer(
		accountId: string,
		peerId: string,
		audit?: AuditFor<Peer>,
	): Promise<Peer | undefined> {
		return this.deleteAudited("peers", toPeer, accountId, peerId, audit);
	}

	/**
	 * Deletes one row of an account-scoped table and records its audit event
	 * in the same transaction; undefined when the account has no such row.
	 * `table` is one of our own table names, never input.
	 */
	private async deleteAudited<T>(
		table: "users" | "setup_keys" | "policies" | "peers",
		fromRow: (row: Row) => T,
		accountId: string,
		id: string,
		audit?: AuditFor<T>,
	): Promise<T | undefined> {
		return this.tx(() => {
			const row = this.db
				.prepare(`SELECT * FROM ${table} WHERE account_id = ? AND id = ?`)
				.get(accountId, id) as Row | undefined;
			if (!row) return undefined;
			this.db.prepare(`DELETE FROM ${table} WHERE id = ?`).run(id);
			const item = fromRow(row);
			if (audit) this.insertEvents(audit(item, item));
			return item;
		});
	}
}
