import { createLogger } from "@starling/log";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Peer } from "../src/domain/types.js";
import { buildRestApi } from "../src/rest/index.js";
import { isErrorBody, RecordingSink, RestHarness } from "./helpers-rest.js";

let h: RestHarness;
let key: { id: string; key: string };
let peers: Peer[];
beforeEach(async () => {
	h = await RestHarness.create();
	key = await h.createSetupKey({ name: "fleet" });
	peers = [
		await h.registerPeer(key.key, "web-1"),
		await h.registerPeer(key.key, "db-1"),
		await h.registerPeer(key.key, "other"),
	];
	h.sink.clear();
});
afterEach(async () => {
	await h.close();
});

const tcpRule = (
	sources: string[],
	destinations: string[],
	extra: Record<string, unknown> = {},
) => ({
	name: "rule",
	enabled: true,
	action: "accept",
	bidirectional: false,
	protocol: "tcp",
	ports: ["5432"],
	sources,
	destinations,
	...extra,
});

async function defaultPolicyId(): Promise<string> {
	const list = await h.request("GET", "/api/policies");
	return list.json.find((p: { name: string }) => p.name === "Default").id;
}

describe("a new account", () => {
	it("has the All group holding every peer and the Default policy: All to All, both ways, every protocol", async () => {
		const groups = await h.request("GET", "/api/groups");
		expect(groups.status).toBe(200);
		expect(groups.json).toHaveLength(1);
		expect(groups.json[0]).toMatchObject({
			name: "All",
			peers_count: 3,
			resources_count: 0,
			issued: "api",
			resources: [],
		});
		expect(groups.json[0].peers.map((p: { name: string }) => p.name).sort()).toEqual([
			"db-1",
			"other",
			"web-1",
		]);
		const policies = await h.request("GET", "/api/policies");
		const all = groups.json[0].id;
		expect(policies.json).toEqual([
			{
				id: expect.any(String),
				name: "Default",
				description: expect.any(String),
				enabled: true,
				source_posture_checks: [],
				rules: [
					{
						id: expect.any(String),
						name: "Default",
						description: expect.any(String),
						enabled: true,
						action: "accept",
						bidirectional: true,
						protocol: "all",
						ports: [],
						port_ranges: [],
						sources: [{ id: all, name: "All", peers_count: 3, resources_count: 0 }],
						destinations: [{ id: all, name: "All", peers_count: 3, resources_count: 0 }],
					},
				],
			},
		]);
		const list = await h.request("GET", "/api/peers");
		expect(
			list.json.map((p: { accessible_peers_count: number }) => p.accessible_peers_count),
		).toEqual([2, 2, 2]);
	});
});

