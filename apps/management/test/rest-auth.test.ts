import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createPersonalAccessToken } from "../src/app/tokens.js";
import { newPersonalAccessToken } from "../src/core/secrets.js";
import {
	apiRoutes,
	isErrorBody,
	makeTargets,
	RestHarness,
	type RouteCase,
} from "./helpers-rest.js";

let h: RestHarness;
let routes: RouteCase[];
let keyId: string;
beforeEach(async () => {
	h = await RestHarness.create();
	const targets = await makeTargets(h);
	keyId = targets.keyId;
	routes = apiRoutes(targets);
});
afterEach(async () => {
	await h.close();
});

describe("authentication", () => {
	it("every /api route but the OpenAPI document needs a valid token: 401 otherwise, nothing changed", async () => {
		const expiredUser = await h.addUser("owner", h.account, {
			tokenDays: 1,
			at: new Date(Date.now() - 2 * 86_400_000),
		});
		const blocked = await h.addUser("admin");
		await h.store.write((tx) => tx.updateUser({ ...blocked.user, blocked: true }));
		const tampered = `${h.owner.token.slice(0, -1)}${h.owner.token.endsWith("a") ? "b" : "a"}`;
		const headers: [string, Record<string, string>][] = [
			["missing", {}],
			["empty", { authorization: "" }],
			["scheme only", { authorization: "Token" }],
			["wrong scheme", { authorization: `Basic ${Buffer.from("a:b").toString("base64")}` }],
			["two tokens", { authorization: `Token ${h.owner.token} ${h.owner.token}` }],
			["not a token", { authorization: "Token hunter2" }],
			["bad checksum", { authorization: `Token ${tampered}` }],
			["unknown", { authorization: `Token ${newPersonalAccessToken()}` }],
			["expired", { authorization: `Token ${expiredUser.token}` }],
			["blocked user", { authorization: `Token ${blocked.token}` }],
			["huge", { authorization: `Token ${"x".repeat(8000)}` }],
		];
		const before = await h.snapshot();
		for (const route of routes) {
			for (const [what, hdrs] of headers) {
				const res = await h.request(route.method, route.url, {
					token: null,
					body: route.body,
					headers: hdrs,
				});
				expect(res.status, `${what}: ${route.method} ${route.url}`).toBe(401);
				expect(isErrorBody(res), `${what}: ${route.method} ${route.url}: ${res.text}`).toBe(true);
			}
		}
		expect(await h.snapshot()).toBe(before);
		const expired = await h.request("GET", "/api/users/current", { token: expiredUser.token });
		expect(expired.json.message).toMatch(/expired/);
	});

	it("authenticates before validating: garbage without a token is a 401, not a 400", async () => {
		const res = await h.request("POST", "/api/setup-keys", { token: null, raw: "{not json" });
		// Malformed JSON is found while parsing, which happens after the token check.
		expect(res.status).toBe(401);
		const res2 = await h.request("PUT", "/api/peers/%%%", { token: null, body: { nope: 1 } });
		expect([400, 401]).toContain(res2.status);
		expect(isErrorBody(res2)).toBe(true);
	});

	it("accepts the Token scheme case-insensitively and with extra spaces", async () => {
		for (const authorization of [
			`Token ${h.owner.token}`,
			`token ${h.owner.token}`,
			`  Token   ${h.owner.token}  `,
		]) {
			const res = await h.request("GET", "/api/users/current", {
				token: null,
				headers: { authorization },
			});
			expect(res.status, authorization).toBe(200);
		}
	});

	it("the OpenAPI document needs no token", async () => {
		const res = await h.request("GET", "/api/openapi.json", { token: null });
		expect(res.status).toBe(200);
		expect(res.json.openapi).toMatch(/^3\./);
	});
});

describe("roles", () => {
	it("a user of role user gets 403 on every owner/admin route, and nothing changes", async () => {
		const member = await h.addUser("user");
		const before = await h.snapshot();
		const adminRoutes = routes.filter((r) => r.adminOnly);
		expect(adminRoutes).toHaveLength(52);
		for (const route of adminRoutes) {
			const res = await h.request(route.method, route.url, {
				token: member.token,
				body: route.body,
			});
			expect(res.status, `${route.method} ${route.url}`).toBe(403);
			expect(isErrorBody(res)).toBe(true);
			// Even with an invalid body: the role is checked first.
			if (route.body) {
				const bad = await h.request(route.method, route.url, {
					token: member.token,
					body: { junk: true },
				});
				expect(bad.status).toBe(403);
			}
		}
		expect(await h.snapshot()).toBe(before);
		expect(h.sink.events.filter((e) => e.kind === "removed")).toHaveLength(0);
	});

	it("owner and admin may call every route", async () => {
		const admin = await h.addUser("admin");
		for (const token of [h.owner.token, admin.token]) {
			for (const route of routes.filter((r) => r.method === "GET")) {
				const res = await h.request(route.method, route.url, { token });
				expect(res.status, `${route.method} ${route.url}`).toBe(200);
			}
		}
	});
});

