import { AsyncLocalStorage } from "node:async_hooks";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { intToIp, ipToInt } from "../../core/ipam.js";
import type {
	Account,
	Group,
	GroupSummary,
	ManagementInstance,
	NewAuditEvent,
	Peer,
	PeerAddress,
	PersonalAccessToken,
	Policy,
	SetupKey,
	SyncSession,
	User,
} from "../../domain/types.js";
import { SingleReads } from "../single-reads.js";
import {
	StoreConflictError,
	type StoredKeyPair,
	type StoreReader,
	StoreReferenceError,
	type StoreWriter,
} from "../store.js";
import { MIGRATIONS } from "./migrations.js";
import {
	flag,
	ms,
	optMs,
	type Row,
	toAccount,
	toEvent,
	toGroup,
	toGroupSummary,
	toInstance,
	toPeer,
	toPolicy,
	toSetupKey,
	toSyncSession,
	toToken,
	toUser,
} from "./rows.js";

/** How long a write waits for another connection (process) to release the file's write lock. */
const WRITE_LOCK_WAIT_MS = 10_000;

/** Reads on the connection; prepared statements are cached per SQL text. */
class SqliteReader implements StoreReader {
	private readonly statements = new Map<string, Database.Statement>();

	constructor(protected readonly db: Database.Database) {}

	protected sql(text: string): Database.Statement {
		let s = this.statements.get(text);
		if (!s) {
			s = this.db.prepare(text);
			this.statements.set(text, s);
		}
		return s;
	}

	protected one(text: string, ...args: unknown[]): Row | undefined {
		return this.sql(text).get(...args) as Row | undefined;
	}

	protected all(text: string, ...args: unknown[]): Row[] {
		return this.sql(text).all(...args) as Row[];
	}

	async getServerKey(): Promise<StoredKeyPair | undefined> {
		const row = this.one("SELECT private_key, public_key FROM server_keys WHERE id = 1");
		return (
			row && {
				privateKey: new Uint8Array(row.private_key as Buffer),
				publicKey: new Uint8Array(row.public_key as Buffer),
			}
		);
	}

	async getAccount(accountId: string): Promise<Account | undefined> {
		const row = this.one("SELECT * FROM accounts WHERE id = ?", accountId);
		return row && toAccount(row);
	}

	async getAccountRevision(accountId: string): Promise<number | undefined> {
		const row = this.one("SELECT revision FROM accounts WHERE id = ?", accountId);
		return row && Number(row.revision);
	}

	async listAccountNetworks(): Promise<string[]> {
		return this.all("SELECT network FROM accounts").map((r) => String(r.network));
	}

	async countUsers(): Promise<number> {
		return Number(this.one("SELECT COUNT(*) AS n FROM users")?.n ?? 0);
	}

	async getUser(userId: string): Promise<User | undefined> {
		const row = this.one("SELECT * FROM users WHERE id = ?", userId);
		return row && toUser(row);
	}

	async getFirstOwner(): Promise<User | undefined> {
		const row = this.one(
			"SELECT * FROM users WHERE role = 'owner' ORDER BY created_at, rowid LIMIT 1",
		);
		return row && toUser(row);
	}

	async listUsers(accountId: string): Promise<User[]> {
		return this.all(
			"SELECT * FROM users WHERE account_id = ? ORDER BY created_at, rowid",
			accountId,
		).map(toUser);
	}

	async getTokenByHash(hashedToken: string): Promise<PersonalAccessToken | undefined> {
		const row = this.one(
			"SELECT * FROM personal_access_tokens WHERE hashed_token = ?",
			hashedToken,
		);
		return row && toToken(row);
	}

	async getToken(userId: string, tokenId: string): Promise<PersonalAccessToken | undefined> {
		const row = this.one(
			"SELECT * FROM personal_access_tokens WHERE user_id = ? AND id = ?",
			userId,
			tokenId,
		);
		return row && toToken(row);
	}

	async listTokens(userId: string): Promise<PersonalAccessToken[]> {
		return this.all(
			"SELECT * FROM personal_access_tokens WHERE user_id = ? ORDER BY created_at, rowid",
			userId,
		).map(toToken);
	}

