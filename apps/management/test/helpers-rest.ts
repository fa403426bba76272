import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeKey, generateKeyPair } from "@starling/crypto";
import { createLogger } from "@starling/log";
import type { FastifyInstance } from "fastify";
import { type AccountDefaults, bootstrapIfEmpty, createAccount } from "../src/app/accounts.js";
import type { NetworkChangeSink } from "../src/app/events.js";
import { loginPeer } from "../src/app/peers.js";
import { createPersonalAccessToken } from "../src/app/tokens.js";
import { newId } from "../src/core/random.js";
import type { Account, Peer, User, UserRole } from "../src/domain/types.js";
import { buildRestApi } from "../src/rest/index.js";
import type { Store } from "../src/store/store.js";
import { openTestStore, type TestStoreHandle } from "./test-store.js";

export const DEFAULTS: AccountDefaults = {
	networkPool: "100.64.0.0/10",
	accountPrefixLength: 16,
	dnsDomain: "starling.internal",
};

export class RecordingSink implements NetworkChangeSink {
	readonly events: { kind: "changed" | "removed"; peer: Peer }[] = [];
	/** Account ids of accessChanged calls. */
	readonly accessChanges: string[] = [];
	peerChanged(peer: Peer): void {
		this.events.push({ kind: "changed", peer });
	}
	peerRemoved(peer: Peer): void {
		this.events.push({ kind: "removed", peer });
	}
	accessChanged(accountId: string): void {
		this.accessChanges.push(accountId);
	}
	/** Every notification so far. */
	get total(): number {
		return this.events.length + this.accessChanges.length;
	}
	clear(): void {
		this.events.length = 0;
		this.accessChanges.length = 0;
	}
}

export interface Reply {
	status: number;
	headers: Record<string, unknown>;
	text: string;
	// biome-ignore lint/suspicious/noExplicitAny: JSON answers are inspected field by field in tests
	json: any;
}

export interface RequestOptions {
	/** A plain token; null sends no Authorization header. Defaults to the owner's token. */
	token?: string | null;
	/** Serialized as JSON with Content-Type application/json. */
	body?: unknown;
	/** Sent as is (with headers.content-type, default application/json). */
	raw?: string | Buffer;
	headers?: Record<string, string>;
}

export interface Principal {
	user: User;
	token: string;
}

/** A REST API over a real SQLite file in a temp dir, with a bootstrapped account. */
export class RestHarness {
	private constructor(
		readonly dir: string,
		readonly store: Store,
		private readonly held: TestStoreHandle,
		readonly app: FastifyInstance,
		readonly account: Account,
		readonly owner: Principal,
		readonly sink: RecordingSink,
		/** Every line the API logged (level trace). */
		readonly logs: string[],
		private readonly clock: { offsetMs: number },
	) {}

	/** Moves the API's clock (not the system's) forward. */
	advance(ms: number): void {
		this.clock.offsetMs += ms;
	}

	/** `wrapStore` lets a test hand the API a store that misbehaves. */
	static async create(opts: { wrapStore?: (store: Store) => Store } = {}): Promise<RestHarness> {
		const dir = mkdtempSync(join(tmpdir(), "starling-rest-"));
		const held = await openTestStore(dir);
		const store = held.store;
		const boot = await bootstrapIfEmpty(store, DEFAULTS, new Date());
		if (!boot) throw new Error("bootstrap did nothing");
		const logs: string[] = [];
		const logger = createLogger("management-test", {
			level: "trace",
			hooks: {
				streamWrite: (line: string) => {
					logs.push(line);
					return "";
				},
			},
		});
		const sink = new RecordingSink();
		const clock = { offsetMs: 0 };
		const app = await buildRestApi({
			store: opts.wrapStore ? opts.wrapStore(store) : store,
			sink,
			logger,
			now: () => new Date(Date.now() + clock.offsetMs),
		});
		const owner = { user: boot.owner, token: boot.plainToken };
		return new RestHarness(dir, store, held, app, boot.account, owner, sink, logs, clock);
	}

	now(): Date {
		return new Date(Date.now() + this.clock.offsetMs);
	}