describe("groups", () => {
	it("create, read, rename, replace peers, delete; names are unique; the network hears of membership only", async () => {
		const created = await h.request("POST", "/api/groups", {
			body: { name: "web", peers: [peers[0]!.id, peers[0]!.id] },
		});
		expect(created.status).toBe(200);
		expect(created.json).toEqual({
			id: expect.any(String),
			name: "web",
			peers_count: 1,
			resources_count: 0,
			issued: "api",
			peers: [{ id: peers[0]!.id, name: "web-1" }],
			resources: [],
		});
		const id = created.json.id;
		expect(h.sink.accessChanges).toEqual([h.account.id]);
		const dup = await h.request("POST", "/api/groups", { body: { name: "web" } });
		expect(dup.status).toBe(409);
		expect(isErrorBody(dup)).toBe(true);

		h.sink.clear();
		const renamed = await h.request("PUT", `/api/groups/${id}`, {
			body: { name: "frontend", peers: [peers[0]!.id] },
		});
		expect(renamed.json.name).toBe("frontend");
		expect(h.sink.accessChanges).toEqual([]); // a rename changes no map
		const moved = await h.request("PUT", `/api/groups/${id}`, {
			body: { name: "frontend", peers: [peers[1]!.id, peers[2]!.id] },
		});
		expect(moved.json.peers.map((p: { name: string }) => p.name).sort()).toEqual(["db-1", "other"]);
		expect(h.sink.accessChanges).toEqual([h.account.id]);
		const peer = await h.request("GET", `/api/peers/${peers[1]!.id}`);
		expect(peer.json.groups.map((g: { name: string }) => g.name)).toEqual(["All", "frontend"]);

		expect((await h.request("GET", `/api/groups/${id}`)).json.peers_count).toBe(2);
		expect((await h.request("DELETE", `/api/groups/${id}`)).status).toBe(200);
		expect((await h.request("GET", `/api/groups/${id}`)).status).toBe(404);
		// Deleting a peer takes it out of its groups.
		const g = await h.createGroup("db", [peers[1]!.id]);
		await h.request("DELETE", `/api/peers/${peers[1]!.id}`);
		expect((await h.request("GET", `/api/groups/${g.id}`)).json.peers).toEqual([]);
	});

	it("All is read-only; a group in use by a policy, setup key or user cannot be deleted", async () => {
		const all = await h.allGroupId();
		const before = await h.snapshot();
		for (const [method, body] of [
			["PUT", { name: "All", peers: [] }],
			["DELETE", undefined],
		] as const) {
			const res = await h.request(method, `/api/groups/${all}`, { body });
			expect(res.status, method).toBe(422);
			expect(res.json.message).toMatch(/All group/);
		}
		expect(await h.snapshot()).toBe(before);

		const g = await h.createGroup("used");
		const policy = await h.createPolicy("p", [{ sources: [g.id], destinations: [all] }]);
		const refused = await h.request("DELETE", `/api/groups/${g.id}`);
		expect(refused.status).toBe(422);
		expect(refused.json.message).toMatch(/policy "p"/);
		await h.request("DELETE", `/api/policies/${policy.id}`);
		const k = await h.createSetupKey({ name: "k", auto_groups: [g.id] });
		expect((await h.request("DELETE", `/api/groups/${g.id}`)).json.message).toMatch(
			/setup key "k"/,
		);
		await h.request("DELETE", `/api/setup-keys/${k.id}`);
		const u = await h.request("POST", "/api/users", {
			body: { name: "bot", role: "user", auto_groups: [g.id], is_service_user: true },
		});
		expect((await h.request("DELETE", `/api/groups/${g.id}`)).json.message).toMatch(/user "bot"/);
		await h.request("DELETE", `/api/users/${u.json.id}`);
		expect((await h.request("DELETE", `/api/groups/${g.id}`)).status).toBe(200);
	});

	it("a setup key's auto-groups put the peers it registers in them", async () => {
		const g = await h.createGroup("servers");
		const k = await h.createSetupKey({ name: "servers", auto_groups: [g.id] });
		const peer = await h.registerPeer(k.key, "srv-1");
		const group = await h.request("GET", `/api/groups/${g.id}`);
		expect(group.json.peers).toEqual([{ id: peer.id, name: "srv-1" }]);
	});
});

