// Access policies end to end: an admin writes policies through the REST API,
// management turns them into each peer's map and firewall rules, and the
// agents enforce them in nftables. Real management, signal and agents
// (daemon + CLI, wireguard-go) in lab hosts.
import { type Host, Lab, type Lan, labSkipReason } from "@starling/lab";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
	AgentHost,
	ControlPlane,
	NODE,
	type StatusJson,
	waitFor as waitForEvery,
} from "./fixture.js";

/** Polls every 100 ms: the test times how fast a policy change takes effect. */
const waitFor = <T>(what: string, probe: () => Promise<T | undefined>, ms = 15_000) =>
	waitForEvery(what, probe, ms, 100);
const TCP_PORTS = [5432, 5433, 22];

const SERVER = `
const net = require("net");
let n = 0;
for (const p of ${JSON.stringify(TCP_PORTS)})
	net.createServer((s) => { s.on("data", (d) => s.write(d)); s.on("error", () => {}); })
		.listen(p, "0.0.0.0", () => { if (++n === ${TCP_PORTS.length}) console.log("listening"); });
`;

/** Prints "open" when a TCP connection to host:port echoes, else "closed …" or "timeout". */
const tcpCheck = (address: string, port: number, timeoutMs: number) => `
const s = require("net").connect(${port}, ${JSON.stringify(address)});
setTimeout(() => { console.log("timeout"); process.exit(0); }, ${timeoutMs});
s.on("connect", () => s.write("x"));
s.on("data", () => { console.log("open"); process.exit(0); });
s.on("error", (e) => { console.log("closed " + e.code); process.exit(0); });
`;

interface PolicyJson {
	id: string;
	name: string;
	description: string;
	enabled: boolean;
	rules: {
		id: string;
		name: string;
		description: string;
		enabled: boolean;
		action: string;
		bidirectional: boolean;
		protocol: string;
		ports?: string[];
		port_ranges?: { start: number; end: number }[];
		sources: { id: string }[];
		destinations: { id: string }[];
	}[];
}

