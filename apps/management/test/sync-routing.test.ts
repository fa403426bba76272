import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningManagement } from "../src/server.js";
import {
	accountIdOf,
	meta,
	newAgent,
	startSync,
	startTestManagement,
	type TestAgent,
	tempDir,
} from "./helpers.js";

// The sync hub holds the account's routing config beside its groups and
// policies: a change made through the REST API reaches what the hub holds
// (and so the maps it computes) within 2 s, over real gRPC and HTTP.

let dir: ReturnType<typeof tempDir>;
let m: RunningManagement;
let agent: TestAgent;
let accountId: string;
let peerId: string;

// biome-ignore lint/suspicious/noExplicitAny: JSON answers are inspected field by field
async function api(method: string, path: string, body?: unknown): Promise<any> {
	const res = await fetch(`http://127.0.0.1:${m.port}${path}`, {
		method,
		headers: {
			authorization: `Token ${m.bootstrap!.plainToken}`,
			...(body === undefined ? {} : { "content-type": "application/json" }),
		},
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	const json = await res.json();
	if (res.status !== 200)
		throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
	return json;
}

/** Polls `read` until `ok` holds, for at most 2 s; the last value read. */
async function within2s<T>(read: () => T, ok: (v: T) => boolean): Promise<T> {
	const deadline = Date.now() + 2000;
	let v = read();
	while (!ok(v) && Date.now() < deadline) {
		await new Promise((r) => setTimeout(r, 20));
		v = read();
	}
	return v;
}

beforeAll(async () => {
	dir = tempDir();
	m = await startTestManagement(dir.path);
	accountId = await accountIdOf(m);
	const key = (await api("POST", "/api/setup-keys", { name: "k", type: "reusable" })).key as string;
	agent = newAgent(m.port);
	await agent.client.login(key, meta("router"));
	await startSync(agent);
	peerId = (await api("GET", "/api/peers"))[0].id;
});
afterAll(async () => {
	agent.close();
	await m.close();
	dir.remove();
});

describe("the sync hub's routing config", () => {
	it("follows routes and networks created, changed and deleted through REST", async () => {
		const held = () => m.hub.heldRoutingConfig(accountId);
		expect(held()).toEqual({ routes: [], networks: [], networkResources: [], networkRouters: [] });
		const all = (await api("GET", "/api/groups")).find(
			(g: { name: string }) => g.name === "All",
		).id;
		const route = await api("POST", "/api/routes", {
			description: "lan",
			network_id: "lan",
			enabled: true,
			peer: peerId,
			network: "198.18.10.0/24",
			metric: 10,
			masquerade: true,
			groups: [all],
		});
		expect((await within2s(held, (c) => c?.routes.length === 1))?.routes[0]).toMatchObject({
			id: route.id,
			peerId,
			network: "198.18.10.0/24",
		});
		await api("PUT", `/api/routes/${route.id}`, {
			description: "lan",
			network_id: "lan",
			enabled: false,
			peer: peerId,
			network: "198.18.10.0/24",
			metric: 10,
			masquerade: true,
			groups: [all],
		});
		expect((await within2s(held, (c) => c?.routes[0]?.enabled === false))?.routes[0]?.enabled).toBe(
			false,
		);

		const net = await api("POST", "/api/networks", { name: "office" });
		await api("POST", `/api/networks/${net.id}/resources`, {
			name: "db",
			address: "198.18.20.5",
			enabled: true,
			groups: [all],
		});
		await api("POST", `/api/networks/${net.id}/routers`, {
			peer: peerId,
			metric: 10,
			masquerade: true,
			enabled: true,
		});
		const withNetwork = await within2s(held, (c) => c?.networkRouters.length === 1);
		expect(withNetwork?.networks.map((n) => n.id)).toEqual([net.id]);
		expect(withNetwork?.networkResources[0]).toMatchObject({
			prefix: "198.18.20.5/32",
			type: "host",
		});

		await api("DELETE", `/api/networks/${net.id}`);
		await api("DELETE", `/api/routes/${route.id}`);
		expect(await within2s(held, (c) => c?.routes.length === 0 && c.networks.length === 0)).toEqual({
			routes: [],
			networks: [],
			networkResources: [],
			networkRouters: [],
		});
	});
});
