import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Peer } from "../src/domain/types.js";
import { isErrorBody, RestHarness } from "./helpers-rest.js";

let h: RestHarness;
let peers: Peer[];
beforeEach(async () => {
	h = await RestHarness.create();
	const key = await h.createSetupKey({ name: "fleet" });
	peers = [await h.registerPeer(key.key, "web-1"), await h.registerPeer(key.key, "db.example.com")];
	h.sink.clear();
});
afterEach(async () => {
	await h.close();
});

describe("peers", () => {
	it("lists the account's peers with NetBird's fields", async () => {
		const res = await h.request("GET", "/api/peers");
		expect(res.status).toBe(200);
		expect(res.json).toHaveLength(2);
		const [all] = await h.store.listGroups(h.account.id);
		const web = res.json.find((p: { name: string }) => p.name === "web-1");
		expect(web).toEqual({
			id: peers[0]?.id,
			name: "web-1",
			ip: peers[0]?.ip,
			connection_ip: "203.0.113.7",
			connected: false,
			last_seen: expect.any(String),
			os: "linux 6.1",
			kernel_version: "6.1.0-test",
			version: "0.1.0",
			ui_version: "",
			groups: [{ id: all?.id, name: "All", peers_count: 2, resources_count: 0 }],
			ssh_enabled: false,
			user_id: "",
			hostname: "web-1",
			dns_label: "web-1.starling.internal",
			extra_dns_labels: [],
			login_expiration_enabled: false,
			login_expired: false,
			inactivity_expiration_enabled: false,
			last_login: expect.any(String),
			created_at: expect.any(String),
			approval_required: false,
			accessible_peers_count: 1,
			ephemeral: false,
			serial_number: "",
			country_code: "",
			city_name: "",
			geoname_id: 0,
		});
		const db = res.json.find((p: { name: string }) => p.name === "db.example.com");
		expect(db.dns_label).toBe("db.starling.internal");
		expect(db.hostname).toBe("db.example.com");
	});

	it("filters by exact name and ip", async () => {
		const byName = await h.request("GET", "/api/peers?name=web-1");
		expect(byName.json.map((p: { id: string }) => p.id)).toEqual([peers[0]?.id]);
		const byIp = await h.request("GET", `/api/peers?ip=${peers[1]?.ip}`);
		expect(byIp.json.map((p: { id: string }) => p.id)).toEqual([peers[1]?.id]);
		expect((await h.request("GET", "/api/peers?name=web")).json).toEqual([]);
		expect((await h.request("GET", `/api/peers?name=web-1&ip=${peers[1]?.ip}`)).json).toEqual([]);
		expect((await h.request("GET", "/api/peers?name=")).json).toHaveLength(2);
		const twice = await h.request("GET", "/api/peers?name=a&name=b");
		expect(twice.status).toBe(400);
		expect(isErrorBody(twice)).toBe(true);
		expect(twice.json.message).toContain("querystring/name");
	});

	it("retrieves one peer", async () => {
		const res = await h.request("GET", `/api/peers/${peers[1]?.id}`);
		expect(res.status).toBe(200);
		expect(res.json).toMatchObject({
			id: peers[1]?.id,
			ip: peers[1]?.ip,
			accessible_peers_count: 1,
		});
	});

	it("updates a peer: renaming renames its DNS label, and the network hears of it", async () => {
		const res = await h.request("PUT", `/api/peers/${peers[0]?.id}`, {
			body: { name: "Web Server 01", ssh_enabled: true, login_expiration_enabled: true },
		});
		expect(res.status).toBe(200);
		expect(res.json).toMatchObject({
			id: peers[0]?.id,
			name: "Web Server 01",
			dns_label: "web-server-01.starling.internal",
			ssh_enabled: true,
			login_expiration_enabled: true,
		});
		expect(h.sink.events.map((e) => [e.kind, e.peer.id, e.peer.dnsLabel])).toEqual([
			["changed", peers[0]?.id, "web-server-01"],
		]);
		// Name required, booleans optional and left as they are.
		const again = await h.request("PUT", `/api/peers/${peers[0]?.id}`, {
			body: { name: "web-server-01", inactivity_expiration_enabled: false },
		});
		expect(again.status).toBe(200);
		expect(again.json).toMatchObject({ ssh_enabled: true, inactivity_expiration_enabled: false });
		// A clashing name gets a unique label.
		const clash = await h.request("PUT", `/api/peers/${peers[1]?.id}`, {
			body: { name: "web-server-01" },
		});
		expect(clash.json.dns_label).toBe("web-server-01-1.starling.internal");
	});

	it("deletes a peer: 200 {}, the network hears of it, then 404", async () => {
		const del = await h.request("DELETE", `/api/peers/${peers[0]?.id}`);
		expect(del.status).toBe(200);
		expect(del.json).toEqual({});
		expect(h.sink.events.map((e) => [e.kind, e.peer.id])).toEqual([["removed", peers[0]?.id]]);
		expect(await h.count("peers")).toBe(1);
		for (const [method, body] of [
			["GET", undefined],
			["PUT", { name: "x" }],
			["DELETE", undefined],
		] as const) {
			const res = await h.request(method, `/api/peers/${peers[0]?.id}`, { body });
			expect(res.status, method).toBe(404);
			expect(isErrorBody(res)).toBe(true);
		}
		const list = await h.request("GET", "/api/peers");
		expect(list.json).toHaveLength(1);
		expect(list.json[0]).toMatchObject({
			accessible_peers_count: 0,
			groups: [{ name: "All", peers_count: 1, resources_count: 0 }],
		});
		expect(h.sink.events).toHaveLength(1);
	});

	it("shows the auto-groups a setup key gave", async () => {
		const [all] = await h.store.listGroups(h.account.id);
		const key = await h.createSetupKey({ name: "grouped", auto_groups: [all?.id] });
		const peer = await h.registerPeer(key.key, "grouped");
		const res = await h.request("GET", `/api/peers/${peer.id}`);
		expect(res.json.groups).toEqual([
			{ id: all?.id, name: "All", peers_count: 3, resources_count: 0 },
		]);
		expect(res.json.accessible_peers_count).toBe(2);
	});
});