describe.skipIf(labSkipReason)("access policies, end to end", () => {
	let lab: Lab;
	let lan: Lan;
	let control: ControlPlane;
	const agents = new Map<string, { agent: AgentHost; host: Host; ip: string; key: string }>();
	const api = (method: string, path: string, body?: unknown) => control.api(method, path, body);

	async function tcp(from: string, to: string, port: number, timeoutMs = 700): Promise<string> {
		const r = await agents.get(from)!.host.exec(NODE, ["-e", tcpCheck(to, port, timeoutMs)]);
		return r.stdout.trim();
	}

	const ping = (from: string, to: string) =>
		agents.get(from)!.host.ping(to, { count: 1, timeoutSeconds: 1 });

	function ruleBody(
		rule: PolicyJson["rules"][number],
		change: Partial<Record<string, unknown>> = {},
	) {
		return {
			id: rule.id,
			name: rule.name,
			description: rule.description,
			enabled: rule.enabled,
			action: rule.action,
			bidirectional: rule.bidirectional,
			protocol: rule.protocol,
			ports: rule.ports ?? [],
			port_ranges: rule.port_ranges ?? [],
			sources: rule.sources.map((g) => g.id),
			destinations: rule.destinations.map((g) => g.id),
			...change,
		};
	}

	beforeAll(async () => {
		lab = await Lab.create("fwpol");
		lan = await lab.lan("lan", "198.18.62.0/24");
		control = new ControlPlane(await lab.host("ctl", { lan }));
		await control.start();
		const setupKey = await control.createSetupKey("policy");
		for (const name of ["web", "db", "other"]) {
			const agent = new AgentHost(await lab.host(name, { lan }));
			await agent.startDaemon();
			const server = agent.host.spawn(NODE, ["-e", SERVER], { name: `server-${name}` });
			await server.waitForOutput(/listening/, 10_000);
			const up = await agent.starling([
				"up",
				"--management-url",
				control.url,
				"--setup-key",
				setupKey,
			]);
			expect(up.exitCode, up.stderr).toBe(0);
			const s = await agent.status();
			agents.set(name, {
				agent,
				host: agent.host,
				ip: s.overlay_address.split("/")[0]!,
				key: s.wg_public_key,
			});
		}
	}, 90_000);

	afterEach((context) => {
		if (context.task.result?.state !== "fail") return;
		console.error(lab.logs());
	});

	afterAll(async () => {
		await lab?.destroy();
	}, 30_000);

	it("web may reach db on TCP 5432 only; db reaches web not at all; a change takes effect within 2 s without new WireGuard sessions", async () => {
		const web = agents.get("web")!;
		const db = agents.get("db")!;
		const other = agents.get("other")!;
		// The Default policy (All to All): everyone reaches everyone.
		await waitFor("web pings db", async () => ((await ping("web", db.ip)) ? true : undefined));
		await waitFor("db pings other", async () => ((await ping("db", other.ip)) ? true : undefined));
		expect((await db.agent.status()).firewall).toMatch(/^enforcing \(\d+ rules?\)$/);

		const peers = (await api("GET", "/api/peers")).json as { id: string; ip: string }[];
		const idOf = (ip: string) => peers.find((p) => p.ip === ip)!.id;
		const webGroup = await api("POST", "/api/groups", { name: "web", peers: [idOf(web.ip)] });
		const dbGroup = await api("POST", "/api/groups", { name: "db", peers: [idOf(db.ip)] });
		expect(webGroup.status, JSON.stringify(webGroup.json)).toBe(200);
		expect(dbGroup.status, JSON.stringify(dbGroup.json)).toBe(200);
		const webId = (webGroup.json as { id: string }).id;
		const dbId = (dbGroup.json as { id: string }).id;
		const created = await api("POST", "/api/policies", {
			name: "web to db",
			description: "",
			enabled: true,
			rules: [
				{
					name: "postgres",
					description: "",
					enabled: true,
					action: "accept",
					bidirectional: false,
					protocol: "tcp",
					ports: ["5432"],
					port_ranges: [],
					sources: [webId],
					destinations: [dbId],
				},
			],
		});
		expect(created.status, JSON.stringify(created.json)).toBe(200);
		const policy = created.json as PolicyJson;
		const all = (await api("GET", "/api/policies")).json as PolicyJson[];
		const defaultPolicy = all.find((p) => p.name === "Default")!;
		const disabled = await api("PUT", `/api/policies/${defaultPolicy.id}`, {
			name: defaultPolicy.name,
			description: defaultPolicy.description,
			enabled: false,
			rules: defaultPolicy.rules.map((r) => ruleBody(r)),
		});
		expect(disabled.status, JSON.stringify(disabled.json)).toBe(200);

		// Peers in no rule disappear from each other's status.
		await waitFor("other gone from web and db", async () => {
			const [sw, sd, so] = await Promise.all([
				web.agent.status(),
				db.agent.status(),
				other.agent.status(),
			]);
			const names = (s: StatusJson) => (s.peers ?? []).map((p) => p.overlay_ip).sort();
			return JSON.stringify(names(sw)) === JSON.stringify([db.ip]) &&
				JSON.stringify(names(sd)) === JSON.stringify([web.ip]) &&
				so.peers_total === 0
				? true
				: undefined;
		});
		const dbStatus = await db.agent.status();
		expect(dbStatus.firewall).toBe("enforcing (1 rule)");
		expect((await web.agent.status()).firewall).toBe("enforcing (0 rules)");

		expect(await tcp("web", db.ip, 5432)).toBe("open");
		expect(await tcp("web", db.ip, 22)).toBe("timeout");
		expect(await tcp("web", db.ip, 5433)).toBe("timeout");
		expect(await ping("web", db.ip)).toBe(false);
		expect(await tcp("db", web.ip, 5432)).toBe("timeout");
		expect(await tcp("db", web.ip, 22)).toBe("timeout");
		expect(await ping("db", web.ip)).toBe(false);

		// Change the policy: 5433 instead of 5432. WireGuard sessions stay.
		const wgBefore = (await db.host.exec("wg", ["show", "starling0", "dump"])).stdout;
		const handshakeOf = (dump: string, key: string) =>
			dump
				.split("\n")
				.find((l) => l.startsWith(`${key}\t`))
				?.split("\t")[4];
		const changedAt = Date.now();
		const changed = await api("PUT", `/api/policies/${policy.id}`, {
			name: policy.name,
			description: policy.description,
			enabled: true,
			rules: policy.rules.map((r) => ruleBody(r, { ports: ["5433"] })),
		});
		expect(changed.status, JSON.stringify(changed.json)).toBe(200);
		await waitFor(
			"5433 open",
			async () => ((await tcp("web", db.ip, 5433, 300)) === "open" ? true : undefined),
			5_000,
		);
		const tookMs = Date.now() - changedAt;
		console.log(`policy change to effect (incl. one probe of up to 300 ms): ${tookMs} ms`);
		expect(tookMs).toBeLessThan(2_000);
		expect(await tcp("web", db.ip, 5432)).toBe("timeout");
		const wgAfter = (await db.host.exec("wg", ["show", "starling0", "dump"])).stdout;
		expect(handshakeOf(wgAfter, web.key)).toBe(handshakeOf(wgBefore, web.key));
	}, 90_000);
});
