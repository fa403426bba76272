// Access policies end to end: an admin writes policies through the REST API,
// management turns them into each peer's map and firewall rules, and the
// agents enforce them in nftables. Real management, signal and agents
// (daemon + CLI, wireguard-go) in lab hosts.
import { resolve } from "node:path";
import { type Host, Lab, type LabProcess, type Lan, labSkipReason } from "@starling/lab";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

const ROOT = resolve(__dirname, "../../..");
const CLI = resolve(ROOT, "apps/agent/dist/cli/main.js");
const MANAGEMENT = resolve(ROOT, "apps/management/dist/main.js");
const SIGNAL = resolve(ROOT, "apps/signal/dist/main.js");
const NODE = process.execPath;
const AGENT_ENV = {
	STARLING_DATA_DIR: "/var/lib/starling",
	STARLING_SOCKET: "/var/lib/starling/starling.sock",
};
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

if (labSkipReason) console.warn(`skipping the access policy end-to-end tests: ${labSkipReason}`);

interface PeerJson {
	name: string;
	overlay_ip: string;
	wg_public_key: string;
}
interface StatusJson {
	state: string;
	overlay_address: string;
	wg_public_key: string;
	firewall: string;
	peers_total: number;
	peers?: PeerJson[];
}
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
	let ctl: Host;
	let url = "";
	let token = "";
	const agents = new Map<string, { host: Host; daemon: LabProcess; ip: string; key: string }>();

	async function api(method: string, path: string, body?: unknown) {
		const script = `fetch(${JSON.stringify(`${url}${path}`)}, {method: ${JSON.stringify(method)}, headers: {authorization: "Token " + ${JSON.stringify(token)}, "content-type": "application/json"}, body: ${body === undefined ? "undefined" : JSON.stringify(JSON.stringify(body))}}).then(async r => console.log(JSON.stringify({status: r.status, json: await r.json().catch(() => null)})))`;
		const { stdout } = await ctl.exec(NODE, ["-e", script]);
		return JSON.parse(stdout) as { status: number; json: unknown };
	}

	function starling(host: Host, args: string[]) {
		return host.exec(NODE, [CLI, ...args], {
			env: AGENT_ENV,
			allowFailure: true,
			timeoutMs: 60_000,
		});
	}

	async function status(host: Host): Promise<StatusJson> {
		const r = await starling(host, ["status", "--json", "--detail"]);
		expect(r.exitCode, r.stderr).toBe(0);
		return JSON.parse(r.stdout) as StatusJson;
	}

	async function tcp(from: string, to: string, port: number, timeoutMs = 700): Promise<string> {
		const r = await agents.get(from)!.host.exec(NODE, ["-e", tcpCheck(to, port, timeoutMs)]);
		return r.stdout.trim();
	}

	const ping = (from: string, to: string) =>
		agents.get(from)!.host.ping(to, { count: 1, timeoutSeconds: 1 });

	async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 15_000) {
		const deadline = Date.now() + ms;
		let last: unknown;
		while (Date.now() < deadline) {
			try {
				const v = await probe();
				if (v !== undefined) return v;
			} catch (err) {
				last = err;
			}
			await new Promise((r) => setTimeout(r, 100));
		}
		throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
	}

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
		ctl = await lab.host("ctl", { lan });
		const signal = ctl.spawn(NODE, [SIGNAL], {
			name: "signal",
			env: { STARLING_SIGNAL_LISTEN: `${ctl.address}:10000` },
		});
		await signal.waitForOutput(/listening|serving/i, 10_000);
		const management = ctl.spawn(NODE, [MANAGEMENT], {
			name: "management",
			env: {
				STARLING_DATA_DIR: "/var/lib/starling/management",
				STARLING_MANAGEMENT_LISTEN: `${ctl.address}:33073`,
				STARLING_SIGNAL_URL: `http://${ctl.address}:10000`,
				STARLING_ADMIN_TOKEN_FILE: "/var/lib/starling/admin-token",
				STARLING_SYNC_FLUSH_MS: "20",
			},
		});
		await management.waitForOutput(/management is serving/, 15_000);
		url = `http://${ctl.address}:33073`;
		token = (await ctl.exec("cat", ["/var/lib/starling/admin-token"])).stdout.trim();
		const key = await api("POST", "/api/setup-keys", {
			name: "policy",
			type: "reusable",
			expires_in: 3600,
			auto_groups: [],
			usage_limit: 0,
		});
		expect(key.status).toBe(200);
		const setupKey = (key.json as { key: string }).key;
		for (const name of ["web", "db", "other"]) {
			const host = await lab.host(name, { lan });
			const daemon = host.spawn(NODE, [CLI, "service", "run"], {
				name: `agent-${name}`,
				env: AGENT_ENV,
			});
			await daemon.waitForOutput(/daemon listening/, 10_000);
			const server = host.spawn(NODE, ["-e", SERVER], { name: `server-${name}` });
			await server.waitForOutput(/listening/, 10_000);
			const up = await starling(host, ["up", "--management-url", url, "--setup-key", setupKey]);
			expect(up.exitCode, up.stderr).toBe(0);
			const s = await status(host);
			agents.set(name, {
				host,
				daemon,
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
		expect((await status(db.host)).firewall).toMatch(/^enforcing \(\d+ rules?\)$/);

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
				status(web.host),
				status(db.host),
				status(other.host),
			]);
			const names = (s: StatusJson) => (s.peers ?? []).map((p) => p.overlay_ip).sort();
			return JSON.stringify(names(sw)) === JSON.stringify([db.ip]) &&
				JSON.stringify(names(sd)) === JSON.stringify([web.ip]) &&
				so.peers_total === 0
				? true
				: undefined;
		});
		const dbStatus = await status(db.host);
		expect(dbStatus.firewall).toBe("enforcing (1 rule)");
		expect((await status(web.host)).firewall).toBe("enforcing (0 rules)");

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