	async request(method: string, url: string, opts: RequestOptions = {}): Promise<Reply> {
		const headers: Record<string, string> = {};
		const token = opts.token === undefined ? this.owner.token : opts.token;
		if (token !== null) headers.authorization = `Token ${token}`;
		let payload: string | Buffer | undefined;
		if (opts.raw !== undefined) {
			payload = opts.raw;
			headers["content-type"] = "application/json";
		} else if (opts.body !== undefined) {
			payload = JSON.stringify(opts.body);
			headers["content-type"] = "application/json";
		}
		Object.assign(headers, opts.headers ?? {});
		const res = await this.app.inject({
			// biome-ignore lint/suspicious/noExplicitAny: light-my-request's method union
			method: method as any,
			url,
			headers,
			...(payload === undefined ? {} : { payload }),
		});
		let json: unknown;
		try {
			json = res.body === "" ? undefined : JSON.parse(res.body);
		} catch {
			json = undefined;
		}
		return { status: res.statusCode, headers: res.headers, text: res.body, json };
	}

	/** A user of `account` (default: the bootstrapped one) with a fresh token. */
	async addUser(
		role: UserRole,
		account: Account = this.account,
		opts: { tokenDays?: number; at?: Date; serviceUser?: boolean } = {},
	) {
		const user: User = {
			id: newId(),
			accountId: account.id,
			name: `${role} user`,
			email: `${role}-${newId()}@example.test`,
			role,
			isServiceUser: opts.serviceUser ?? false,
			blocked: false,
			autoGroups: [],
			createdAt: new Date(),
		};
		await this.store.write((tx) => tx.insertUser(user));
		const { plainToken, token } = await createPersonalAccessToken(
			this.store,
			user,
			user.id,
			"test",
			opts.tokenDays ?? 30,
			opts.at ?? new Date(),
		);
		return { user, token: plainToken, tokenId: token.id };
	}

	/** A second account with its own owner and token. */
	async addAccount(): Promise<{ account: Account; owner: Principal }> {
		const { account, owner } = await createAccount(
			this.store,
			DEFAULTS,
			{ name: "other", email: "other@example.test" },
			new Date(),
		);
		const { plainToken } = await createPersonalAccessToken(
			this.store,
			owner,
			owner.id,
			"other",
			30,
			new Date(),
		);
		return { account, owner: { user: owner, token: plainToken } };
	}

	/** Creates a setup key through the API (as `token`, default the owner). */
	async createSetupKey(body: Record<string, unknown> = {}, token?: string) {
		const res = await this.request("POST", "/api/setup-keys", {
			token,
			body: { name: "test key", type: "reusable", ...body },
		});
		if (res.status !== 200) throw new Error(`create setup key: ${res.status} ${res.text}`);
		return res.json as { id: string; key: string; [k: string]: unknown };
	}

	/** A request as the owner that must answer 200; its JSON. */
	async ok(method: "POST" | "PUT", url: string, body: Record<string, unknown>) {
		const res = await this.request(method, url, { body });
		if (res.status !== 200) throw new Error(`${method} ${url}: ${res.status} ${res.text}`);
		return res.json as { id: string; [k: string]: unknown };
	}

	/** Creates a group through the API (as the owner). */
	async createGroup(name: string, peers: string[] = []) {
		const res = await this.request("POST", "/api/groups", { body: { name, peers } });
		if (res.status !== 200) throw new Error(`create group: ${res.status} ${res.text}`);
		return res.json as { id: string; name: string; [k: string]: unknown };
	}

	/** Creates a policy through the API (as the owner); rules default to all-to-all-ish fields. */
	async createPolicy(name: string, rules: Record<string, unknown>[], enabled = true) {
		const res = await this.request("POST", "/api/policies", {
			body: {
				name,
				enabled,
				rules: rules.map((r) => ({
					name: `${name} rule`,
					enabled: true,
					action: "accept",
					bidirectional: false,
					protocol: "all",
					...r,
				})),
			},
		});
		if (res.status !== 200) throw new Error(`create policy: ${res.status} ${res.text}`);
		return res.json as { id: string; rules: { id: string }[]; [k: string]: unknown };
	}

