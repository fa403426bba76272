// Helpers to run a control plane (management + signal) and Starling agents in
// a network lab (@starling/lab): shared by the overlay-* benchmarks and by
// scripts/demo-overlay.mjs (which imports the compiled bench/dist/lib-lab.js).
// Everything runs inside lab namespaces on 198.18.0.0/15; nothing touches the
// root namespace.
import { readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { type Host, Lab, type LabProcess, type Lan, labSkipReason } from "@starling/lab";
import { repoRoot } from "./lib-control-plane.js";

export type { Host, LabProcess, Lan };
export { Lab, labSkipReason };

export const NODE = process.execPath;
export const CLI = join(repoRoot, "apps/agent/dist/cli/main.js");
export const MANAGEMENT = join(repoRoot, "apps/management/dist/main.js");
export const SIGNAL = join(repoRoot, "apps/signal/dist/main.js");
/** The agent's defaults; inside a lab host /var/lib/starling is the host's own state directory. */
export const AGENT_ENV = {
	STARLING_DATA_DIR: "/var/lib/starling",
	STARLING_SOCKET: "/var/lib/starling/starling.sock",
};
export const MANAGEMENT_PORT = 33073;
export const SIGNAL_PORT = 10000;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` until it returns something other than undefined. */
export async function waitFor<T>(
	what: string,
	probe: () => Promise<T | undefined>,
	timeoutMs = 20_000,
	intervalMs = 250,
): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	let last: unknown;
	while (Date.now() < deadline) {
		try {
			const v = await probe();
			if (v !== undefined) return v;
		} catch (err) {
			last = err;
		}
		await sleep(intervalMs);
	}
	throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

export interface LabControlPlane {
	host: Host;
	management: LabProcess;
	signal: LabProcess;
	/** Management URL as the agents use it. */
	url: string;
	adminToken: string;
	/** A reusable setup key. */
	setupKey: string;
	/** Calls the REST API from inside the control host (we are outside the lab). */
	api(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }>;
}

/** Starts signal and management in `host` and creates a reusable setup key. */
export async function startLabControlPlane(host: Host): Promise<LabControlPlane> {
	const signal = host.spawn(NODE, [SIGNAL], {
		name: "signal",
		env: { STARLING_SIGNAL_LISTEN: `${host.address}:${SIGNAL_PORT}` },
	});
	const management = host.spawn(NODE, [MANAGEMENT], {
		name: "management",
		env: {
			STARLING_DATA_DIR: "/var/lib/starling/management",
			STARLING_MANAGEMENT_LISTEN: `${host.address}:${MANAGEMENT_PORT}`,
			STARLING_SIGNAL_URL: `http://${host.address}:${SIGNAL_PORT}`,
			STARLING_ADMIN_TOKEN_FILE: "/var/lib/starling/admin-token",
			STARLING_SYNC_FLUSH_MS: "20",
		},
	});
	await Promise.all([
		signal.waitForOutput(/listening|serving/i, 20_000),
		management.waitForOutput(/management is serving/, 20_000),
	]);
	const adminToken = readFileSync(join(host.stateDir, "admin-token"), "utf8").trim();
	const url = `http://${host.address}:${MANAGEMENT_PORT}`;
	const api: LabControlPlane["api"] = async (method, path, body) => {
		const script = `fetch(${JSON.stringify(`${url}${path}`)}, {method: ${JSON.stringify(method)}, headers: {authorization: "Token " + ${JSON.stringify(adminToken)}, "content-type": "application/json"}, body: ${body === undefined ? "undefined" : JSON.stringify(JSON.stringify(body))}}).then(async r => console.log(JSON.stringify({status: r.status, json: await r.json()})))`;
		const { stdout } = await host.exec(NODE, ["-e", script]);
		return JSON.parse(stdout) as { status: number; json: unknown };
	};
	const key = await api("POST", "/api/setup-keys", {
		name: "lab",
		type: "reusable",
		expires_in: 86_400,
		auto_groups: [],
		usage_limit: 0,
	});
	if (key.status !== 200) throw new Error(`POST /api/setup-keys: ${JSON.stringify(key)}`);
	const setupKey = (key.json as { key: string }).key;
	return { host, management, signal, url, adminToken, setupKey, api };
}

/** `starling status --json --detail` (apps/agent/README.md). */
export interface StatusJson {
	state: string;
	fqdn: string;
	wg_public_key: string;
	overlay_address: string;
	interface_name: string;
	interface_type: string;
	peers_connected: number;
	peers_total: number;
	management: { connected: boolean; url: string };
	signal: { connected: boolean; url: string };
	peers?: {
		name: string;
		overlay_ip: string;
		connection_state: string;
		path_type: string;
		local_endpoint: string;
		remote_endpoint: string;
		last_handshake: string | null;
		latency_ms: number;
	}[];
}

export interface CliResult {
	stdout: string;
	stderr: string;
	exitCode: number;
}

/** One agent: a lab host running `starling service run`. */
export class LabAgent {
	constructor(
		readonly host: Host,
		public daemon: LabProcess,
	) {}

	get name(): string {
		return this.host.name;
	}

	/** The daemon's pid (host.spawn runs nsenter, which execs node: this is the daemon itself). */
	get pid(): number {
		return this.daemon.pid;
	}

