import { type Compilable, type CompiledQuery, sql } from "kysely";
import { intToIp, ipToInt } from "../../core/ipam.js";
import type {
	Account,
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
} from "../../domain/types.js";
import type { StoredKeyPair, StoreReader, StoreWriter } from "../store.js";
import type { SqlDialect } from "./dialect.js";
import { RoutingQueries } from "./routing-queries.js";
import {
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

/**
 * Runs compiled queries inside the backend's current transaction. `run`
 * returns the number of rows changed and turns constraint failures into
 * StoreConflictError / StoreReferenceError.
 */
export interface QueryRunner {
	rows(query: CompiledQuery): Promise<Row[]>;
	run(query: CompiledQuery): Promise<number>;
}

/**
 * The `StoreReader` of both backends: every query is built once with kysely
 * and compiled for the backend's dialect; the backend only executes it.
 */
export class SqlReader implements StoreReader {
	protected readonly db: SqlDialect["db"];
	protected readonly routing: RoutingQueries;

	constructor(
		protected readonly dialect: SqlDialect,
		protected readonly runner: QueryRunner,
	) {
		this.db = dialect.db;
		this.routing = new RoutingQueries(dialect, runner);
	}

	protected all(query: Compilable): Promise<Row[]> {
		return this.runner.rows(query.compile());
	}

	protected async one(query: Compilable): Promise<Row | undefined> {
		return (await this.runner.rows(query.compile()))[0];
	}

	protected run(query: Compilable): Promise<number> {
		return this.runner.run(query.compile());
	}

	/** Equal creation times in insertion order (dialect.ts). */
	protected get insertionOrder() {
		return sql.ref(this.dialect.insertionOrder);
	}

	async getServerKey(): Promise<StoredKeyPair | undefined> {
		const row = await this.one(
			this.db.selectFrom("server_keys").select(["private_key", "public_key"]).where("id", "=", 1),
		);
		return (
			row && {
				privateKey: new Uint8Array(row.private_key as Buffer),
				publicKey: new Uint8Array(row.public_key as Buffer),
			}
		);
	}

	async getAccount(accountId: string): Promise<Account | undefined> {
		const row = await this.one(
			this.db.selectFrom("accounts").selectAll().where("id", "=", accountId),
		);
		return row && toAccount(row);
	}

	async getAccountRevision(accountId: string): Promise<number | undefined> {
		const row = await this.one(
			this.db.selectFrom("accounts").select("revision").where("id", "=", accountId),
		);
		return row && Number(row.revision);
	}

	async listAccountNetworks(): Promise<string[]> {
		return (await this.all(this.db.selectFrom("accounts").select("network"))).map((r) =>
			String(r.network),
		);
	}

	async countUsers(): Promise<number> {
		const row = await this.one(
			this.db.selectFrom("users").select((eb) => eb.fn.countAll().as("n")),
		);
		return Number(row?.n ?? 0);
	}

	async getUser(userId: string): Promise<User | undefined> {
		const row = await this.one(this.db.selectFrom("users").selectAll().where("id", "=", userId));
		return row && toUser(row);
	}

	async getFirstOwner(): Promise<User | undefined> {
		const row = await this.one(
			this.db
				.selectFrom("users")
				.selectAll()
				.where("role", "=", "owner")
				.orderBy("created_at")
				.orderBy(this.insertionOrder)
				.limit(1),
		);
		return row && toUser(row);
	}

	async listUsers(accountId: string): Promise<User[]> {
		return (
			await this.all(
				this.db
					.selectFrom("users")
					.selectAll()
					.where("account_id", "=", accountId)
					.orderBy("created_at")
					.orderBy(this.insertionOrder),
			)
		).map(toUser);
	}

	async getTokenByHash(hashedToken: string): Promise<PersonalAccessToken | undefined> {
		const row = await this.one(
			this.db
				.selectFrom("personal_access_tokens")
				.selectAll()
				.where("hashed_token", "=", hashedToken),
		);
		return row && toToken(row);
	}

	async getToken(userId: string, tokenId: string): Promise<PersonalAccessToken | undefined> {
		const row = await this.one(
			this.db
				.selectFrom("personal_access_tokens")
				.selectAll()
				.where("user_id", "=", userId)
				.where("id", "=", tokenId),
		);
		return row && toToken(row);
	}

	async listTokens(userId: string): Promise<PersonalAccessToken[]> {
		return (
			await this.all(
				this.db
					.selectFrom("personal_access_tokens")
					.selectAll()
					.where("user_id", "=", userId)
					.orderBy("created_at")
					.orderBy(this.insertionOrder),
			)
		).map(toToken);
	}

	async getSetupKey(accountId: string, keyId: string): Promise<SetupKey | undefined> {
		const row = await this.one(
			this.db
				.selectFrom("setup_keys")
				.selectAll()
				.where("account_id", "=", accountId)
				.where("id", "=", keyId),
		);
		return row && toSetupKey(row);
	}

	async getSetupKeyByHash(hashedKey: string): Promise<SetupKey | undefined> {
		const row = await this.one(
			this.db.selectFrom("setup_keys").selectAll().where("hashed_key", "=", hashedKey),
		);
		return row && toSetupKey(row);
	}

	async listSetupKeys(accountId: string): Promise<SetupKey[]> {
		return (
			await this.all(
				this.db
					.selectFrom("setup_keys")
					.selectAll()
					.where("account_id", "=", accountId)
					.orderBy("created_at")
					.orderBy(this.insertionOrder),
			)
		).map(toSetupKey);
	}

	private groupsOf(accountId: string) {
		return this.all(
			this.db.selectFrom("groups").selectAll().where("account_id", "=", accountId).orderBy("name"),
		);
	}

	async listGroups(accountId: string): Promise<Group[]> {
		const groups = await this.groupsOf(accountId);
		const members = await this.all(
			this.db
				.selectFrom("group_peers as gp")
				.innerJoin("groups as g", "g.id", "gp.group_id")
				.select(["gp.group_id", "gp.peer_id"])
				.where("g.account_id", "=", accountId)
				.orderBy("gp.peer_id"),
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
		return (await this.groupsOf(accountId)).map(toGroupSummary);
	}

	async getGroup(accountId: string, groupId: string): Promise<Group | undefined> {
		const row = await this.one(
			this.db
				.selectFrom("groups")
				.selectAll()
				.where("account_id", "=", accountId)
				.where("id", "=", groupId),
		);
		if (!row) return undefined;
		const peerIds = (
			await this.all(
				this.db
					.selectFrom("group_peers")
					.select("peer_id")
					.where("group_id", "=", groupId)
					.orderBy("peer_id"),
			)
		).map((r) => String(r.peer_id));
		return toGroup(row, peerIds);
	}

	async listPolicies(accountId: string): Promise<Policy[]> {
		return (
			await this.all(
				this.db
					.selectFrom("policies")
					.selectAll()
					.where("account_id", "=", accountId)
					.orderBy("created_at")
					.orderBy(this.insertionOrder),
			)
		).map(toPolicy);
	}

	async getPolicy(accountId: string, policyId: string): Promise<Policy | undefined> {
		const row = await this.one(
			this.db
				.selectFrom("policies")
				.selectAll()
				.where("account_id", "=", accountId)
				.where("id", "=", policyId),
		);
		return row && toPolicy(row);
	}

	listRoutes(accountId: string): Promise<Route[]> {
		return this.routing.listRoutes(accountId);
	}
	getRoute(accountId: string, routeId: string): Promise<Route | undefined> {
		return this.routing.getRoute(accountId, routeId);
	}
	listNetworks(accountId: string): Promise<Network[]> {
		return this.routing.listNetworks(accountId);
	}
	getNetwork(accountId: string, networkId: string): Promise<Network | undefined> {
		return this.routing.getNetwork(accountId, networkId);
	}
	listNetworkResources(accountId: string): Promise<NetworkResource[]> {
		return this.routing.listNetworkResources(accountId);
	}
	getNetworkResource(accountId: string, id: string): Promise<NetworkResource | undefined> {
		return this.routing.getNetworkResource(accountId, id);
	}
	listNetworkRouters(accountId: string): Promise<NetworkRouter[]> {
		return this.routing.listNetworkRouters(accountId);
	}
	getNetworkRouter(accountId: string, id: string): Promise<NetworkRouter | undefined> {
		return this.routing.getNetworkRouter(accountId, id);
	}

	async listEvents(accountId: string, limit: number) {
		return (
			await this.all(
				this.db
					.selectFrom("audit_events")
					.selectAll()
					.where("account_id", "=", accountId)
					.orderBy("id", "desc")
					.limit(limit),
			)
		).map(toEvent);
	}

	async getPeerByPublicKey(wgPublicKey: string): Promise<Peer | undefined> {
		const row = await this.one(
			this.db.selectFrom("peers").selectAll().where("wg_public_key", "=", wgPublicKey),
		);
		return row && toPeer(row);
	}

	async getPeer(accountId: string, peerId: string): Promise<Peer | undefined> {
		const row = await this.one(
			this.db
				.selectFrom("peers")
				.selectAll()
				.where("account_id", "=", accountId)
				.where("id", "=", peerId),
		);
		return row && toPeer(row);
	}

	async listPeers(accountId: string): Promise<Peer[]> {
		return (
			await this.all(
				this.db
					.selectFrom("peers")
					.selectAll()
					.where("account_id", "=", accountId)
					.orderBy("created_at")
					.orderBy("id"),
			)
		).map(toPeer);
	}

	async listPeerAddresses(accountId: string): Promise<PeerAddress[]> {
		return (
			await this.all(
				this.db.selectFrom("peers").select(["ip", "dns_label"]).where("account_id", "=", accountId),
			)
		).map((r) => ({ ip: intToIp(Number(r.ip)), dnsLabel: String(r.dns_label) }));
	}

	async listPeerGroupIds(accountId: string): Promise<Map<string, string[]>> {
		const rows = await this.all(
			this.db
				.selectFrom("group_peers as gp")
				.innerJoin("peers as p", "p.id", "gp.peer_id")
				.select(["gp.peer_id", "gp.group_id"])
				.where("p.account_id", "=", accountId)
				.orderBy("gp.peer_id")
				.orderBy("gp.group_id"),
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
		return (
			await this.all(this.db.selectFrom("management_instances").selectAll().orderBy("id"))
		).map(toInstance);
	}

	async listSyncSessionsOfInstance(instanceId: string): Promise<SyncSession[]> {
		return (
			await this.all(
				this.db
					.selectFrom("sync_sessions")
					.selectAll()
					.where("instance_id", "=", instanceId)
					.orderBy("since")
					.orderBy("stream_id"),
			)
		).map(toSyncSession);
	}

	async countSyncSessionsOfPeer(peerId: string): Promise<number> {
		const row = await this.one(
			this.db
				.selectFrom("sync_sessions")
				.select((eb) => eb.fn.countAll().as("n"))
				.where("peer_id", "=", peerId),
		);
		return Number(row?.n ?? 0);
	}
}

/** The `StoreWriter` of both backends: plain row operations, built once (see SqlReader). */
export class SqlWriter extends SqlReader implements StoreWriter {
	private flag(value: boolean) {
		return this.dialect.flag(value);
	}

	async insertServerKey(pair: StoredKeyPair, at: Date): Promise<void> {
		await this.run(
			this.db.insertInto("server_keys").values({
				id: 1,
				private_key: Buffer.from(pair.privateKey),
				public_key: Buffer.from(pair.publicKey),
				created_at: ms(at),
			}),
		);
	}

	async insertAccount(a: Account): Promise<void> {
		await this.run(
			this.db.insertInto("accounts").values({
				id: a.id,
				network: a.network,
				dns_domain: a.dnsDomain,
				created_at: ms(a.createdAt),
				settings: JSON.stringify(a.settings),
			}),
		);
	}

	async updateAccount(a: Account): Promise<boolean> {
		const changed = await this.run(
			this.db
				.updateTable("accounts")
				.set({ settings: JSON.stringify(a.settings), network: a.network })
				.where("id", "=", a.id),
		);
		return changed > 0;
	}

	async insertUser(u: User): Promise<void> {
		await this.run(
			this.db.insertInto("users").values({
				id: u.id,
				account_id: u.accountId,
				name: u.name,
				email: u.email,
				role: u.role,
				is_service_user: this.flag(u.isServiceUser),
				blocked: this.flag(u.blocked),
				auto_groups: JSON.stringify(u.autoGroups),
				created_at: ms(u.createdAt),
			}),
		);
	}

	async updateUser(u: User): Promise<boolean> {
		const changed = await this.run(
			this.db
				.updateTable("users")
				.set({
					role: u.role,
					auto_groups: JSON.stringify(u.autoGroups),
					blocked: this.flag(u.blocked),
				})
				.where("account_id", "=", u.accountId)
				.where("id", "=", u.id),
		);
		return changed > 0;
	}

	async deleteUser(accountId: string, userId: string): Promise<boolean> {
		const changed = await this.run(
			this.db.deleteFrom("users").where("account_id", "=", accountId).where("id", "=", userId),
		);
		return changed > 0;
	}

	async insertToken(t: PersonalAccessToken): Promise<void> {
		await this.run(
			this.db.insertInto("personal_access_tokens").values({
				id: t.id,
				user_id: t.userId,
				name: t.name,
				hashed_token: t.hashedToken,
				expires_at: ms(t.expiresAt),
				created_by: t.createdBy,
				created_at: ms(t.createdAt),
				last_used: optMs(t.lastUsed),
			}),
		);
	}

	async touchToken(tokenId: string, at: Date): Promise<void> {
		await this.run(
			this.db
				.updateTable("personal_access_tokens")
				.set({ last_used: ms(at) })
				.where("id", "=", tokenId),
		);
	}

	async deleteToken(userId: string, tokenId: string): Promise<boolean> {
		const changed = await this.run(
			this.db
				.deleteFrom("personal_access_tokens")
				.where("user_id", "=", userId)
				.where("id", "=", tokenId),
		);
		return changed > 0;
	}

	async insertSetupKey(k: SetupKey): Promise<void> {
		await this.run(
			this.db.insertInto("setup_keys").values({
				id: k.id,
				account_id: k.accountId,
				name: k.name,
				hashed_key: k.hashedKey,
				key_prefix: k.keyPrefix,
				type: k.type,
				created_at: ms(k.createdAt),
				updated_at: ms(k.updatedAt),
				expires_at: optMs(k.expiresAt),
				revoked: this.flag(k.revoked),
				used_times: k.usedTimes,
				last_used: optMs(k.lastUsed),
				usage_limit: k.usageLimit,
				auto_groups: JSON.stringify(k.autoGroups),
				ephemeral: this.flag(k.ephemeral),
			}),
		);
	}

	async updateSetupKey(k: SetupKey): Promise<boolean> {
		const changed = await this.run(
			this.db
				.updateTable("setup_keys")
				.set({
					name: k.name,
					revoked: this.flag(k.revoked),
					auto_groups: JSON.stringify(k.autoGroups),
					used_times: k.usedTimes,
					last_used: optMs(k.lastUsed),
					updated_at: ms(k.updatedAt),
				})
				.where("account_id", "=", k.accountId)
				.where("id", "=", k.id),
		);
		return changed > 0;
	}

	async deleteSetupKey(accountId: string, keyId: string): Promise<boolean> {
		const changed = await this.run(
			this.db.deleteFrom("setup_keys").where("account_id", "=", accountId).where("id", "=", keyId),
		);
		return changed > 0;
	}

	private async setMembers(groupId: string, peerIds: readonly string[]): Promise<void> {
		await this.run(this.db.deleteFrom("group_peers").where("group_id", "=", groupId));
		for (const p of new Set(peerIds)) {
			await this.run(this.db.insertInto("group_peers").values({ group_id: groupId, peer_id: p }));
		}
	}

	async insertGroup(g: Group): Promise<void> {
		await this.run(
			this.db
				.insertInto("groups")
				.values({ id: g.id, account_id: g.accountId, name: g.name, issued: g.issued }),
		);
		await this.setMembers(g.id, g.peerIds);
	}

	async updateGroup(g: Group): Promise<boolean> {
		const changed =
			(await this.run(
				this.db
					.updateTable("groups")
					.set({ name: g.name })
					.where("account_id", "=", g.accountId)
					.where("id", "=", g.id),
			)) > 0;
		if (changed) await this.setMembers(g.id, g.peerIds);
		return changed;
	}

	async deleteGroup(accountId: string, groupId: string): Promise<boolean> {
		const changed = await this.run(
			this.db.deleteFrom("groups").where("account_id", "=", accountId).where("id", "=", groupId),
		);
		return changed > 0;
	}

	async addPeerToGroups(
		accountId: string,
		peerId: string,
		groupIds: readonly string[],
	): Promise<void> {
		for (const g of new Set(groupIds)) {
			// Only a group and a peer of the same account, named by the caller, are joined;
			// a membership that exists already is left as it is.
			await this.run(
				this.db
					.insertInto("group_peers")
					.columns(["group_id", "peer_id"])
					.expression(
						this.db
							.selectFrom("groups as g")
							.innerJoin("peers as p", "p.account_id", "g.account_id")
							.select(["g.id as group_id", "p.id as peer_id"])
							.where("g.account_id", "=", accountId)
							.where("g.id", "=", g)
							.where("p.id", "=", peerId),
					)
					.onConflict((oc) => oc.doNothing()),
			);
		}
	}

	async insertPolicy(p: Policy): Promise<void> {
		await this.run(
			this.db.insertInto("policies").values({
				id: p.id,
				account_id: p.accountId,
				name: p.name,
				description: p.description,
				enabled: this.flag(p.enabled),
				rules: JSON.stringify(p.rules),
				created_at: ms(p.createdAt),
			}),
		);
	}

	async updatePolicy(p: Policy): Promise<boolean> {
		const changed = await this.run(
			this.db
				.updateTable("policies")
				.set({
					name: p.name,
					description: p.description,
					enabled: this.flag(p.enabled),
					rules: JSON.stringify(p.rules),
				})
				.where("account_id", "=", p.accountId)
				.where("id", "=", p.id),
		);
		return changed > 0;
	}

	async deletePolicy(accountId: string, policyId: string): Promise<boolean> {
		const changed = await this.run(
			this.db.deleteFrom("policies").where("account_id", "=", accountId).where("id", "=", policyId),
		);
		return changed > 0;
	}

	insertRoute(r: Route): Promise<void> {
		return this.routing.insertRoute(r);
	}
	updateRoute(r: Route): Promise<boolean> {
		return this.routing.updateRoute(r);
	}
	deleteRoute(accountId: string, routeId: string): Promise<boolean> {
		return this.routing.deleteRoute(accountId, routeId);
	}
	insertNetwork(n: Network): Promise<void> {
		return this.routing.insertNetwork(n);
	}
	updateNetwork(n: Network): Promise<boolean> {
		return this.routing.updateNetwork(n);
	}
	deleteNetwork(accountId: string, networkId: string): Promise<boolean> {
		return this.routing.deleteNetwork(accountId, networkId);
	}
	insertNetworkResource(r: NetworkResource): Promise<void> {
		return this.routing.insertNetworkResource(r);
	}
	updateNetworkResource(r: NetworkResource): Promise<boolean> {
		return this.routing.updateNetworkResource(r);
	}
	deleteNetworkResource(accountId: string, id: string): Promise<boolean> {
		return this.routing.deleteNetworkResource(accountId, id);
	}
	insertNetworkRouter(r: NetworkRouter): Promise<void> {
		return this.routing.insertNetworkRouter(r);
	}
	updateNetworkRouter(r: NetworkRouter): Promise<boolean> {
		return this.routing.updateNetworkRouter(r);
	}
	deleteNetworkRouter(accountId: string, id: string): Promise<boolean> {
		return this.routing.deleteNetworkRouter(accountId, id);
	}

	async insertPeer(p: Peer): Promise<void> {
		await this.run(
			this.db.insertInto("peers").values({
				id: p.id,
				account_id: p.accountId,
				wg_public_key: p.wgPublicKey,
				name: p.name,
				dns_label: p.dnsLabel,
				ip: ipToInt(p.ip),
				hostname: p.system.hostname,
				os: p.system.os,
				os_version: p.system.osVersion,
				kernel_version: p.system.kernelVersion,
				agent_version: p.system.agentVersion,
				setup_key_id: p.setupKeyId,
				user_id: p.userId,
				ephemeral: this.flag(p.ephemeral),
				ssh_enabled: this.flag(p.sshEnabled),
				login_expiration_enabled: this.flag(p.loginExpirationEnabled),
				connected: this.flag(p.connected),
				created_at: ms(p.createdAt),
				last_login: ms(p.lastLogin),
				last_seen: ms(p.lastSeen),
				connection_ip: p.system.connectionIp,
			}),
		);
	}

	async updatePeer(p: Peer): Promise<boolean> {
		const changed = await this.run(
			this.db
				.updateTable("peers")
				.set({
					name: p.name,
					dns_label: p.dnsLabel,
					hostname: p.system.hostname,
					os: p.system.os,
					os_version: p.system.osVersion,
					kernel_version: p.system.kernelVersion,
					agent_version: p.system.agentVersion,
					ephemeral: this.flag(p.ephemeral),
					ssh_enabled: this.flag(p.sshEnabled),
					login_expiration_enabled: this.flag(p.loginExpirationEnabled),
					connected: this.flag(p.connected),
					last_login: ms(p.lastLogin),
					last_seen: ms(p.lastSeen),
					connection_ip: p.system.connectionIp,
				})
				.where("account_id", "=", p.accountId)
				.where("id", "=", p.id),
		);
		return changed > 0;
	}

	async deletePeer(accountId: string, peerId: string): Promise<boolean> {
		const changed = await this.run(
			this.db.deleteFrom("peers").where("account_id", "=", accountId).where("id", "=", peerId),
		);
		return changed > 0;
	}

	async markAllPeersDisconnected(at: Date): Promise<void> {
		await this.run(
			this.db
				.updateTable("peers")
				.set({ connected: this.flag(false), last_seen: ms(at) })
				.where("connected", "=", this.flag(true)),
		);
	}

	async appendEvents(events: readonly NewAuditEvent[]): Promise<void> {
		for (const e of events) {
			await this.run(
				this.db.insertInto("audit_events").values({
					account_id: e.accountId,
					timestamp: ms(e.timestamp),
					activity_code: e.activityCode,
					initiator_id: e.initiatorId,
					initiator_name: e.initiatorName,
					initiator_email: e.initiatorEmail,
					target_id: e.targetId,
					meta: JSON.stringify(e.meta),
				}),
			);
		}
	}

	async putInstance(i: ManagementInstance): Promise<void> {
		await this.run(
			this.db
				.insertInto("management_instances")
				.values({ id: i.id, started_at: ms(i.startedAt), heartbeat_at: ms(i.heartbeatAt) })
				.onConflict((oc) =>
					oc.column("id").doUpdateSet((eb) => ({
						started_at: eb.ref("excluded.started_at"),
						heartbeat_at: eb.ref("excluded.heartbeat_at"),
					})),
				),
		);
	}

	async touchInstance(instanceId: string, at: Date): Promise<boolean> {
		return (
			(await this.run(
				this.db
					.updateTable("management_instances")
					.set({ heartbeat_at: ms(at) })
					.where("id", "=", instanceId),
			)) > 0
		);
	}

	async deleteInstance(instanceId: string): Promise<boolean> {
		await this.deleteSyncSessionsOfInstance(instanceId);
		return (
			(await this.run(this.db.deleteFrom("management_instances").where("id", "=", instanceId))) > 0
		);
	}

	async insertSyncSession(s: SyncSession): Promise<void> {
		await this.run(
			this.db.insertInto("sync_sessions").values({
				stream_id: s.streamId,
				account_id: s.accountId,
				peer_id: s.peerId,
				instance_id: s.instanceId,
				since: ms(s.since),
			}),
		);
	}

	async deleteSyncSession(streamId: string): Promise<boolean> {
		return (
			(await this.run(this.db.deleteFrom("sync_sessions").where("stream_id", "=", streamId))) > 0
		);
	}

	async deleteSyncSessionsOfInstance(instanceId: string): Promise<void> {
		await this.run(this.db.deleteFrom("sync_sessions").where("instance_id", "=", instanceId));
	}
}