	async getSetupKey(accountId: string, keyId: string): Promise<SetupKey | undefined> {
		const row = this.one(
			"SELECT * FROM setup_keys WHERE account_id = ? AND id = ?",
			accountId,
			keyId,
		);
		return row && toSetupKey(row);
	}

	async getSetupKeyByHash(hashedKey: string): Promise<SetupKey | undefined> {
		const row = this.one("SELECT * FROM setup_keys WHERE hashed_key = ?", hashedKey);
		return row && toSetupKey(row);
	}

	async listSetupKeys(accountId: string): Promise<SetupKey[]> {
		return this.all(
			"SELECT * FROM setup_keys WHERE account_id = ? ORDER BY created_at, rowid",
			accountId,
		).map(toSetupKey);
	}

	async listGroups(accountId: string): Promise<Group[]> {
		const groups = this.all("SELECT * FROM groups WHERE account_id = ? ORDER BY name", accountId);
		const members = this.all(
			`SELECT gp.group_id, gp.peer_id FROM group_peers gp JOIN groups g ON g.id = gp.group_id
			 WHERE g.account_id = ? ORDER BY gp.peer_id`,
			accountId,
		);
		const byGroup = new Map<string, string[]>();
		for (const m of members) {
			const list = byGroup.get(String(m.group_id)) ?? [];
			list.push(String(m.peer_id));
			byGroup.set(String(m.group_id), list);
		}
		return groups.map((g) => toGroup(g, byGroup.get(String(g.id)) ?? []));
	}

	async listGroupSummaries(accountId: string): Promise<GroupSummary[]> {
		return this.all("SELECT * FROM groups WHERE account_id = ? ORDER BY name", accountId).map(
			toGroupSummary,
		);
	}

	async getGroup(accountId: string, groupId: string): Promise<Group | undefined> {
		const row = this.one(
			"SELECT * FROM groups WHERE account_id = ? AND id = ?",
			accountId,
			groupId,
		);
		if (!row) return undefined;
		const peerIds = this.all(
			"SELECT peer_id FROM group_peers WHERE group_id = ? ORDER BY peer_id",
			groupId,
		).map((r) => String(r.peer_id));
		return toGroup(row, peerIds);
	}

	async listPolicies(accountId: string): Promise<Policy[]> {
		return this.all(
			"SELECT * FROM policies WHERE account_id = ? ORDER BY created_at, rowid",
			accountId,
		).map(toPolicy);
	}

	async getPolicy(accountId: string, policyId: string): Promise<Policy | undefined> {
		const row = this.one(
			"SELECT * FROM policies WHERE account_id = ? AND id = ?",
			accountId,
			policyId,
		);
		return row && toPolicy(row);
	}

	async listEvents(accountId: string, limit: number) {
		return this.all(
			"SELECT * FROM audit_events WHERE account_id = ? ORDER BY id DESC LIMIT ?",
			accountId,
			limit,
		).map(toEvent);
	}

	async getPeerByPublicKey(wgPublicKey: string): Promise<Peer | undefined> {
		const row = this.one("SELECT * FROM peers WHERE wg_public_key = ?", wgPublicKey);
		return row && toPeer(row);
	}

	async getPeer(accountId: string, peerId: string): Promise<Peer | undefined> {
		const row = this.one("SELECT * FROM peers WHERE account_id = ? AND id = ?", accountId, peerId);
		return row && toPeer(row);
	}

	async listPeers(accountId: string): Promise<Peer[]> {
		return this.all(
			"SELECT * FROM peers WHERE account_id = ? ORDER BY created_at, id",
			accountId,
		).map(toPeer);
	}

	async listPeerAddresses(accountId: string): Promise<PeerAddress[]> {
		return this.all("SELECT ip, dns_label FROM peers WHERE account_id = ?", accountId).map((r) => ({
			ip: intToIp(Number(r.ip)),
			dnsLabel: String(r.dns_label),
		}));
	}

	async listPeerGroupIds(accountId: string): Promise<Map<string, string[]>> {
		const rows = this.all(
			`SELECT gp.peer_id, gp.group_id FROM group_peers gp JOIN peers p ON p.id = gp.peer_id
			 WHERE p.account_id = ? ORDER BY gp.peer_id, gp.group_id`,
			accountId,
		);
		const out = new Map<string, string[]>();
		for (const r of rows) {
			const list = out.get(String(r.peer_id)) ?? [];
			list.push(String(r.group_id));
			out.set(String(r.peer_id), list);
		}
		return out;
	}

