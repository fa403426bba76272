import type { NetworkMap } from "@starling/proto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { firewallAllows } from "../src/core/policy.js";
import type { RunningManagement } from "../src/server.js";
import {
	meta,
	newAgent,
	startSync,
	startTestManagement,
	type TestAgent,
	tempDir,
} from "./helpers.js";

// Access policies end to end over real gRPC and REST: what each agent's map
// holds, and that a change made through the REST API reaches the agents it
// concerns within 2 s, as deltas, and no other agent.

let dir: ReturnType<typeof tempDir>;
let m: RunningManagement;
const agents: TestAgent[] = [];

beforeEach(async () => {
	dir = tempDir();
	m = await startTestManagement(dir.path);
});

afterEach(async () => {
	for (const a of agents.splice(0)) a.close();
	await m.close();
	dir.remove();
});

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

const names = (map: NetworkMap) => map.peers.map((p) => p.name).sort();

async function registered(name: string, setupKey: string) {
	const agent = newAgent(m.port);
	agents.push(agent);
	const login = await agent.client.login(setupKey, meta(name));
	await startSync(agent);
	return { agent, ip: login.self!.address.split("/")[0]! };
}

/** Sets a policy's enabled flag through the REST API, sending it back as read. */
async function setEnabled(policyId: string, enabled: boolean, ports?: string[]) {
	const p = await api("GET", `/api/policies/${policyId}`);
	await api("PUT", `/api/policies/${policyId}`, {
		name: p.name,
		enabled,
		rules: p.rules.map((r: Record<string, unknown>) => ({
			...r,
			ports: ports ?? r.ports,
			sources: (r.sources as { id: string }[]).map((g) => g.id),
			destinations: (r.destinations as { id: string }[]).map((g) => g.id),
		})),
	});
}

describe("network maps from access policies", () => {
	it("web to db on TCP 5432: the web peer sees db, db admits web's /32 on 5432, an unrelated peer sees neither; changes arrive within 2 s as deltas, and only where they apply", async () => {
		const web = await api("POST", "/api/groups", { name: "web" });
		const db = await api("POST", "/api/groups", { name: "db" });
		const keyFor = async (groups: string[]) =>
			(await api("POST", "/api/setup-keys", { name: "k", type: "reusable", auto_groups: groups }))
				.key as string;
		const w = await registered("web-1", await keyFor([web.id]));
		const d = await registered("db-1", await keyFor([db.id]));
		const o = await registered("other", await keyFor([]));
		// Under the Default policy everyone sees everyone.
		for (const a of [w, d, o]) await a.agent.waitForMap((x) => x.peers.length === 2);
		expect(w.agent.maps.at(-1)!.firewallEnforced).toBe(true);

		const policy = await api("POST", "/api/policies", {
			name: "web to db",
			enabled: true,
			rules: [
				{
					name: "postgres",
					enabled: true,
					action: "accept",
					bidirectional: false,
					protocol: "tcp",
					ports: ["5432"],
					sources: [web.id],
					destinations: [db.id],
				},
			],
		});
		const defaultPolicy = (await api("GET", "/api/policies")).find(
			(p: { name: string }) => p.name === "Default",
		);
		await d.agent.waitForMap((x) => x.firewallRules.some((r) => r.policyId === policy.id), 2000);

		// Disable Default: peers that no rule connects disappear from each other's maps.
		const fullsBefore = m.hub.stats().fullMapsSent;
		let t0 = Date.now();
		await setEnabled(defaultPolicy.id, false);
		const [mw, md, mo] = await Promise.all([
			w.agent.waitForMap((x) => names(x).join() === "db-1", 2000),
			d.agent.waitForMap(
				(x) =>
					names(x).join() === "web-1" && !x.firewallRules.some((r) => r.source.endsWith("/16")),
				2000,
			),
			o.agent.waitForMap((x) => x.peers.length === 0, 2000),
		]);
		expect(Date.now() - t0).toBeLessThan(2000);
		expect(m.hub.stats().fullMapsSent).toBe(fullsBefore);
		expect(mw.firewallRules).toEqual([]);
		expect(md.firewallRules).toEqual([
			{
				source: `${w.ip}/32`,
				protocol: "tcp",
				ports: [{ start: 5432, end: 5432 }],
				policyId: policy.id,
			},
		]);
		expect(firewallAllows(md.firewallRules, w.ip, "tcp", 5432)).toBe(true);
		expect(firewallAllows(md.firewallRules, w.ip, "tcp", 22)).toBe(false);
		expect(firewallAllows(md.firewallRules, w.ip, "icmp", 0)).toBe(false);
		expect(firewallAllows(md.firewallRules, o.ip, "tcp", 5432)).toBe(false);
		expect(mo.firewallRules).toEqual([]);
		await new Promise((r) => setTimeout(r, 200));

		// Change the port: only db's firewall rules change; web and other get nothing.
		const counts = [w, d, o].map((a) => a.agent.maps.length);
		t0 = Date.now();
		await setEnabled(policy.id, true, ["5433"]);
		const changed = await d.agent.waitForMap(
			(x) => x.firewallRules[0]?.ports[0]?.start === 5433,
			2000,
		);
		expect(Date.now() - t0).toBeLessThan(2000);
		expect(names(changed)).toEqual(["web-1"]);
		await new Promise((r) => setTimeout(r, 300));
		expect(w.agent.maps.length).toBe(counts[0]);
		expect(o.agent.maps.length).toBe(counts[2]);
		expect(d.agent.maps.length).toBe(counts[1]! + 1);
		expect(m.hub.stats().fullMapsSent).toBe(fullsBefore);

		// Put other in web through the group's peer list: it now sees db, and db admits it.
		const otherPeer = (await api("GET", "/api/peers")).find(
			(p: { name: string }) => p.name === "other",
		);
		const webPeer = (await api("GET", "/api/peers")).find(
			(p: { name: string }) => p.name === "web-1",
		);
		t0 = Date.now();
		await api("PUT", `/api/groups/${web.id}`, { name: "web", peers: [webPeer.id, otherPeer.id] });
		await Promise.all([
			o.agent.waitForMap((x) => names(x).join() === "db-1", 2000),
			d.agent.waitForMap((x) => x.firewallRules.some((r) => r.source === `${o.ip}/32`), 2000),
		]);
		expect(Date.now() - t0).toBeLessThan(2000);
		expect(names(w.agent.maps.at(-1)!)).toEqual(["db-1"]);

		// A new web peer registering reaches db (peer and firewall rule) as one delta.
		const w2 = await registered("web-2", await keyFor([web.id]));
		await d.agent.waitForMap(
			(x) => names(x).includes("web-2") && x.firewallRules.some((r) => r.source === `${w2.ip}/32`),
			2000,
		);
		const mw2 = await w2.agent.waitForMap((x) => x.peers.length === 1, 2000);
		expect(names(mw2)).toEqual(["db-1"]);

		// Re-enable Default: everyone sees everyone again.
		await setEnabled(defaultPolicy.id, true);
		for (const a of [w, d, o, w2]) await a.agent.waitForMap((x) => x.peers.length === 3, 2000);
	});
});