describe("policies", () => {
	it("create, read, update (rule ids kept), delete, with NetBird's fields", async () => {
		const web = await h.createGroup("web", [peers[0]!.id]);
		const db = await h.createGroup("db", [peers[1]!.id]);
		h.sink.clear();
		const res = await h.request("POST", "/api/policies", {
			body: {
				name: "web to db",
				description: "postgres",
				enabled: true,
				rules: [
					tcpRule([web.id], [db.id], {
						ports: ["5432", "5433"],
						port_ranges: [{ start: 8000, end: 8100 }],
					}),
				],
			},
		});
		expect(res.status).toBe(200);
		expect(res.json).toEqual({
			id: expect.any(String),
			name: "web to db",
			description: "postgres",
			enabled: true,
			source_posture_checks: [],
			rules: [
				{
					id: expect.any(String),
					name: "rule",
					description: "",
					enabled: true,
					action: "accept",
					bidirectional: false,
					protocol: "tcp",
					ports: ["5432", "5433"],
					port_ranges: [{ start: 8000, end: 8100 }],
					sources: [{ id: web.id, name: "web", peers_count: 1, resources_count: 0 }],
					destinations: [{ id: db.id, name: "db", peers_count: 1, resources_count: 0 }],
				},
			],
		});
		expect(h.sink.accessChanges).toEqual([h.account.id]);
		const id = res.json.id;
		const ruleId = res.json.rules[0].id;
		const updated = await h.request("PUT", `/api/policies/${id}`, {
			body: {
				name: "web to db",
				enabled: false,
				rules: [{ ...tcpRule([web.id], [db.id]), id: ruleId }, tcpRule([db.id], [web.id])],
			},
		});
		expect(updated.status).toBe(200);
		expect(updated.json.enabled).toBe(false);
		expect(updated.json.rules[0].id).toBe(ruleId);
		expect(updated.json.rules[1].id).not.toBe(ruleId);
		const foreign = await h.request("PUT", `/api/policies/${id}`, {
			body: {
				name: "x",
				enabled: true,
				rules: [{ ...tcpRule([web.id], [db.id]), id: "NotARule000" }],
			},
		});
		expect(foreign.status).toBe(422);
		expect((await h.request("GET", `/api/policies/${id}`)).json.name).toBe("web to db");
		expect((await h.request("DELETE", `/api/policies/${id}`)).status).toBe(200);
		expect((await h.request("GET", `/api/policies/${id}`)).status).toBe(404);
		// The Default policy can be deleted too.
		expect((await h.request("DELETE", `/api/policies/${await defaultPolicyId()}`)).status).toBe(
			200,
		);
		expect((await h.request("GET", "/api/policies")).json).toEqual([]);
	});

	it("refuses what it cannot enforce: drop rules, ports on all/icmp, bad ports, posture checks", async () => {
		const all = await h.allGroupId();
		const before = await h.snapshot();
		for (const [rule, message] of [
			[tcpRule([all], [all], { action: "drop" }), /rules\/0\/action: drop rules are not supported/],
			[tcpRule([all], [all], { protocol: "icmp" }), /protocol icmp takes no ports/],
			[tcpRule([all], [all], { protocol: "all" }), /protocol all takes no ports/],
			[tcpRule([all], [all], { ports: ["0"] }), /ports\/0: ports are 1 to 65535/],
			[tcpRule([all], [all], { ports: ["70000"] }), /ports are 1 to 65535/],
			[tcpRule([all], [all], { ports: [22] }), /ports\/0/],
			[
				tcpRule([all], [all], { port_ranges: [{ start: 90, end: 80 }] }),
				/start must not be after end/,
			],
			[tcpRule([], [all]), /sources: at least one source group/],
			[tcpRule([all], [all], { protocol: "sctp" }), /protocol/],
			[
				tcpRule([all], [all], { sourceResource: { id: "x", type: "host" } }),
				/network resources .*not supported/,
			],
		] as const) {
			const res = await h.request("POST", "/api/policies", {
				body: { name: "p", enabled: true, rules: [rule] },
			});
			expect(res.status, JSON.stringify(rule)).toBe(400);
			expect(res.json.message).toMatch(message);
		}
		const posture = await h.request("POST", "/api/policies", {
			body: {
				name: "p",
				enabled: true,
				rules: [tcpRule([all], [all])],
				source_posture_checks: ["x"],
			},
		});
		expect(posture.status).toBe(400);
		const empty = await h.request("POST", "/api/policies", {
			body: { name: "p", enabled: true, rules: [] },
		});
		expect(empty.json.message).toMatch(/at least one rule/);
		expect(await h.snapshot()).toBe(before);
	});

	it("peers that no enabled rule connects stop seeing each other (accessible_peers_count)", async () => {
		const web = await h.createGroup("web", [peers[0]!.id]);
		const db = await h.createGroup("db", [peers[1]!.id]);
		await h.createPolicy("web to db", [tcpRule([web.id], [db.id])]);
		const id = await defaultPolicyId();
		const def = (await h.request("GET", `/api/policies/${id}`)).json;
		const off = await h.request("PUT", `/api/policies/${id}`, {
			body: {
				name: def.name,
				enabled: false,
				rules: def.rules.map((r: Record<string, unknown>) => ({
					...r,
					sources: (r.sources as { id: string }[]).map((g) => g.id),
					destinations: (r.destinations as { id: string }[]).map((g) => g.id),
				})),
			},
		});
		expect(off.status).toBe(200);
		const list = (await h.request("GET", "/api/peers")).json as {
			name: string;
			accessible_peers_count: number;
		}[];
		expect(Object.fromEntries(list.map((p) => [p.name, p.accessible_peers_count]))).toEqual({
			"web-1": 1,
			"db-1": 1,
			other: 0,
		});
	});

	it("a second instance on the same database lists what the first one changed, never its cached listings", async () => {
		// Listings are cached by the account's revision (rest/listings.ts): a
		// write by another process must reach this one's next answer.
		const store = await h.openAnotherStore();
		const second = await buildRestApi({
			store,
			sink: new RecordingSink(),
			logger: createLogger("second-instance", { level: "silent" }),
		});
		try {
			const list = async (url: string) => {
				const res = await second.inject({
					method: "GET",
					url,
					headers: { authorization: `Token ${h.owner.token}` },
				});
				expect(res.statusCode).toBe(200);
				return JSON.parse(res.body) as { name: string }[];
			};
			const counts = async () =>
				Object.fromEntries(
					((await list("/api/peers")) as { name: string; accessible_peers_count: number }[]).map(
						(p) => [p.name, p.accessible_peers_count],
					),
				);
			// Listed (and cached) on the second instance first.
			expect(await counts()).toEqual({ "web-1": 2, "db-1": 2, other: 2 });
			expect((await list("/api/groups")).map((g) => g.name)).toEqual(["All"]);
			expect((await list("/api/policies")).map((p) => p.name)).toEqual(["Default"]);

			const web = await h.createGroup("web", [peers[0]!.id]);
			const db = await h.createGroup("db", [peers[1]!.id]);
			await h.createPolicy("web to db", [tcpRule([web.id], [db.id])]);
			expect((await h.request("DELETE", `/api/policies/${await defaultPolicyId()}`)).status).toBe(
				200,
			);
			expect(await counts()).toEqual({ "web-1": 1, "db-1": 1, other: 0 });
			expect((await list("/api/groups")).map((g) => g.name)).toEqual(["All", "db", "web"]);
			expect((await list("/api/policies")).map((p) => p.name)).toEqual(["web to db"]);

			// A peer renamed on the first instance is renamed in the second's listings.
			const renamed = await h.request("PUT", `/api/peers/${peers[2]!.id}`, {
				body: { name: "renamed", ssh_enabled: false, login_expiration_enabled: false },
			});
			expect(renamed.status).toBe(200);
			expect(Object.keys(await counts()).sort()).toEqual(["db-1", "renamed", "web-1"]);
		} finally {
			await second.close();
			await store.close();
		}
	});

	it("POST /api/policies/check answers whether and by which rule a connection is allowed", async () => {
		const web = await h.createGroup("web", [peers[0]!.id]);
		const db = await h.createGroup("db", [peers[1]!.id]);
		const policy = await h.createPolicy("web to db", [tcpRule([web.id], [db.id])]);
		await h.request("DELETE", `/api/policies/${await defaultPolicyId()}`);
		const check = (body: Record<string, unknown>) =>
			h.request("POST", "/api/policies/check", { body });
		const [w, d, o] = peers.map((p) => p.id) as [string, string, string];
		const before = await h.snapshot();

		const ok = await check({
			source_peer_id: w,
			destination_peer_id: d,
			protocol: "tcp",
			port: 5432,
		});
		expect(ok.status).toBe(200);
		expect(ok.json).toEqual({
			allowed: true,
			rule: {
				policy_id: policy.id,
				policy_name: "web to db",
				rule_id: policy.rules[0]!.id,
				rule_name: "rule",
			},
			reason: expect.stringMatching(/allowed by rule "rule" of policy "web to db"/),
		});
		const ssh = await check({
			source_peer_id: w,
			destination_peer_id: d,
			protocol: "tcp",
			port: 22,
		});
		expect(ssh.json).toMatchObject({ allowed: false, rule: null });
		expect(ssh.json.reason).toMatch(/connected by other rules/);
		const back = await check({
			source_peer_id: d,
			destination_peer_id: w,
			protocol: "tcp",
			port: 5432,
		});
		expect(back.json.allowed).toBe(false);
		const ping = await check({ source_peer_id: w, destination_peer_id: d, protocol: "icmp" });
		expect(ping.json.allowed).toBe(false);
		const stranger = await check({
			source_peer_id: o,
			destination_peer_id: d,
			protocol: "tcp",
			port: 5432,
		});
		expect(stranger.json.reason).toMatch(/neither sees the other/);
		const unknown = await check({
			source_peer_id: "NoSuchPeer000",
			destination_peer_id: d,
			protocol: "tcp",
			port: 1,
		});
		expect(unknown.status).toBe(404);
		expect(
			(await check({ source_peer_id: w, destination_peer_id: d, protocol: "tcp" })).json.message,
		).toMatch(/body\/port: is required for tcp/);
		expect(
			(await check({ source_peer_id: w, destination_peer_id: d, protocol: "icmp", port: 1 }))
				.status,
		).toBe(400);
		expect(await h.snapshot()).toBe(before);
	});
});

