import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hashSecret } from "../src/core/secrets.js";
import { isErrorBody, RestHarness } from "./helpers-rest.js";

let h: RestHarness;
beforeEach(async () => {
	h = await RestHarness.create();
});
afterEach(async () => {
	await h.close();
});

describe("users", () => {
	it("GET /api/users/current answers the token's user", async () => {
		const res = await h.request("GET", "/api/users/current");
		expect(res.status).toBe(200);
		expect(res.json).toEqual({
			id: h.owner.user.id,
			email: "admin@localhost",
			name: "admin",
			role: "owner",
			status: "active",
			last_login: expect.any(String),
			auto_groups: [],
			is_current: true,
			is_service_user: false,
			is_blocked: false,
			pending_approval: false,
			issued: "api",
			permissions: { is_restricted: false, modules: expect.any(Object) },
		});
		expect(res.json.permissions.modules.peers).toEqual({
			read: true,
			create: true,
			update: true,
			delete: true,
		});
		const member = await h.addUser("user");
		const mine = await h.request("GET", "/api/users/current", { token: member.token });
		expect(mine.status).toBe(200);
		expect(mine.json).toMatchObject({ id: member.user.id, role: "user", is_current: true });
		// A user of role user reaches their own tokens and nothing else.
		expect(mine.json.permissions.is_restricted).toBe(true);
		expect(mine.json.permissions.modules.pats).toEqual({
			read: true,
			create: true,
			update: false,
			delete: true,
		});
		expect(mine.json.permissions.modules.peers.read).toBe(false);
		// Only the current user carries permissions (as NetBird).
		const list = await h.request("GET", "/api/users");
		expect(list.json.every((u: object) => !("permissions" in u))).toBe(true);
	});

	it("GET /api/users lists the account's users only", async () => {
		const admin = await h.addUser("admin");
		const member = await h.addUser("user", h.account, { serviceUser: true });
		await h.addAccount();
		const res = await h.request("GET", "/api/users", { token: admin.token });
		expect(res.status).toBe(200);
		expect(res.json.map((u: { id: string }) => u.id).sort()).toEqual(
			[h.owner.user.id, admin.user.id, member.user.id].sort(),
		);
		const me = res.json.find((u: { id: string }) => u.id === admin.user.id);
		expect(me).toMatchObject({ role: "admin", is_current: true });
		expect(res.json.filter((u: { is_current: boolean }) => u.is_current)).toHaveLength(1);

		const service = await h.request("GET", "/api/users?service_user=true");
		expect(service.json.map((u: { id: string }) => u.id)).toEqual([member.user.id]);
		expect(service.json[0].is_service_user).toBe(true);
		const regular = await h.request("GET", "/api/users?service_user=false");
		expect(regular.json).toHaveLength(2);
		const bad = await h.request("GET", "/api/users?service_user=yes");
		expect(bad.status).toBe(400);
		expect(bad.json.message).toContain("querystring/service_user");
	});
});