	/** The All group's id. */
	async allGroupId(): Promise<string> {
		return (await this.store.listGroups(this.account.id)).find((g) => g.issued === "all")!.id;
	}

	/** Registers a peer the way an agent's first login does. */
	async registerPeer(setupKey: string, hostname = "host"): Promise<Peer> {
		const { peer } = await loginPeer(
			this.store,
			this.sink,
			{
				wgPublicKey: encodeKey(generateKeyPair().publicKey),
				setupKey,
				system: {
					hostname,
					os: "linux",
					osVersion: "6.1",
					kernelVersion: "6.1.0-test",
					agentVersion: "0.1.0",
					connectionIp: "203.0.113.7",
				},
			},
			this.now(),
		);
		return peer;
	}

	/** Another store instance on the same database, as a second management process opens it. */
	openAnotherStore(): Promise<Store> {
		return this.held.openAnother();
	}

	count(table: string): Promise<number> {
		return this.held.count(table);
	}

	/** Every row of every table, by table name. */
	dumpRows(): Promise<Record<string, Record<string, unknown>[]>> {
		return this.held.dump();
	}

	/**
	 * Every row of every table, except the tokens' last_used (every
	 * authenticated request updates it): equal snapshots mean nothing changed.
	 */
	async snapshot(): Promise<string> {
		const out: Record<string, unknown[]> = {};
		for (const [t, rows] of Object.entries(await this.held.dump())) {
			out[t] = rows
				.map((r) => {
					const copy = { ...r };
					if (t === "personal_access_tokens") delete copy.last_used;
					return JSON.stringify(copy);
				})
				.sort();
		}
		return JSON.stringify(out);
	}

	/** Whether `needle` is stored anywhere (SQLite: the bytes of the files, WAL included). */
	databaseFilesContain(needle: string): Promise<boolean> {
		return this.held.contains(needle);
	}

	/** Whether `needle` occurs in any log line. */
	logsContain(needle: string): boolean {
		return this.logs.some((l) => l.includes(needle));
	}

	async close(): Promise<void> {
		await this.app.close();
		await this.held.close();
		rmSync(this.dir, { recursive: true, force: true });
	}
}

/** Asserts the error shape: {message: non-empty string, code: status} and nothing else. */
export function isErrorBody(reply: Reply): boolean {
	const j = reply.json;
	return (
		typeof j === "object" &&
		j !== null &&
		typeof j.message === "string" &&
		j.message.length > 0 &&
		j.code === reply.status &&
		Object.keys(j).length === 2
	);
}

export interface RouteCase {
	method: "GET" | "POST" | "PUT" | "DELETE";
	/** Fastify's pattern, e.g. "/api/peers/:peerId" (as in the OpenAPI document, with {peerId}). */
	pattern: string;
	/** A concrete URL. */
	url: string;
	/** A valid body for POST and PUT. */
	body?: Record<string, unknown>;
	/** Owner and admin only. */
	adminOnly: boolean;
}

export interface RouteTargets {
	keyId: string;
	peerId: string;
	/** The user whose tokens the token routes are about (the owner in most tests). */
	userId: string;
	tokenId: string;
	groupId: string;
	policyId: string;
	accountId: string;
	/** A user that PUT and DELETE /api/users/{userId} act on (not the owner). */
	memberId: string;
	/** A second peer, for the policy check. */
	otherPeerId: string;
	/** A route (served by a group of its own, so groupId stays deletable). */
	routeId: string;
	/** A network with one resource and one router. */
	networkId: string;
	resourceId: string;
	routerId: string;
}

/** The network every fixture route routes (one network_id, a router per fixture peer). */
const FIXTURE_ROUTE = { network_id: "fixture-lan", network: "198.18.200.0/24" };