describe("users", () => {
	it("creates service users and regular users; validates email, uniqueness, role and groups", async () => {
		const g = await h.createGroup("devs");
		const bot = await h.request("POST", "/api/users", {
			body: { name: "ci", role: "admin", auto_groups: [g.id], is_service_user: true },
		});
		expect(bot.status).toBe(200);
		expect(bot.json).toMatchObject({
			name: "ci",
			email: "",
			role: "admin",
			is_service_user: true,
			auto_groups: [g.id],
			status: "active",
			last_login: "0001-01-01T00:00:00Z",
			pending_approval: false,
		});
		const alice = await h.request("POST", "/api/users", {
			body: {
				email: "alice@example.test",
				name: "Alice",
				role: "user",
				auto_groups: [],
				is_service_user: false,
			},
		});
		expect(alice.json).toMatchObject({
			email: "alice@example.test",
			name: "Alice",
			is_service_user: false,
		});
		const before = await h.snapshot();
		for (const [body, status, message] of [
			[{ role: "user", auto_groups: [], is_service_user: false }, 400, /body\/email: is required/],
			[
				{ email: "nope", role: "user", auto_groups: [], is_service_user: false },
				400,
				/not an email/,
			],
			[{ role: "user", auto_groups: [], is_service_user: true }, 400, /body\/name: is required/],
			[
				{ email: "ALICE@example.test", role: "user", auto_groups: [], is_service_user: false },
				409,
				/already exists/,
			],
			[{ name: "x", role: "owner", auto_groups: [], is_service_user: true }, 422, /one owner/],
			[
				{ name: "x", role: "user", auto_groups: ["NoGroup000"], is_service_user: true },
				422,
				/unknown group/,
			],
		] as const) {
			const res = await h.request("POST", "/api/users", { body });
			expect(res.status, JSON.stringify(body)).toBe(status);
			expect(res.json.message).toMatch(message);
		}
		expect(await h.snapshot()).toBe(before);
	});

	it("role rules: admins cannot touch the owner; nobody blocks, demotes or deletes themselves out", async () => {
		const admin = await h.addUser("admin");
		const member = await h.addUser("user");
		const owner = h.owner.user.id;
		const put = (id: string, body: Record<string, unknown>, token?: string) =>
			h.request("PUT", `/api/users/${id}`, {
				body: { auto_groups: [], is_blocked: false, ...body },
				token,
			});
		const before = await h.snapshot();
		expect((await put(owner, { role: "admin" }, admin.token)).status).toBe(403);
		expect((await put(owner, { role: "owner", is_blocked: true }, admin.token)).status).toBe(403);
		expect((await h.request("DELETE", `/api/users/${owner}`, { token: admin.token })).status).toBe(
			403,
		);
		expect((await put(owner, { role: "admin" })).status).toBe(422);
		expect((await put(owner, { role: "owner", is_blocked: true })).status).toBe(422);
		expect((await put(member.user.id, { role: "owner" })).status).toBe(422);
		expect((await put(member.user.id, { role: "owner" }, admin.token)).status).toBe(403);
		expect(
			(await put(admin.user.id, { role: "admin", is_blocked: true }, admin.token)).status,
		).toBe(422);
		expect(
			(await h.request("DELETE", `/api/users/${admin.user.id}`, { token: admin.token })).status,
		).toBe(422);
		expect(await h.snapshot()).toBe(before);

		// An admin may promote, block and delete other users; a blocked user's tokens stop working.
		expect((await put(member.user.id, { role: "admin" }, admin.token)).json.role).toBe("admin");
		const blocked = await put(member.user.id, { role: "user", is_blocked: true }, admin.token);
		expect(blocked.json).toMatchObject({ role: "user", is_blocked: true, status: "blocked" });
		expect((await h.request("GET", "/api/users/current", { token: member.token })).status).toBe(
			401,
		);
		await put(member.user.id, { role: "user", is_blocked: false }, admin.token);
		expect((await h.request("GET", "/api/users/current", { token: member.token })).status).toBe(
			200,
		);
		expect(
			(await h.request("DELETE", `/api/users/${member.user.id}`, { token: admin.token })).status,
		).toBe(200);
		expect((await h.request("GET", "/api/users/current", { token: member.token })).status).toBe(
			401,
		);
		expect(await h.store.listTokens(member.user.id)).toEqual([]);
		// The owner keeps owning and may set its own auto-groups.
		const g = await h.createGroup("mine");
		expect((await put(owner, { role: "owner", auto_groups: [g.id] })).json.auto_groups).toEqual([
			g.id,
		]);
	});
});