describe("personal access tokens", () => {
	it("full lifecycle: create (plain token once), list, get, authenticate with it, delete", async () => {
		const uid = h.owner.user.id;
		const created = await h.request("POST", `/api/users/${uid}/tokens`, {
			body: { name: "ci", expires_in: 30 },
		});
		expect(created.status).toBe(200);
		const { plain_token: plain, personal_access_token: pat } = created.json;
		expect(plain).toMatch(/^stp_[0-9A-Za-z]{36}$/);
		expect(pat).toEqual({
			id: expect.any(String),
			name: "ci",
			expiration_date: expect.any(String),
			created_by: uid,
			created_at: expect.any(String),
		});
		expect(Date.parse(pat.expiration_date) - Date.parse(pat.created_at)).toBe(30 * 86_400_000);

		// Stored hashed only.
		const stored = await h.store.getToken(uid, pat.id);
		expect(stored?.hashedToken).toBe(hashSecret(plain));
		expect(await h.databaseFilesContain(plain)).toBe(false);
		expect(h.logsContain(plain)).toBe(false);

		const list = await h.request("GET", `/api/users/${uid}/tokens`);
		expect(list.status).toBe(200);
		expect(list.json.map((t: { id: string }) => t.id)).toContain(pat.id);
		expect(list.text).not.toContain(plain);

		// The new token works and records its use.
		const me = await h.request("GET", "/api/users/current", { token: plain });
		expect(me.status).toBe(200);
		const got = await h.request("GET", `/api/users/${uid}/tokens/${pat.id}`);
		expect(got.status).toBe(200);
		expect(got.json).toMatchObject({ id: pat.id, name: "ci" });
		expect(got.json.last_used).not.toBeNull();

		const del = await h.request("DELETE", `/api/users/${uid}/tokens/${pat.id}`);
		expect(del.status).toBe(200);
		expect(del.json).toEqual({});
		expect((await h.request("GET", `/api/users/${uid}/tokens/${pat.id}`)).status).toBe(404);
		expect((await h.request("DELETE", `/api/users/${uid}/tokens/${pat.id}`)).status).toBe(404);
		const revoked = await h.request("GET", "/api/users/current", { token: plain });
		expect(revoked.status).toBe(401);
		expect(isErrorBody(revoked)).toBe(true);
	});

	it("validates name (1..64) and expires_in (1..365 days)", async () => {
		const uid = h.owner.user.id;
		const before = await h.snapshot();
		for (const body of [
			{ name: "", expires_in: 1 },
			{ name: "   ", expires_in: 1 },
			{ name: "x".repeat(65), expires_in: 1 },
			{ name: "ok", expires_in: 0 },
			{ name: "ok", expires_in: 366 },
			{ name: "ok", expires_in: 1.5 },
			{ name: "ok" },
			{ expires_in: 3 },
			{ name: "ok", expires_in: 3, extra: true },
		]) {
			const res = await h.request("POST", `/api/users/${uid}/tokens`, { body });
			expect(res.status, JSON.stringify(body)).toBe(400);
			expect(isErrorBody(res)).toBe(true);
			expect(res.json.message).toMatch(/^body/);
		}
		expect(await h.snapshot()).toBe(before);
		for (const expires_in of [1, 365]) {
			const ok = await h.request("POST", `/api/users/${uid}/tokens`, {
				body: { name: "x".repeat(64), expires_in },
			});
			expect(ok.status).toBe(200);
		}
	});

	it("a user manages their own tokens only; owners and admins manage any of their account's", async () => {
		const member = await h.addUser("user");
		const other = await h.addUser("user");
		const admin = await h.addUser("admin");

		// Own tokens: allowed for every role.
		const own = await h.request("POST", `/api/users/${member.user.id}/tokens`, {
			token: member.token,
			body: { name: "mine", expires_in: 7 },
		});
		expect(own.status).toBe(200);
		expect(own.json.personal_access_token.created_by).toBe(member.user.id);
		const ownList = await h.request("GET", `/api/users/${member.user.id}/tokens`, {
			token: member.token,
		});
		expect(ownList.status).toBe(200);
		expect(ownList.json).toHaveLength(2);
		const ownId = own.json.personal_access_token.id;
		expect(
			(
				await h.request("GET", `/api/users/${member.user.id}/tokens/${ownId}`, {
					token: member.token,
				})
			).status,
		).toBe(200);

		// Another user's tokens: 403 for a plain user, on every token route.
		const before = await h.snapshot();
		for (const [method, path, body] of [
			["GET", `/api/users/${other.user.id}/tokens`, undefined],
			["POST", `/api/users/${other.user.id}/tokens`, { name: "theirs", expires_in: 7 }],
			["GET", `/api/users/${other.user.id}/tokens/${other.tokenId}`, undefined],
			["DELETE", `/api/users/${other.user.id}/tokens/${other.tokenId}`, undefined],
			["DELETE", `/api/users/${h.owner.user.id}/tokens/${other.tokenId}`, undefined],
		] as const) {
			const res = await h.request(method, path, { token: member.token, body });
			expect(res.status, `${method} ${path}`).toBe(403);
			expect(isErrorBody(res)).toBe(true);
		}
		expect(await h.snapshot()).toBe(before);

		// An admin may, for any user of the account.
		const byAdmin = await h.request("POST", `/api/users/${other.user.id}/tokens`, {
			token: admin.token,
			body: { name: "for other", expires_in: 7 },
		});
		expect(byAdmin.status).toBe(200);
		expect(byAdmin.json.personal_access_token.created_by).toBe(admin.user.id);
		const delByAdmin = await h.request("DELETE", `/api/users/${member.user.id}/tokens/${ownId}`, {
			token: admin.token,
		});
		expect(delByAdmin.status).toBe(200);
		const ownerList = await h.request("GET", `/api/users/${other.user.id}/tokens`);
		expect(ownerList.status).toBe(200);
		expect(ownerList.json).toHaveLength(2);
	});

	it("unknown users and tokens are 404", async () => {
		expect((await h.request("GET", "/api/users/NoSuchUser0000000000/tokens")).status).toBe(404);
		expect(
			(await h.request("GET", `/api/users/${h.owner.user.id}/tokens/NoSuchToken000000000`)).status,
		).toBe(404);
		// A token id that exists, under the wrong user.
		const member = await h.addUser("user");
		expect(
			(await h.request("GET", `/api/users/${h.owner.user.id}/tokens/${member.tokenId}`)).status,
		).toBe(404);
		expect(
			(await h.request("DELETE", `/api/users/${h.owner.user.id}/tokens/${member.tokenId}`)).status,
		).toBe(404);
		expect((await h.request("GET", "/api/users/current", { token: member.token })).status).toBe(
			200,
		);
	});
});