/** Every /api route but the OpenAPI document, aimed at the given objects. */
export function apiRoutes(ids: RouteTargets): RouteCase[] {
	const { keyId, peerId, userId, tokenId, groupId, policyId, accountId, memberId, otherPeerId } =
		ids;
	const { routeId, networkId, resourceId, routerId } = ids;
	const routeBody = {
		...FIXTURE_ROUTE,
		description: "lan",
		enabled: true,
		peer: peerId,
		metric: 100,
		masquerade: true,
		groups: [groupId],
	};
	const resourceBody = { name: "db", address: "198.18.201.9", enabled: true, groups: [groupId] };
	const routerBody = { peer: peerId, metric: 10, masquerade: true, enabled: true };
	const net = `/api/networks/${networkId}`;
	const rule = {
		name: "r",
		enabled: true,
		action: "accept",
		bidirectional: true,
		protocol: "tcp",
		ports: ["22"],
		sources: [groupId],
		destinations: [groupId],
	};
	return [
		{ method: "GET", pattern: "/api/setup-keys", url: "/api/setup-keys", adminOnly: true },
		{
			method: "POST",
			pattern: "/api/setup-keys",
			url: "/api/setup-keys",
			body: { name: "k", type: "reusable" },
			adminOnly: true,
		},
		{
			method: "GET",
			pattern: "/api/setup-keys/:keyId",
			url: `/api/setup-keys/${keyId}`,
			adminOnly: true,
		},
		{
			method: "PUT",
			pattern: "/api/setup-keys/:keyId",
			url: `/api/setup-keys/${keyId}`,
			body: { revoked: true, auto_groups: [] },
			adminOnly: true,
		},
		{
			method: "DELETE",
			pattern: "/api/setup-keys/:keyId",
			url: `/api/setup-keys/${keyId}`,
			adminOnly: true,
		},
		{ method: "GET", pattern: "/api/peers", url: "/api/peers", adminOnly: true },
		{ method: "GET", pattern: "/api/peers/:peerId", url: `/api/peers/${peerId}`, adminOnly: true },
		{
			method: "GET",
			pattern: "/api/peers/:peerId/accessible-peers",
			url: `/api/peers/${peerId}/accessible-peers`,
			adminOnly: true,
		},
		{
			method: "PUT",
			pattern: "/api/peers/:peerId",
			url: `/api/peers/${peerId}`,
			body: { name: "renamed" },
			adminOnly: true,
		},
		{
			method: "DELETE",
			pattern: "/api/peers/:peerId",
			url: `/api/peers/${peerId}`,
			adminOnly: true,
		},
		{ method: "GET", pattern: "/api/users", url: "/api/users", adminOnly: true },
		{
			method: "POST",
			pattern: "/api/users",
			url: "/api/users",
			body: { name: "robot", role: "user", auto_groups: [], is_service_user: true },
			adminOnly: true,
		},
		{
			method: "PUT",
			pattern: "/api/users/:userId",
			url: `/api/users/${memberId}`,
			body: { role: "user", auto_groups: [], is_blocked: false },
			adminOnly: true,
		},
		{
			method: "DELETE",
			pattern: "/api/users/:userId",
			url: `/api/users/${memberId}`,
			adminOnly: true,
		},
		{ method: "GET", pattern: "/api/users/current", url: "/api/users/current", adminOnly: false },
		{
			method: "GET",
			pattern: "/api/users/:userId/tokens",
			url: `/api/users/${userId}/tokens`,
			adminOnly: false,
		},
		{
			method: "POST",
			pattern: "/api/users/:userId/tokens",
			url: `/api/users/${userId}/tokens`,
			body: { name: "t", expires_in: 1 },
			adminOnly: false,
		},
		{
			method: "GET",
			pattern: "/api/users/:userId/tokens/:tokenId",
			url: `/api/users/${userId}/tokens/${tokenId}`,
			adminOnly: false,
		},
		{
			method: "DELETE",
			pattern: "/api/users/:userId/tokens/:tokenId",
			url: `/api/users/${userId}/tokens/${tokenId}`,
			adminOnly: false,
		},
		{ method: "GET", pattern: "/api/groups", url: "/api/groups", adminOnly: true },
		{
			method: "POST",
			pattern: "/api/groups",
			url: "/api/groups",
			body: { name: `new group ${groupId}`, peers: [peerId] },
			adminOnly: true,
		},
		{
			method: "GET",
			pattern: "/api/groups/:groupId",
			url: `/api/groups/${groupId}`,
			adminOnly: true,
		},
		{
			method: "PUT",
			pattern: "/api/groups/:groupId",
			url: `/api/groups/${groupId}`,
			body: { name: `renamed group ${groupId}`, peers: [peerId, otherPeerId] },
			adminOnly: true,
		},
		{
			method: "DELETE",
			pattern: "/api/groups/:groupId",
			url: `/api/groups/${groupId}`,
			adminOnly: true,
		},
		{ method: "GET", pattern: "/api/policies", url: "/api/policies", adminOnly: true },
		{
			method: "POST",
			pattern: "/api/policies",
			url: "/api/policies",
			body: { name: "p", enabled: true, rules: [rule] },
			adminOnly: true,
		},
		{
			method: "POST",
			pattern: "/api/policies/check",
			url: "/api/policies/check",
			body: {
				source_peer_id: peerId,
				destination_peer_id: otherPeerId,
				protocol: "tcp",
				port: 22,
			},
			adminOnly: true,
		},
		{
			method: "POST",
			pattern: "/api/routes/check",
			url: "/api/routes/check",
			body: { peer_id: peerId, address: "198.18.10.1" },
			adminOnly: true,
		},
		{
			method: "GET",
			pattern: "/api/policies/:policyId",
			url: `/api/policies/${policyId}`,
			adminOnly: true,
		},
		{
			method: "PUT",
			pattern: "/api/policies/:policyId",
			url: `/api/policies/${policyId}`,
			body: { name: "p2", enabled: false, rules: [rule] },
			adminOnly: true,
		},
		{
			method: "DELETE",
			pattern: "/api/policies/:policyId",
			url: `/api/policies/${policyId}`,
			adminOnly: true,
		},
		{ method: "GET", pattern: "/api/accounts", url: "/api/accounts", adminOnly: true },
		{
			method: "GET",
			pattern: "/api/accounts/:accountId",
			url: `/api/accounts/${accountId}`,
			adminOnly: true,
		},
		{
			method: "PUT",
			pattern: "/api/accounts/:accountId",
			url: `/api/accounts/${accountId}`,
			body: { settings: { peer_login_expiration_enabled: true, peer_login_expiration: 7200 } },
			adminOnly: true,
		},
		{ method: "GET", pattern: "/api/events/audit", url: "/api/events/audit", adminOnly: true },
		{ method: "GET", pattern: "/api/routes", url: "/api/routes", adminOnly: true },
		{
			method: "POST",
			pattern: "/api/routes",
			url: "/api/routes",
			body: routeBody,
			adminOnly: true,
		},
		{
			method: "GET",
			pattern: "/api/routes/:routeId",
			url: `/api/routes/${routeId}`,
			adminOnly: true,
		},
		{
			method: "PUT",
			pattern: "/api/routes/:routeId",
			url: `/api/routes/${routeId}`,
			body: { ...routeBody, metric: 200, description: "changed" },
			adminOnly: true,
		},
		{
			method: "DELETE",
			pattern: "/api/routes/:routeId",
			url: `/api/routes/${routeId}`,
			adminOnly: true,
		},
		{ method: "GET", pattern: "/api/networks", url: "/api/networks", adminOnly: true },
		{
			method: "POST",
			pattern: "/api/networks",
			url: "/api/networks",
			body: { name: "office", description: "hq" },
			adminOnly: true,
		},
		{
			method: "GET",
			pattern: "/api/networks/resources",
			url: "/api/networks/resources",
			adminOnly: true,
		},
		{
			method: "GET",
			pattern: "/api/networks/routers",
			url: "/api/networks/routers",
			adminOnly: true,
		},
		{ method: "GET", pattern: "/api/networks/:networkId", url: net, adminOnly: true },
		{
			method: "PUT",
			pattern: "/api/networks/:networkId",
			url: net,
			body: { name: "renamed", description: "" },
			adminOnly: true,
		},
		{ method: "DELETE", pattern: "/api/networks/:networkId", url: net, adminOnly: true },
		{
			method: "GET",
			pattern: "/api/networks/:networkId/resources",
			url: `${net}/resources`,
			adminOnly: true,
		},
		{
			method: "POST",
			pattern: "/api/networks/:networkId/resources",
			url: `${net}/resources`,
			body: resourceBody,
			adminOnly: true,
		},
		{
			method: "GET",
			pattern: "/api/networks/:networkId/resources/:resourceId",
			url: `${net}/resources/${resourceId}`,
			adminOnly: true,
		},
		{
			method: "PUT",
			pattern: "/api/networks/:networkId/resources/:resourceId",
			url: `${net}/resources/${resourceId}`,
			body: { ...resourceBody, address: "198.18.201.0/28" },
			adminOnly: true,
		},
		{
			method: "DELETE",
			pattern: "/api/networks/:networkId/resources/:resourceId",
			url: `${net}/resources/${resourceId}`,
			adminOnly: true,
		},
		{
			method: "GET",
			pattern: "/api/networks/:networkId/routers",
			url: `${net}/routers`,
			adminOnly: true,
		},
		{
			method: "POST",
			pattern: "/api/networks/:networkId/routers",
			url: `${net}/routers`,
			body: routerBody,
			adminOnly: true,
		},
		{
			method: "GET",
			pattern: "/api/networks/:networkId/routers/:routerId",
			url: `${net}/routers/${routerId}`,
			adminOnly: true,
		},
		{
			method: "PUT",
			pattern: "/api/networks/:networkId/routers/:routerId",
			url: `${net}/routers/${routerId}`,
			body: { ...routerBody, metric: 20 },
			adminOnly: true,
		},
		{
			method: "DELETE",
			pattern: "/api/networks/:networkId/routers/:routerId",
			url: `${net}/routers/${routerId}`,
			adminOnly: true,
		},
	];
}