describe("accounts", () => {
	it("GET /api/accounts and /api/accounts/{id} show the caller's account only", async () => {
		const list = await h.request("GET", "/api/accounts");
		expect(list.json).toEqual([
			{
				id: h.account.id,
				settings: {
					peer_login_expiration_enabled: false,
					peer_login_expiration: 30 * 86_400,
					peer_inactivity_expiration_enabled: false,
					peer_inactivity_expiration: 0,
					regular_users_view_blocked: true,
					network_range: h.account.network,
					dns_domain: "starling.internal",
					peer_expose_enabled: false,
					peer_expose_groups: [],
				},
				domain: "starling.internal",
				domain_category: "private",
				created_at: expect.any(String),
				created_by: h.owner.user.id,
				onboarding: { signup_form_pending: false, onboarding_flow_pending: false },
			},
		]);
		expect((await h.request("GET", `/api/accounts/${h.account.id}`)).json).toEqual(list.json[0]);
	});

	it("PUT changes login expiration; the network range only while the account has no peers, inside the pool, not overlapping", async () => {
		const url = `/api/accounts/${h.account.id}`;
		const settings = { peer_login_expiration_enabled: true, peer_login_expiration: 7200 };
		const res = await h.request("PUT", url, { body: { settings } });
		expect(res.status).toBe(200);
		expect(res.json.settings).toMatchObject(settings);
		const before = await h.snapshot();
		// A's /16 is random in the pool: a move to another /16 (not a no-op) is refused.
		const otherRange = h.account.network === "100.99.0.0/16" ? "100.98.0.0/16" : "100.99.0.0/16";
		for (const [body, status] of [
			[{ settings: { ...settings, peer_login_expiration: 60 } }, 400],
			[{ settings: { ...settings, peer_inactivity_expiration_enabled: true } }, 400],
			[{ settings: { ...settings, regular_users_view_blocked: false } }, 400],
			[{ settings: { ...settings, network_range: "100.64.0/16" } }, 400],
			[{ settings: { ...settings, network_range: otherRange } }, 422], // has peers
			[{ settings, onboarding: {} }, 400],
		] as const) {
			const r = await h.request("PUT", url, { body });
			expect(r.status, JSON.stringify(body)).toBe(status);
			expect(isErrorBody(r)).toBe(true);
		}
		expect(await h.snapshot()).toBe(before);

		const b = await h.addAccount();
		const bUrl = `/api/accounts/${b.account.id}`;
		const put = (network_range: string) =>
			h.request("PUT", bUrl, {
				token: b.owner.token,
				body: { settings: { ...settings, network_range } },
			});
		expect((await put("10.0.0.0/16")).status).toBe(422); // outside 100.64.0.0/10
		expect((await put("100.64.0.1/16")).status).toBe(422); // host bits
		expect((await put(h.account.network)).status).toBe(409); // A's
		// A's /16 is random in the pool: take a /24 in a /16 that is not A's.
		const freeSecondOctet = h.account.network.startsWith("100.127.") ? 126 : 127;
		const target = `100.${freeSecondOctet}.0.0/24`;
		const moved = await put(target);
		expect(moved.status).toBe(200);
		expect(moved.json.settings.network_range).toBe(target);
		const bKey = await h.createSetupKey({ name: "b" }, b.owner.token);
		const bPeer = await h.registerPeer(bKey.key, "b-1");
		expect(bPeer.ip.startsWith(`100.${freeSecondOctet}.0.`)).toBe(true);
	});
});