describe("isolation between accounts", () => {
	it("another account's objects are 404 by id, absent from lists, and unchanged", async () => {
		const b = await h.addAccount();
		const bAdmin = await h.addUser("admin", b.account);
		// Give account B objects of its own, so lists are not trivially empty.
		const bKey = await h.createSetupKey({ name: "b's key" }, b.owner.token);
		const bPeer = await h.registerPeer(bKey.key, "b-peer");
		h.sink.clear();
		const before = await h.snapshot();

		// Every route naming one of A's objects by id.
		const byId = routes.filter((r) => r.pattern.includes(":"));
		expect(byId).toHaveLength(37);
		for (const token of [b.owner.token, bAdmin.token]) {
			for (const route of byId) {
				const res = await h.request(route.method, route.url, { token, body: route.body });
				expect(res.status, `${route.method} ${route.url}`).toBe(404);
				expect(isErrorBody(res)).toBe(true);
			}
		}
		expect(await h.snapshot()).toBe(before);
		expect(h.sink.events).toEqual([]);

		const keys = await h.request("GET", "/api/setup-keys", { token: b.owner.token });
		expect(keys.json.map((k: { id: string }) => k.id)).not.toContain(keyId);
		expect(keys.json.map((k: { id: string }) => k.id)).toContain(bKey.id);
		const peers = await h.request("GET", "/api/peers", { token: b.owner.token });
		expect(peers.json.map((p: { id: string }) => p.id)).toEqual([bPeer.id]);
		expect(peers.json[0].accessible_peers_count).toBe(0);
		const byIp = await h.request("GET", `/api/peers?name=fixture-a`, { token: b.owner.token });
		expect(byIp.json).toEqual([]);
		const users = await h.request("GET", "/api/users", { token: b.owner.token });
		expect(users.json.map((u: { id: string }) => u.id).sort()).toEqual(
			[b.owner.user.id, bAdmin.user.id].sort(),
		);
	});

	it("a user id of another account is 404 on token routes, even for its owner's token routes", async () => {
		const b = await h.addAccount();
		const [bToken] = await h.store.listTokens(b.owner.user.id);
		const before = await h.snapshot();
		for (const [method, url, body] of [
			["GET", `/api/users/${b.owner.user.id}/tokens`, undefined],
			["POST", `/api/users/${b.owner.user.id}/tokens`, { name: "x", expires_in: 1 }],
			["GET", `/api/users/${b.owner.user.id}/tokens/${bToken?.id}`, undefined],
			["DELETE", `/api/users/${b.owner.user.id}/tokens/${bToken?.id}`, undefined],
		] as const) {
			const res = await h.request(method, url, { body });
			expect(res.status, `${method} ${url}`).toBe(404);
			expect(isErrorBody(res)).toBe(true);
		}
		expect(await h.snapshot()).toBe(before);
	});
});

describe("token bookkeeping", () => {
	it("records the token's last use", async () => {
		const member = await h.addUser("user");
		const [before] = await h.store.listTokens(member.user.id);
		expect(before?.lastUsed).toBeNull();
		await h.request("GET", "/api/users/current", { token: member.token });
		const [after] = await h.store.listTokens(member.user.id);
		expect(after?.lastUsed).toBeInstanceOf(Date);
	});

	it("a token expires at its expiry date by the API's clock", async () => {
		const member = await h.addUser("user");
		const { plainToken } = await createPersonalAccessToken(
			h.store,
			member.user,
			member.user.id,
			"short",
			1,
			new Date(),
		);
		expect((await h.request("GET", "/api/users/current", { token: plainToken })).status).toBe(200);
		h.advance(86_400_000 + 1000);
		const res = await h.request("GET", "/api/users/current", { token: plainToken });
		expect(res.status).toBe(401);
		expect(isErrorBody(res)).toBe(true);
	});
});