/**
 * Objects of the harness's account for every route to act on: a setup key,
 * two peers, a group, a policy (of another group), a user of role user,
 * and a token of the owner's.
 */
export async function makeTargets(h: RestHarness): Promise<RouteTargets> {
	const key = await h.createSetupKey({ name: "fixture key" });
	const peer = await h.registerPeer(key.key, "fixture-a");
	const other = await h.registerPeer(key.key, "fixture-b");
	const group = await h.createGroup(`fixture group ${newId()}`, [peer.id]);
	// The policy names a group of its own, so that the group above can be deleted.
	const policyGroup = await h.createGroup(`fixture policy group ${newId()}`, [other.id]);
	const policy = await h.createPolicy(`fixture policy ${newId()}`, [
		{ sources: [policyGroup.id], destinations: [policyGroup.id] },
	]);
	const member = await h.addUser("user");
	// Routing objects name the policy's group (and the second peer), never `group` or `peer`.
	const route = await h.ok("POST", "/api/routes", {
		...FIXTURE_ROUTE,
		description: "fixture",
		enabled: true,
		peer_groups: [policyGroup.id],
		metric: 100,
		masquerade: true,
		groups: [policyGroup.id],
	});
	const network = await h.ok("POST", "/api/networks", { name: `fixture network ${newId()}` });
	const resource = await h.ok("POST", `/api/networks/${network.id}/resources`, {
		name: "fixture resource",
		address: "198.18.201.5",
		enabled: true,
		groups: [policyGroup.id],
	});
	const router = await h.ok("POST", `/api/networks/${network.id}/routers`, {
		peer: other.id,
		metric: 100,
		masquerade: true,
		enabled: true,
	});
	// A token of the owner's for the token routes to act on (not the one the tests use).
	const { token } = await createPersonalAccessToken(
		h.store,
		h.owner.user,
		h.owner.user.id,
		"fixture token",
		30,
		new Date(),
	);
	return {
		keyId: key.id,
		peerId: peer.id,
		otherPeerId: other.id,
		userId: h.owner.user.id,
		tokenId: token.id,
		groupId: group.id,
		policyId: policy.id,
		accountId: h.account.id,
		memberId: member.user.id,
		routeId: route.id,
		networkId: network.id,
		resourceId: resource.id,
		routerId: router.id,
	};
}