	async listInstances(): Promise<ManagementInstance[]> {
		return this.all("SELECT * FROM management_instances ORDER BY id").map(toInstance);
	}

	async listSyncSessionsOfInstance(instanceId: string): Promise<SyncSession[]> {
		return this.all(
			"SELECT * FROM sync_sessions WHERE instance_id = ? ORDER BY since, stream_id",
			instanceId,
		).map(toSyncSession);
	}

	async countSyncSessionsOfPeer(peerId: string): Promise<number> {
		return Number(
			this.one("SELECT COUNT(*) AS n FROM sync_sessions WHERE peer_id = ?", peerId)?.n ?? 0,
		);
	}
}

/** Turns constraint failures into the store's errors; anything else is re-thrown. */
function translate(err: unknown): never {
	const code = (err as { code?: unknown }).code;
	if (code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
		throw new StoreConflictError((err as Error).message);
	}
	if (code === "SQLITE_CONSTRAINT_FOREIGNKEY") {
		throw new StoreReferenceError("the change names a row that does not exist");
	}
	throw err;
}

class SqliteWriter extends SqliteReader implements StoreWriter {
	private run(text: string, ...args: unknown[]): number {
		try {
			return this.sql(text).run(...args).changes;
		} catch (err) {
			translate(err);
		}
	}

	async insertServerKey(pair: StoredKeyPair, at: Date): Promise<void> {
		this.run(
			"INSERT INTO server_keys (id, private_key, public_key, created_at) VALUES (1, ?, ?, ?)",
			Buffer.from(pair.privateKey),
			Buffer.from(pair.publicKey),
			ms(at),
		);
	}

	async insertAccount(a: Account): Promise<void> {
		this.run(
			"INSERT INTO accounts (id, network, dns_domain, created_at, settings) VALUES (?, ?, ?, ?, ?)",
			a.id,
			a.network,
			a.dnsDomain,
			ms(a.createdAt),
			JSON.stringify(a.settings),
		);
	}

	async updateAccount(a: Account): Promise<boolean> {
		return (
			this.run(
				"UPDATE accounts SET settings = ?, network = ? WHERE id = ?",
				JSON.stringify(a.settings),
				a.network,
				a.id,
			) > 0
		);
	}

	async insertUser(u: User): Promise<void> {
		this.run(
			`INSERT INTO users (id, account_id, name, email, role, is_service_user, blocked, auto_groups, created_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.id,
			u.accountId,
			u.name,
			u.email,
			u.role,
			flag(u.isServiceUser),
			flag(u.blocked),
			JSON.stringify(u.autoGroups),
			ms(u.createdAt),
		);
	}

	async updateUser(u: User): Promise<boolean> {
		return (
			this.run(
				"UPDATE users SET role = ?, auto_groups = ?, blocked = ? WHERE account_id = ? AND id = ?",
				u.role,
				JSON.stringify(u.autoGroups),
				flag(u.blocked),
				u.accountId,
				u.id,
			) > 0
		);
	}

	async deleteUser(accountId: string, userId: string): Promise<boolean> {
		return this.run("DELETE FROM users WHERE account_id = ? AND id = ?", accountId, userId) > 0;
	}

	async insertToken(t: PersonalAccessToken): Promise<void> {
		this.run(
			`INSERT INTO personal_access_tokens (id, user_id, name, hashed_token, expires_at, created_by, created_at, last_used)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			t.id,
			t.userId,
			t.name,
			t.hashedToken,
			ms(t.expiresAt),
			t.createdBy,
			ms(t.createdAt),
			optMs(t.lastUsed),
		);
	}

	async touchToken(tokenId: string, at: Date): Promise<void> {
		this.run("UPDATE personal_access_tokens SET last_used = ? WHERE id = ?", ms(at), tokenId);
	}

	async deleteToken(userId: string, tokenId: string): Promise<boolean> {
		return (
			this.run("DELETE FROM personal_access_tokens WHERE user_id = ? AND id = ?", userId, tokenId) >
			0
		);
	}

