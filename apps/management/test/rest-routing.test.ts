import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Peer } from "../src/domain/types.js";
import { RestHarness } from "./helpers-rest.js";

// /api/routes and /api/networks over a real store: NetBird's shapes, the
// rules of the use cases, audit events and the pushes they trigger, and
// what deleting groups, peers and networks does to routing. One harness for
// the file; each test makes its own objects.

let h: RestHarness;
let peerA: Peer;
let peerB: Peer;
let routers: { id: string };
let clients: { id: string };

beforeAll(async () => {
	h = await RestHarness.create();
	const key = await h.createSetupKey({ name: "routing" });
	peerA = await h.registerPeer(key.key, "router-a");
	peerB = await h.registerPeer(key.key, "router-b");
	routers = await h.createGroup("routers", [peerA.id, peerB.id]);
	clients = await h.createGroup("clients", []);
});
afterAll(async () => {
	await h.close();
});

const route = (over: Record<string, unknown> = {}) => ({
	description: "office",
	network_id: "office",
	enabled: true,
	peer: peerA.id,
	network: "198.18.10.7/24",
	metric: 10,
	masquerade: true,
	groups: [clients.id],
	...over,
});

async function events(code: string): Promise<number> {
	return (await h.store.listEvents(h.account.id, 1000)).filter((e) => e.activityCode === code)
		.length;
}