	cli(args: string[], timeoutMs = 60_000): Promise<CliResult> {
		return this.host.exec(NODE, [CLI, ...args], {
			env: AGENT_ENV,
			allowFailure: true,
			timeoutMs,
		});
	}

	async up(ctl?: LabControlPlane): Promise<CliResult> {
		const args = ctl ? ["up", "--management-url", ctl.url, "--setup-key", ctl.setupKey] : ["up"];
		const r = await this.cli(args);
		if (r.exitCode !== 0) throw new Error(`${this.name}: starling up failed: ${r.stderr.trim()}`);
		return r;
	}

	async down(): Promise<void> {
		const r = await this.cli(["down"]);
		if (r.exitCode !== 0) throw new Error(`${this.name}: starling down failed: ${r.stderr.trim()}`);
	}

	async status(): Promise<StatusJson> {
		const r = await this.cli(["status", "--json", "--detail"]);
		if (r.exitCode !== 0) throw new Error(`${this.name}: starling status: ${r.stderr.trim()}`);
		return JSON.parse(r.stdout) as StatusJson;
	}

	/** The overlay address without its prefix length. */
	async overlayIp(): Promise<string> {
		return (await this.status()).overlay_address.split("/")[0]!;
	}

	/** Waits until `starling status` shows `count` peers connected. */
	waitConnected(count: number, timeoutMs = 30_000): Promise<StatusJson> {
		return waitFor(
			`${this.name}: ${count} peers connected`,
			async () => {
				const s = await this.status();
				return s.peers_connected >= count ? s : undefined;
			},
			timeoutMs,
			200,
		);
	}
}

/** Makes a host on `lan` and starts the agent daemon in it (`env`: extra variables for it). */
export async function startAgent(
	lab: Lab,
	lan: Lan,
	name: string,
	env: Record<string, string> = {},
): Promise<LabAgent> {
	const host = await lab.host(name, { lan });
	const agent = new LabAgent(host, spawnDaemon(host, env));
	await agent.daemon.waitForOutput(/daemon listening/, 20_000);
	return agent;
}

export function spawnDaemon(host: Host, env: Record<string, string> = {}): LabProcess {
	return host.spawn(NODE, [CLI, "service", "run"], {
		name: `agent-${host.name}`,
		env: { ...AGENT_ENV, ...env },
	});
}

/** VmRSS of a process in bytes, or undefined if it is gone. */
export function rssBytes(pid: number): number | undefined {
	try {
		const status = readFileSync(`/proc/${pid}/status`, "utf8");
		const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
		return kb === undefined ? undefined : Number(kb) * 1024;
	} catch {
		return undefined;
	}
}

/** Resident bytes of `pid` that are pages of the node binary itself (shared by every node process). */
export function nodeBinaryRss(pid: number): number {
	let binary: string;
	try {
		binary = realpathSync(NODE);
	} catch {
		binary = NODE;
	}
	let inBinary = false;
	let kb = 0;
	try {
		for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
			const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
			if (mapping) inBinary = mapping[1] === binary;
			else if (inBinary && line.startsWith("Rss:")) kb += Number(/\d+/.exec(line)?.[0] ?? 0);
		}
	} catch {
		return 0;
	}
	return kb * 1024;
}

/** Direct children of `pid` (all threads' children lists). */
export function childPids(pid: number): number[] {
	const out: number[] = [];
	try {
		for (const line of readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(" ")) {
			if (line.trim()) out.push(Number(line));
		}
	} catch {
		// gone
	}
	return out;
}

/** The command line of a process, NUL-separated arguments joined by spaces. */
export function cmdline(pid: number): string {
	try {
		return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
	} catch {
		return "";
	}
}

/** One ping (-c 1 -W 1); the RTT in ms, or undefined when it got no answer. */
export async function pingOnce(
	host: Host,
	address: string,
	waitSeconds = 1,
): Promise<number | undefined> {
	const r = await host.exec("ping", ["-n", "-c", "1", "-W", String(waitSeconds), address], {
		allowFailure: true,
		timeoutMs: (waitSeconds + 5) * 1000,
	});
	if (r.exitCode !== 0) return undefined;
	const m = /time=([\d.]+) ms/.exec(r.stdout);
	return m ? Number(m[1]) : Number.NaN;
}

/** A /24 inside 100.64.0.0/10 that none of `used` (IPs or CIDRs) falls into; prefers 100.127.0.0/24. */
export function freeOverlay24(used: string[]): string {
	const toInt = (ip: string) =>
		ip.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0) >>> 0;
	const ranges = used.map((u) => {
		const [ip, len] = u.split("/");
		const prefix = len === undefined ? 32 : Number(len);
		const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
		const start = (toInt(ip!) & mask) >>> 0;
		return [start, start + 2 ** (32 - prefix) - 1] as const;
	});
	for (let second = 127; second >= 64; second--) {
		for (const third of [0, 255, 128]) {
			const start = toInt(`100.${second}.${third}.0`);
			const end = start + 255;
			if (ranges.every(([a, b]) => end < a || start > b)) return `100.${second}.${third}.0/24`;
		}
	}
	throw new Error("no free /24 in 100.64.0.0/10");
}