describe("audit events", () => {
	it("records every change with who, what, when and the target, newest first, with a limit", async () => {
		const admin = await h.addUser("admin");
		const g = await h.createGroup("web", [peers[0]!.id]);
		await h.request("PUT", `/api/groups/${g.id}`, {
			token: admin.token,
			body: { name: "web", peers: [peers[0]!.id, peers[1]!.id] },
		});
		const p = await h.createPolicy("p", [tcpRule([g.id], [g.id])]);
		await h.request("DELETE", `/api/peers/${peers[2]!.id}`, { token: admin.token });
		const res = await h.request("GET", "/api/events/audit");
		expect(res.status).toBe(200);
		const codes = res.json.map((e: { activity_code: string }) => e.activity_code);
		expect(codes.slice(0, 4)).toEqual([
			"user.peer.delete",
			"policy.add",
			"group.update",
			"group.add",
		]);
		expect(codes).toContain("setupkey.add");
		expect(codes.filter((c: string) => c === "peer.setupkey.add")).toHaveLength(3);
		expect(res.json[0]).toEqual({
			id: expect.any(String),
			timestamp: expect.any(String),
			activity: "Peer deleted",
			activity_code: "user.peer.delete",
			initiator_id: admin.user.id,
			initiator_name: admin.user.name,
			initiator_email: admin.user.email,
			target_id: peers[2]!.id,
			meta: { name: "other", ip: peers[2]!.ip, dns_label: "other" },
		});
		expect(res.json[1]).toMatchObject({
			target_id: p.id,
			initiator_id: h.owner.user.id,
			meta: { name: "p" },
		});
		expect(res.json[2].meta).toMatchObject({ peers_added: peers[1]!.id, peers_removed: "" });
		const registration = res.json.find(
			(e: { activity_code: string }) => e.activity_code === "peer.setupkey.add",
		);
		expect(registration).toMatchObject({ initiator_id: key.id, initiator_name: "fleet" });
		const times = res.json.map((e: { timestamp: string }) => Date.parse(e.timestamp));
		expect(times).toEqual([...times].sort((a, b) => b - a));
		const two = await h.request("GET", "/api/events/audit?limit=2");
		expect(two.json.map((e: { id: string }) => e.id)).toEqual(
			res.json.slice(0, 2).map((e: { id: string }) => e.id),
		);
		// Another account sees none of them.
		const b = await h.addAccount();
		expect((await h.request("GET", "/api/events/audit", { token: b.owner.token })).json).toEqual(
			[],
		);
	});

	it("tokens, setup keys, users and settings are audited too; refusals are not", async () => {
		const uid = h.owner.user.id;
		const t = await h.request("POST", `/api/users/${uid}/tokens`, {
			body: { name: "ci", expires_in: 1 },
		});
		await h.request("DELETE", `/api/users/${uid}/tokens/${t.json.personal_access_token.id}`);
		await h.request("PUT", `/api/setup-keys/${key.id}`, {
			body: { revoked: true, auto_groups: [] },
		});
		await h.request("DELETE", `/api/setup-keys/${key.id}`);
		const u = await h.request("POST", "/api/users", {
			body: { name: "bot", role: "user", auto_groups: [], is_service_user: true },
		});
		await h.request("PUT", `/api/users/${u.json.id}`, {
			body: { role: "admin", auto_groups: [], is_blocked: true },
		});
		await h.request("DELETE", `/api/users/${u.json.id}`);
		await h.request("PUT", `/api/accounts/${h.account.id}`, {
			body: { settings: { peer_login_expiration_enabled: true, peer_login_expiration: 3600 } },
		});
		await h.request("POST", "/api/groups", { body: { name: "All" } }); // 409: not recorded
		await h.request("PUT", `/api/peers/${peers[0]!.id}`, {
			body: { name: "web-2", ssh_enabled: true },
		});
		const codes = (await h.request("GET", "/api/events/audit?limit=20")).json.map(
			(e: { activity_code: string }) => e.activity_code,
		);
		expect(codes.slice(0, 14)).toEqual([
			"peer.ssh.enable",
			"peer.rename",
			"account.setting.peer.login.expiration.update",
			"account.setting.peer.login.expiration.enable",
			"service.user.delete",
			"user.block",
			"user.role.update",
			"service.user.create",
			"setupkey.delete",
			"setupkey.revoke",
			"personal.access.token.delete",
			"personal.access.token.create",
			"peer.setupkey.add",
			"peer.setupkey.add",
		]);
	});
});

describe("interactive reference", () => {
	it("is served at /api/docs without a token, from local files only", async () => {
		const page = await h.request("GET", "/api/docs/", { token: null });
		expect(page.status).toBe(200);
		expect(String(page.headers["content-type"])).toMatch(/text\/html/);
		expect(page.text).toMatch(/swagger-ui/i);
		// No CDN: every script and stylesheet comes from this server.
		const external = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)]
			.map((m) => m[1]!)
			.filter((u) => /^(https?:)?\/\//.test(u));
		expect(external).toEqual([]);
		const bundle = await h.request("GET", "/api/docs/static/swagger-ui-bundle.js", { token: null });
		expect(bundle.status).toBe(200);
		expect(bundle.text.length).toBeGreaterThan(100_000);
		const spec = await h.request("GET", "/api/docs/json", { token: null });
		expect(spec.json.paths["/api/policies"]).toBeDefined();
	});
});