describe("/api/routes", () => {
	it("creates with the network canonical, answers NetBird's fields, lists, updates and deletes, each audited and pushed", async () => {
		const pushes = h.sink.accessChanges.length;
		const created = await h.request("POST", "/api/routes", { body: route() });
		expect(created.status, created.text).toBe(200);
		expect(created.json).toEqual({
			id: expect.any(String),
			network_type: "IPv4",
			description: "office",
			network_id: "office",
			enabled: true,
			peer: peerA.id,
			network: "198.18.10.0/24",
			metric: 10,
			masquerade: true,
			groups: [clients.id],
			keep_route: false,
			access_control_groups: [],
			skip_auto_apply: false,
		});
		const id = created.json.id;
		expect(h.sink.accessChanges.length).toBe(pushes + 1);
		expect((await h.request("GET", `/api/routes/${id}`)).json).toEqual(created.json);
		expect((await h.request("GET", "/api/routes")).json).toContainEqual(created.json);

		// A second router for the same network (high availability), by group.
		const ha = await h.request("POST", "/api/routes", {
			body: route({ peer: undefined, peer_groups: [routers.id], metric: 20 }),
		});
		expect(ha.status, ha.text).toBe(200);
		expect(ha.json.peer).toBeUndefined();
		expect(ha.json.peer_groups).toEqual([routers.id]);

		const updated = await h.request("PUT", `/api/routes/${id}`, {
			body: route({ metric: 5, access_control_groups: [clients.id], keep_route: true }),
		});
		expect(updated.status, updated.text).toBe(200);
		expect(updated.json).toMatchObject({
			metric: 5,
			keep_route: true,
			access_control_groups: [clients.id],
		});
		expect(await h.store.getRoute(h.account.id, id)).toMatchObject({ metric: 5, keepRoute: true });

		expect((await h.request("DELETE", `/api/routes/${id}`)).status).toBe(200);
		expect((await h.request("DELETE", `/api/routes/${ha.json.id}`)).status).toBe(200);
		expect((await h.request("GET", `/api/routes/${id}`)).status).toBe(404);
		expect(await events("route.add")).toBeGreaterThanOrEqual(2);
		expect(await events("route.update")).toBeGreaterThanOrEqual(1);
		expect(await events("route.delete")).toBeGreaterThanOrEqual(2);
		expect(h.sink.accessChanges.length).toBe(pushes + 5);
	});

	it("several exit nodes may coexist; skip_auto_apply is kept for them", async () => {
		const made: string[] = [];
		for (const [networkId, peer] of [
			["exit-a", peerA.id],
			["exit-b", peerB.id],
		]) {
			const res = await h.request("POST", "/api/routes", {
				body: route({ network_id: networkId, peer, network: "0.0.0.0/0", skip_auto_apply: true }),
			});
			expect(res.status, res.text).toBe(200);
			expect(res.json.skip_auto_apply).toBe(true);
			made.push(res.json.id);
		}
		for (const id of made) await h.request("DELETE", `/api/routes/${id}`);
	});

	it("a group used by a route cannot be deleted; a peer deleted disables the routes it served alone", async () => {
		const key = await h.createSetupKey({ name: "doomed" });
		const doomed = await h.registerPeer(key.key, "doomed");
		const receivers = await h.createGroup("receivers", []);
		const res = await h.request("POST", "/api/routes", {
			body: route({
				network_id: "doomed",
				network: "198.18.40.0/24",
				peer: doomed.id,
				groups: [receivers.id],
			}),
		});
		expect(res.status, res.text).toBe(200);
		const refused = await h.request("DELETE", `/api/groups/${receivers.id}`);
		expect(refused.status).toBe(422);
		expect(refused.json.message).toMatch(/still used by route "doomed"/);

		expect((await h.request("DELETE", `/api/peers/${doomed.id}`)).status).toBe(200);
		const after = await h.request("GET", `/api/routes/${res.json.id}`);
		expect(after.json).toMatchObject({ enabled: false, peer_groups: [] });
		expect(after.json.peer).toBeUndefined();
		// A disabled route without a routing peer gets one back by a PUT.
		const fixed = await h.request("PUT", `/api/routes/${res.json.id}`, {
			body: route({
				network_id: "doomed",
				network: "198.18.40.0/24",
				peer: peerB.id,
				groups: [receivers.id],
			}),
		});
		expect(fixed.status, fixed.text).toBe(200);
		await h.request("DELETE", `/api/routes/${res.json.id}`);
		expect((await h.request("DELETE", `/api/groups/${receivers.id}`)).status).toBe(200);
	});

	it("another account's routes are not found, and it cannot name our peers", async () => {
		const res = await h.request("POST", "/api/routes", {
			body: route({ network_id: "scoped", network: "198.18.50.0/24" }),
		});
		const other = await h.addAccount();
		expect(
			(await h.request("GET", `/api/routes/${res.json.id}`, { token: other.owner.token })).status,
		).toBe(404);
		expect((await h.request("GET", "/api/routes", { token: other.owner.token })).json).toEqual([]);
		await h.request("DELETE", `/api/routes/${res.json.id}`);
	});
});

