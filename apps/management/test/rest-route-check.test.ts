import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../src/core/random.js";
import { routeFixture } from "../src/domain/fixtures.js";
import type { Peer, Route } from "../src/domain/types.js";
import { RestHarness } from "./helpers-rest.js";

// POST /api/routes/check over a real store: routes written through the
// store's own transactions (the REST CRUD of routes is tested beside it).

let h: RestHarness;
let client: Peer;
let r1: Peer;
let r2: Peer;

function route(over: Partial<Route>): Route {
	return routeFixture({
		id: newId(),
		accountId: h.account.id,
		description: "office LAN",
		networkId: "office",
		...over,
	});
}

beforeAll(async () => {
	h = await RestHarness.create();
	const key = await h.createSetupKey({ name: "k" });
	client = await h.registerPeer(key.key, "client");
	r1 = await h.registerPeer(key.key, "router-1");
	r2 = await h.registerPeer(key.key, "router-2");
	const clients = await h.createGroup("clients", [client.id]);
	// Only r2 holds a Sync stream: connected is what the check goes by.
	await h.store.write(async (tx) => {
		await tx.updatePeer({ ...r2, connected: true });
		await tx.insertRoute(route({ id: "viaR1", peerId: r1.id, metric: 10, groups: [clients.id] }));
		await tx.insertRoute(route({ id: "viaR2", peerId: r2.id, metric: 20, groups: [clients.id] }));
	});
});
afterAll(async () => {
	await h.close();
});

const check = (body: Record<string, unknown>) => h.request("POST", "/api/routes/check", { body });

describe("POST /api/routes/check", () => {
	it("answers the route, the connected router with the lowest metric and why, and the access verdict", async () => {
		const before = await h.snapshot();
		const res = await check({ peer_id: client.id, address: "198.18.10.20" });
		expect(res.status, res.text).toBe(200);
		expect(res.json.route).toEqual({
			id: "viaR2",
			type: "route",
			network_id: "office",
			network: "198.18.10.0/24",
			description: "office LAN",
			skip_auto_apply: false,
		});
		expect(res.json.router).toMatchObject({
			peer_id: r2.id,
			name: "router-2",
			metric: 20,
			connected: true,
		});
		expect(res.json.router.reason).toMatch(/lowest metric \(20\) among the connected routers/);
		expect(res.json.candidates.map((c: { peer_id: string }) => c.peer_id)).toEqual([r1.id, r2.id]);
		expect(res.json.access).toMatchObject({ allowed: true, rule: null });
		expect(res.json.access.reason).toMatch(/open to the route's groups/);
		// Changes nothing.
		expect(await h.snapshot()).toBe(before);
	});

	it("route null when no route covers the address (or the peer receives none)", async () => {
		const outside = await check({ peer_id: client.id, address: "192.0.2.1" });
		expect(outside.status).toBe(200);
		expect(outside.json).toMatchObject({ route: null, router: null, candidates: [], access: null });
		const router = await check({ peer_id: r1.id, address: "198.18.10.20" });
		expect(router.json.route).toBeNull();
	});

	it("accessible peers are those of the map: a route links its receivers and routers without any policy", async () => {
		const policies = await h.request("GET", "/api/policies");
		for (const p of policies.json) await h.request("DELETE", `/api/policies/${p.id}`);
		const accessible = async (p: Peer) =>
			(await h.request("GET", `/api/peers/${p.id}/accessible-peers`)).json
				.map((x: { id: string }) => x.id)
				.sort();
		expect(await accessible(client)).toEqual([r1.id, r2.id].sort());
		expect(await accessible(r1)).toEqual([client.id]);
		const listed = (await h.request("GET", "/api/peers")).json;
		expect(listed.find((p: { id: string }) => p.id === client.id).accessible_peers_count).toBe(2);
	});

	it("404 for an unknown peer, 400 for a bad address, both as {message, code}", async () => {
		const unknown = await check({ peer_id: "Unknown000000000000", address: "198.18.10.1" });
		expect(unknown.status).toBe(404);
		expect(unknown.json).toEqual({ message: "peer not found", code: 404 });
		for (const address of ["198.18.10", "300.1.1.1", "198.18.10.0/24", "fd00::1", ""]) {
			const bad = await check({ peer_id: client.id, address });
			expect(bad.status, address).toBe(400);
			expect(bad.json.message).toMatch(/address/);
			expect(bad.json.code).toBe(400);
		}
		expect((await check({ peer_id: client.id })).status).toBe(400);
	});
});
