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

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe("setup keys", () => {
	it("creates a key: the plain key is in the creation answer only, with NetBird's fields", async () => {
		const res = await h.request("POST", "/api/setup-keys", {
			body: {
				name: "  office  ",
				type: "reusable",
				expires_in: 86_400,
				usage_limit: 5,
				ephemeral: true,
			},
		});
		expect(res.status).toBe(200);
		const key = res.json;
		expect(key).toEqual({
			id: expect.any(String),
			name: "office",
			key: expect.stringMatching(/^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/),
			expires: expect.stringMatching(ISO),
			type: "reusable",
			valid: true,
			revoked: false,
			used_times: 0,
			last_used: "0001-01-01T00:00:00Z",
			state: "valid",
			auto_groups: [],
			updated_at: expect.stringMatching(ISO),
			usage_limit: 5,
			ephemeral: true,
			allow_extra_dns_labels: false,
		});
		const expiresIn = Date.parse(key.expires) - Date.parse(key.updated_at);
		expect(expiresIn).toBe(86_400_000);

		const masked = `${key.key.slice(0, 5)}****`;
		const one = await h.request("GET", `/api/setup-keys/${key.id}`);
		expect(one.status).toBe(200);
		expect(one.json).toEqual({ ...key, key: masked });
		const list = await h.request("GET", "/api/setup-keys");
		expect(list.status).toBe(200);
		expect(list.json).toEqual([{ ...key, key: masked }]);
		expect(list.text).not.toContain(key.key);
	});

	it("stores only a hash of the key: the plain key is nowhere in the database files nor the logs", async () => {
		const { key: plain, id } = await h.createSetupKey({ name: "hashed" });
		const row = (await h.dumpRows()).setup_keys?.find((r) => r.id === id);
		expect(row?.hashed_key).toBe(hashSecret(plain));
		for (const value of Object.values(row ?? {})) expect(String(value)).not.toContain(plain);
		expect(row?.key_prefix).toBe(plain.slice(0, 5));
		expect(await h.databaseFilesContain(plain)).toBe(false);
		expect(await h.databaseFilesContain(plain.toLowerCase())).toBe(false);
		expect(h.logs.length).toBeGreaterThan(0);
		expect(h.logsContain(plain)).toBe(false);
		expect(h.logsContain(h.owner.token)).toBe(false);
	});

	it("defaults: never expires, unlimited, no groups, not ephemeral; one-off keys have a usage limit of 1", async () => {
		const reusable = await h.createSetupKey({ name: "r" });
		expect(reusable).toMatchObject({
			expires: "0001-01-01T00:00:00Z",
			usage_limit: 0,
			auto_groups: [],
			ephemeral: false,
		});
		const oneOff = await h.createSetupKey({ name: "o", type: "one-off", usage_limit: 7 });
		expect(oneOff).toMatchObject({ type: "one-off", usage_limit: 1, state: "valid" });
	});

	it("accepts expires_in 0 or 60..31536000 seconds and nothing else", async () => {
		for (const ok of [0, 60, 86_400, 31_536_000]) {
			const res = await h.request("POST", "/api/setup-keys", {
				body: { name: "e", type: "reusable", expires_in: ok },
			});
			expect(res.status, `expires_in ${ok}`).toBe(200);
		}
		for (const bad of [-1, 1, 59, 31_536_001, 1.5, "60", null, true]) {
			const res = await h.request("POST", "/api/setup-keys", {
				body: { name: "e", type: "reusable", expires_in: bad },
			});
			expect(res.status, `expires_in ${JSON.stringify(bad)}`).toBe(400);
			expect(isErrorBody(res)).toBe(true);
			expect(res.json.message).toContain("body/expires_in");
		}
	});

	it("joins auto-groups that exist and refuses unknown ones with 422", async () => {
		const [all] = await h.store.listGroups(h.account.id);
		const ok = await h.createSetupKey({ auto_groups: [all?.id, all?.id] });
		expect(ok.auto_groups).toEqual([all?.id]);
		const before = await h.snapshot();
		const bad = await h.request("POST", "/api/setup-keys", {
			body: { name: "g", type: "reusable", auto_groups: ["NoSuchGroup0000000000"] },
		});
		expect(bad.status).toBe(422);
		expect(isErrorBody(bad)).toBe(true);
		expect(bad.json.message).toContain("NoSuchGroup0000000000");
		expect(await h.snapshot()).toBe(before);
	});

	it("revokes with PUT: state revoked, the key stops registering peers, and stays revoked", async () => {
		const key = await h.createSetupKey({ name: "to revoke" });
		const res = await h.request("PUT", `/api/setup-keys/${key.id}`, {
			body: { revoked: true, auto_groups: [] },
		});
		expect(res.status).toBe(200);
		expect(res.json).toMatchObject({
			id: key.id,
			revoked: true,
			state: "revoked",
			valid: false,
			name: "to revoke",
		});
		expect(res.json.key).toBe(`${key.key.slice(0, 5)}****`);
		expect((await h.request("GET", `/api/setup-keys/${key.id}`)).json.state).toBe("revoked");
		await expect(h.registerPeer(key.key)).rejects.toThrow(/revoked/);

		const unrevoke = await h.request("PUT", `/api/setup-keys/${key.id}`, {
			body: { revoked: false, auto_groups: [] },
		});
		expect(unrevoke.status).toBe(422);
		expect(isErrorBody(unrevoke)).toBe(true);
		expect((await h.request("GET", `/api/setup-keys/${key.id}`)).json.revoked).toBe(true);
	});

	it("updates name and auto-groups with PUT, and bumps updated_at", async () => {
		const key = await h.createSetupKey({ name: "before" });
		const [all] = await h.store.listGroups(h.account.id);
		h.advance(5_000);
		const res = await h.request("PUT", `/api/setup-keys/${key.id}`, {
			body: { revoked: false, auto_groups: [all?.id], name: "after" },
		});
		expect(res.status).toBe(200);
		expect(res.json).toMatchObject({
			name: "after",
			auto_groups: [all?.id],
			revoked: false,
			state: "valid",
		});
		expect(Date.parse(res.json.updated_at)).toBeGreaterThan(Date.parse(key.updated_at as string));
		const unknown = await h.request("PUT", `/api/setup-keys/${key.id}`, {
			body: { revoked: false, auto_groups: ["NoSuchGroup0000000000"] },
		});
		expect(unknown.status).toBe(422);
		expect((await h.request("GET", `/api/setup-keys/${key.id}`)).json.auto_groups).toEqual([
			all?.id,
		]);
	});

	it("reports usage: used_times, last_used, overused and expired states", async () => {
		const oneOff = await h.createSetupKey({ name: "once", type: "one-off" });
		await h.registerPeer(oneOff.key, "first");
		const used = (await h.request("GET", `/api/setup-keys/${oneOff.id}`)).json;
		expect(used).toMatchObject({ used_times: 1, state: "overused", valid: false });
		expect(used.last_used).toMatch(ISO);

		const shortLived = await h.createSetupKey({ name: "short", expires_in: 60 });
		h.advance(61_000);
		expect((await h.request("GET", `/api/setup-keys/${shortLived.id}`)).json).toMatchObject({
			state: "expired",
			valid: false,
		});
	});

	it("deletes a key: 200 {}, then 404 everywhere", async () => {
		const key = await h.createSetupKey({ name: "gone" });
		const del = await h.request("DELETE", `/api/setup-keys/${key.id}`);
		expect(del.status).toBe(200);
		expect(del.json).toEqual({});
		for (const [method, body] of [
			["GET", undefined],
			["PUT", { revoked: true, auto_groups: [] }],
			["DELETE", undefined],
		] as const) {
			const res = await h.request(method, `/api/setup-keys/${key.id}`, { body });
			expect(res.status, method).toBe(404);
			expect(isErrorBody(res)).toBe(true);
		}
		expect((await h.request("GET", "/api/setup-keys")).json).toEqual([]);
	});

	it("an admin may manage keys too", async () => {
		const admin = await h.addUser("admin");
		const key = await h.createSetupKey({ name: "by admin" }, admin.token);
		const res = await h.request("GET", `/api/setup-keys/${key.id}`, { token: admin.token });
		expect(res.status).toBe(200);
		expect(res.json.name).toBe("by admin");
	});
});