describe("/api/networks", () => {
	it("a network with resources and routers: NetBird's shapes, counts, policies, per-network and account-wide lists, deleted together", async () => {
		const resourceGroup = await h.createGroup("databases", []);
		const net = await h.request("POST", "/api/networks", { body: { name: "office" } });
		expect(net.status, net.text).toBe(200);
		expect(net.json).toEqual({
			id: expect.any(String),
			name: "office",
			description: "",
			routers: [],
			resources: [],
			policies: [],
			routing_peers_count: 0,
		});
		const base = `/api/networks/${net.json.id}`;
		const host = await h.request("POST", `${base}/resources`, {
			body: { name: "db", address: "198.18.60.5", enabled: true, groups: [resourceGroup.id] },
		});
		expect(host.status, host.text).toBe(200);
		expect(host.json).toEqual({
			id: expect.any(String),
			type: "host",
			name: "db",
			description: "",
			address: "198.18.60.5",
			enabled: true,
			groups: [{ id: resourceGroup.id, name: "databases", peers_count: 0, resources_count: 0 }],
		});
		const subnet = await h.request("POST", `${base}/resources`, {
			body: { name: "lan", address: "198.18.61.9/24", enabled: true },
		});
		expect(subnet.json.type).toBe("subnet");
		const byPeer = await h.request("POST", `${base}/routers`, {
			body: { peer: peerA.id, metric: 10, masquerade: true, enabled: true },
		});
		expect(byPeer.json).toEqual({
			id: expect.any(String),
			peer: peerA.id,
			metric: 10,
			masquerade: true,
			enabled: true,
		});
		const byGroup = await h.request("POST", `${base}/routers`, {
			body: { peer_groups: [routers.id], metric: 20, masquerade: false, enabled: true },
		});
		expect(byGroup.status, byGroup.text).toBe(200);
		const policy = await h.createPolicy("to databases", [
			{ sources: [clients.id], destinations: [resourceGroup.id] },
		]);

		const got = (await h.request("GET", base)).json;
		expect(got.routers).toEqual([byPeer.json.id, byGroup.json.id]);
		expect(got.resources).toEqual([host.json.id, subnet.json.id]);
		expect(got.policies).toEqual([policy.id]);
		expect(got.routing_peers_count).toBe(2);
		expect(
			(await h.request("GET", `${base}/resources`)).json.map((r: { id: string }) => r.id),
		).toEqual([host.json.id, subnet.json.id]);
		expect((await h.request("GET", "/api/networks/routers")).json).toContainEqual(byGroup.json);
		expect((await h.request("GET", "/api/networks/resources")).json).toContainEqual(subnet.json);
		expect((await h.request("GET", `${base}/routers/${byGroup.json.id}`)).json).toEqual(
			byGroup.json,
		);

		// A resource addressed through another network is not found.
		const other = await h.request("POST", "/api/networks", { body: { name: "other" } });
		expect(
			(await h.request("GET", `/api/networks/${other.json.id}/resources/${host.json.id}`)).status,
		).toBe(404);
		expect(
			(
				await h.request("PUT", `/api/networks/${other.json.id}/routers/${byPeer.json.id}`, {
					body: { peer: peerA.id, metric: 1, masquerade: true, enabled: true },
				})
			).status,
		).toBe(404);

		// Groups in use by a resource or router are kept.
		expect((await h.request("DELETE", `/api/groups/${resourceGroup.id}`)).json.message).toMatch(
			/network resource "db"/,
		);
		await h.request("DELETE", `/api/policies/${policy.id}`);

		const pushes = h.sink.accessChanges.length;
		expect((await h.request("DELETE", base)).status).toBe(200);
		expect(h.sink.accessChanges.length).toBe(pushes + 1);
		expect((await h.request("GET", base)).status).toBe(404);
		expect(await h.store.getNetworkResource(h.account.id, host.json.id)).toBeUndefined();
		expect(await h.store.getNetworkRouter(h.account.id, byGroup.json.id)).toBeUndefined();
		expect(await events("network.resource.delete")).toBeGreaterThanOrEqual(2);
		expect(await events("network.router.delete")).toBeGreaterThanOrEqual(2);
		expect((await h.request("DELETE", `/api/groups/${resourceGroup.id}`)).status).toBe(200);
		await h.request("DELETE", `/api/networks/${other.json.id}`);
	});

	it("deleting a routing peer removes its routers, as NetBird does", async () => {
		const key = await h.createSetupKey({ name: "router peer" });
		const doomed = await h.registerPeer(key.key, "doomed-router");
		const net = await h.request("POST", "/api/networks", { body: { name: "branch" } });
		const router = await h.request("POST", `/api/networks/${net.json.id}/routers`, {
			body: { peer: doomed.id, metric: 10, masquerade: true, enabled: true },
		});
		expect(router.status, router.text).toBe(200);
		expect((await h.request("DELETE", `/api/peers/${doomed.id}`)).status).toBe(200);
		expect((await h.request("GET", `/api/networks/${net.json.id}`)).json.routers).toEqual([]);
		await h.request("DELETE", `/api/networks/${net.json.id}`);
	});
});