	async insertSetupKey(k: SetupKey): Promise<void> {
		this.run(
			`INSERT INTO setup_keys (id, account_id, name, hashed_key, key_prefix, type, created_at, updated_at, expires_at,
			 revoked, used_times, last_used, usage_limit, auto_groups, ephemeral) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			k.id,
			k.accountId,
			k.name,
			k.hashedKey,
			k.keyPrefix,
			k.type,
			ms(k.createdAt),
			ms(k.updatedAt),
			optMs(k.expiresAt),
			flag(k.revoked),
			k.usedTimes,
			optMs(k.lastUsed),
			k.usageLimit,
			JSON.stringify(k.autoGroups),
			flag(k.ephemeral),
		);
	}

	async updateSetupKey(k: SetupKey): Promise<boolean> {
		return (
			this.run(
				`UPDATE setup_keys SET name = ?, revoked = ?, auto_groups = ?, used_times = ?, last_used = ?, updated_at = ?
				 WHERE account_id = ? AND id = ?`,
				k.name,
				flag(k.revoked),
				JSON.stringify(k.autoGroups),
				k.usedTimes,
				optMs(k.lastUsed),
				ms(k.updatedAt),
				k.accountId,
				k.id,
			) > 0
		);
	}

	async deleteSetupKey(accountId: string, keyId: string): Promise<boolean> {
		return this.run("DELETE FROM setup_keys WHERE account_id = ? AND id = ?", accountId, keyId) > 0;
	}

	private setMembers(groupId: string, peerIds: readonly string[]): void {
		this.run("DELETE FROM group_peers WHERE group_id = ?", groupId);
		for (const p of new Set(peerIds)) {
			this.run("INSERT INTO group_peers (group_id, peer_id) VALUES (?, ?)", groupId, p);
		}
	}

	async insertGroup(g: Group): Promise<void> {
		this.run(
			"INSERT INTO groups (id, account_id, name, issued) VALUES (?, ?, ?, ?)",
			g.id,
			g.accountId,
			g.name,
			g.issued,
		);
		this.setMembers(g.id, g.peerIds);
	}

	async updateGroup(g: Group): Promise<boolean> {
		const changed =
			this.run(
				"UPDATE groups SET name = ? WHERE account_id = ? AND id = ?",
				g.name,
				g.accountId,
				g.id,
			) > 0;
		if (changed) this.setMembers(g.id, g.peerIds);
		return changed;
	}

	async deleteGroup(accountId: string, groupId: string): Promise<boolean> {
		return this.run("DELETE FROM groups WHERE account_id = ? AND id = ?", accountId, groupId) > 0;
	}

	async addPeerToGroups(
		accountId: string,
		peerId: string,
		groupIds: readonly string[],
	): Promise<void> {
		for (const g of new Set(groupIds)) {
			this.run(
				`INSERT OR IGNORE INTO group_peers (group_id, peer_id)
				 SELECT g.id, p.id FROM groups g JOIN peers p ON p.account_id = g.account_id
				 WHERE g.account_id = ? AND g.id = ? AND p.id = ?`,
				accountId,
				g,
				peerId,
			);
		}
	}

	async insertPolicy(p: Policy): Promise<void> {
		this.run(
			"INSERT INTO policies (id, account_id, name, description, enabled, rules, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			p.id,
			p.accountId,
			p.name,
			p.description,
			flag(p.enabled),
			JSON.stringify(p.rules),
			ms(p.createdAt),
		);
	}

	async updatePolicy(p: Policy): Promise<boolean> {
		return (
			this.run(
				"UPDATE policies SET name = ?, description = ?, enabled = ?, rules = ? WHERE account_id = ? AND id = ?",
				p.name,
				p.description,
				flag(p.enabled),
				JSON.stringify(p.rules),
				p.accountId,
				p.id,
			) > 0
		);
	}

	async deletePolicy(accountId: string, policyId: string): Promise<boolean> {
		return (
			this.run("DELETE FROM policies WHERE account_id = ? AND id = ?", accountId, policyId) > 0
		);
	}

	async insertPeer(p: Peer): Promise<void> {
		this.run(
			`INSERT INTO peers (id, account_id, wg_public_key, name, dns_label, ip, hostname, os, os_version, kernel_version,
			 agent_version, setup_key_id, user_id, ephemeral, ssh_enabled, login_expiration_enabled, connected, created_at,
			 last_login, last_seen, connection_ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.id,
			p.accountId,
			p.wgPublicKey,
			p.name,
			p.dnsLabel,
			ipToInt(p.ip),
			p.system.hostname,
			p.system.os,
			p.system.osVersion,
			p.system.kernelVersion,
			p.system.agentVersion,
			p.setupKeyId,
			p.userId,
			flag(p.ephemeral),
			flag(p.sshEnabled),
			flag(p.loginExpirationEnabled),
			flag(p.connected),
			ms(p.createdAt),
			ms(p.lastLogin),
			ms(p.lastSeen),
			p.system.connectionIp,
		);
	}

	async updatePeer(p: Peer): Promise<boolean> {
		return (
			this.run(
				`UPDATE peers SET name = ?, dns_label = ?, hostname = ?, os = ?, os_version = ?, kernel_version = ?,
				 agent_version = ?, ephemeral = ?, ssh_enabled = ?, login_expiration_enabled = ?, connected = ?,
				 last_login = ?, last_seen = ?, connection_ip = ? WHERE account_id = ? AND id = ?`,
				p.name,
				p.dnsLabel,
				p.system.hostname,
				p.system.os,
				p.system.osVersion,
				p.system.kernelVersion,
				p.system.agentVersion,
				flag(p.ephemeral),
				flag(p.sshEnabled),
				flag(p.loginExpirationEnabled),
				flag(p.connected),
				ms(p.lastLogin),
				ms(p.lastSeen),
				p.system.connectionIp,
				p.accountId,
				p.id,
			) > 0
		);
	}

	async deletePeer(accountId: string, peerId: string): Promise<boolean> {
		return this.run("DELETE FROM peers WHERE account_id = ? AND id = ?", accountId, peerId) > 0;
	}

	async markAllPeersDisconnected(at: Date): Promise<void> {
		this.run("UPDATE peers SET connected = 0, last_seen = ? WHERE connected = 1", ms(at));
	}

	async putInstance(i: ManagementInstance): Promise<void> {
		this.run(
			`INSERT INTO management_instances (id, started_at, heartbeat_at) VALUES (?, ?, ?)
			 ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at`,
			i.id,
			ms(i.startedAt),
			ms(i.heartbeatAt),
		);
	}

	async touchInstance(instanceId: string, at: Date): Promise<boolean> {
		return (
			this.run(
				"UPDATE management_instances SET heartbeat_at = ? WHERE id = ?",
				ms(at),
				instanceId,
			) > 0
		);
	}

	async deleteInstance(instanceId: string): Promise<boolean> {
		this.run("DELETE FROM sync_sessions WHERE instance_id = ?", instanceId);
		return this.run("DELETE FROM management_instances WHERE id = ?", instanceId) > 0;
	}

	async insertSyncSession(s: SyncSession): Promise<void> {
		this.run(
			"INSERT INTO sync_sessions (stream_id, account_id, peer_id, instance_id, since) VALUES (?, ?, ?, ?, ?)",
			s.streamId,
			s.accountId,
			s.peerId,
			s.instanceId,
			ms(s.since),
		);
	}

	async deleteSyncSession(streamId: string): Promise<boolean> {
		return this.run("DELETE FROM sync_sessions WHERE stream_id = ?", streamId) > 0;
	}

	async deleteSyncSessionsOfInstance(instanceId: string): Promise<void> {
		this.run("DELETE FROM sync_sessions WHERE instance_id = ?", instanceId);
	}

	async appendEvents(events: readonly NewAuditEvent[]): Promise<void> {
		for (const e of events) {
			this.run(
				`INSERT INTO audit_events (account_id, timestamp, activity_code, initiator_id, initiator_name,
				 initiator_email, target_id, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
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
}

/**
 * SQLite (better-sqlite3) store: one file, WAL mode, versioned migrations.
 *
 * better-sqlite3 is synchronous but `read`/`write` callbacks are async: while
 * one awaits, another caller could run statements on the same connection and
 * land inside the open transaction. So every transaction of an instance runs
 * alone, in call order, through `queue`; reads are DEFERRED transactions (in
 * WAL mode their first SELECT fixes one snapshot), writes are IMMEDIATE
 * (they take the file's write lock first, which also serializes them with
 * other connections and processes on the same file).
 */
export class SqliteStore extends SingleReads {
	private readonly db: Database.Database;
	private readonly reader: SqliteReader;
	private readonly writer: SqliteWriter;
	private queue: Promise<unknown> = Promise.resolve();
	private closing = false;
	private readonly inside = new AsyncLocalStorage<true>();

	private constructor(db: Database.Database) {
		super();
		this.db = db;
		this.reader = new SqliteReader(db);
		this.writer = new SqliteWriter(db);
	}

	/** Opens (creating if needed) the database file and applies pending migrations. */
	static open(path: string): SqliteStore {
		if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
		const db = new Database(path);
		db.pragma("journal_mode = WAL");
		db.pragma("synchronous = NORMAL");
		db.pragma("foreign_keys = ON");
		// Several processes may share the file (two management instances, the
		// CLI); short waits for their locks block, the write lock is awaited.
		db.pragma("busy_timeout = 5000");
		migrate(db);
		return new SqliteStore(db);
	}

	/** The highest migration applied to the file. */
	schemaVersion(): number {
		const row = this.db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as Row;
		return Number(row.v ?? 0);
	}

	/** Lets the transactions already asked for finish, refuses new ones, then closes the file. */
	async close(): Promise<void> {
		this.closing = true;
		await this.queue;
		if (this.db.open) this.db.close();
	}

	read<T>(fn: (tx: StoreReader) => Promise<T>): Promise<T> {
		return this.exclusive(async () => {
			this.db.exec("BEGIN DEFERRED");
			return this.finish(fn(this.reader));
		});
	}

	write<T>(fn: (tx: StoreWriter) => Promise<T>): Promise<T> {
		return this.exclusive(async () => {
			await this.beginImmediate();
			return this.finish(fn(this.writer));
		});
	}

	private async finish<T>(work: Promise<T>): Promise<T> {
		try {
			const result = await work;
			this.db.exec("COMMIT");
			return result;
		} catch (err) {
			if (this.db.inTransaction) this.db.exec("ROLLBACK");
			throw err;
		}
	}

	/** Runs `job` after every earlier transaction of this instance has finished. */
	private exclusive<T>(job: () => Promise<T>): Promise<T> {
		if (this.inside.getStore()) {
			return Promise.reject(
				new Error("store.read/write called inside a transaction: use the transaction's reads"),
			);
		}
		if (this.closing) return Promise.reject(new Error("the store is closed"));
		const run = this.queue.then(() => this.inside.run(true, job));
		this.queue = run.catch(() => undefined);
		return run;
	}

	/**
	 * Takes the file's write lock without blocking the event loop: another
	 * connection in this process may hold it while it awaits, and a blocking
	 * wait (busy_timeout) would keep that holder from ever finishing.
	 */
	private async beginImmediate(): Promise<void> {
		const deadline = Date.now() + WRITE_LOCK_WAIT_MS;
		let pause = 1;
		this.db.pragma("busy_timeout = 0");
		try {
			for (;;) {
				try {
					this.db.exec("BEGIN IMMEDIATE");
					return;
				} catch (err) {
					if ((err as { code?: unknown }).code !== "SQLITE_BUSY" || Date.now() > deadline)
						throw err;
				}
				await sleep(pause + Math.random() * pause);
				pause = Math.min(pause * 2, 50);
			}
		} finally {
			this.db.pragma("busy_timeout = 5000");
		}
	}
}

function migrate(db: Database.Database): void {
	db.exec(
		"CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
	);
	const applied = new Set(
		(db.prepare("SELECT version FROM schema_migrations").all() as Row[]).map((r) =>
			Number(r.version),
		),
	);
	const appliedNow = db.prepare("SELECT 1 FROM schema_migrations WHERE version = ?");
	for (const m of MIGRATIONS) {
		if (applied.has(m.version)) continue;
		db.transaction(() => {
			// Another instance starting on the same file may have applied it
			// while this one waited for the write lock (its ALTER TABLE would fail).
			if (appliedNow.get(m.version)) return;
			db.exec(m.sql);
			db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(
				m.version,
				m.name,
				Date.now(),
			);
		}).immediate();
	}
}
