// Helpers to run a control plane (management + signal) and Starling agents in
// a network lab (@starling/lab): shared by the overlay-* benchmarks and by
// scripts/demo-overlay.mjs (which imports the compiled bench/dist/lib-lab.js).
// Everything runs inside lab namespaces on 198.18.0.0/15; nothing touches the
// root namespace.
import { randomBytes } from "node:crypto";
import { readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import {
	type Host,
	Lab,
	type LabProcess,
	type Lan,
	labUnavailable,
	waitFor as labWaitFor,
	type NatKind,
	type NetworkKind,
	type Router,
	startStunServer,
	startWireguardGo,
} from "@starling/lab";
import { log, repoRoot } from "./lib-control-plane.js";

export type { Host, LabProcess, Lan, NatKind, NetworkKind, Router };
export { Lab, labUnavailable };

export const NODE = process.execPath;
export const CLI = join(repoRoot, "apps/agent/dist/cli/main.js");
export const MANAGEMENT = join(repoRoot, "apps/management/dist/main.js");
export const SIGNAL = join(repoRoot, "apps/signal/dist/main.js");
export const RELAY = join(repoRoot, "apps/relay/dist/main.js");
/** The agent's defaults; inside a lab host /var/lib/starling is the host's own state directory. */
export const AGENT_ENV = {
	STARLING_DATA_DIR: "/var/lib/starling",
	STARLING_SOCKET: "/var/lib/starling/starling.sock",
};
export const MANAGEMENT_PORT = 33073;
export const SIGNAL_PORT = 10000;
export const STUN_PORT = 3478;
export const RELAY_PORT = 33080;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Runs a lab benchmark and exits: when the lab cannot run here it prints `{bench, skipped}`;
 * otherwise it makes lab `labName`, runs `measure` in it and prints what that returns as ONE
 * JSON line, last on stdout. On failure it prints the lab's process logs (to stderr) and the
 * error, and exits 1. The lab is destroyed however the run ends.
 */
export function runLabBenchmark(
	bench: string,
	labName: string,
	measure: (lab: Lab) => Promise<object>,
): void {
	// Exit explicitly: the lab's teardown leaves a 5 s safety timer that would keep Node waiting.
	benchmarkInLab(bench, labName, measure).then(
		() => process.exit(0),
		(err) => {
			console.error(err);
			process.exit(1);
		},
	);
}

async function benchmarkInLab(
	bench: string,
	labName: string,
	measure: (lab: Lab) => Promise<object>,
): Promise<void> {
	if (labUnavailable) {
		log(`skipped: ${labUnavailable}`);
		process.stdout.write(`${JSON.stringify({ bench, skipped: labUnavailable })}\n`);
		return;
	}
	const lab = await Lab.create(labName);
	try {
		const result = await measure(lab);
		process.stdout.write(`${JSON.stringify(result)}\n`);
	} catch (err) {
		log(lab.logs());
		throw err;
	} finally {
		await lab.destroy();
	}
}

/** The lab's waitFor, with a longer default for benchmarks on loaded machines. */
export function waitFor<T>(
	what: string,
	probe: () => Promise<T | undefined>,
	timeoutMs = 20_000,
	intervalMs = 250,
): Promise<T> {
	return labWaitFor(what, probe, timeoutMs, intervalMs);
}

export interface LabControlPlane {
	host: Host;
	management: LabProcess;
	signal: LabProcess;
	/** coturn (`--stun-only`), when started with `stun: true`. */
	stun?: LabProcess;
	/** The relay, when started with `relay`. */
	relay?: LabProcess;
	/** The host the relay runs in (the control host or one of its own). */
	relayHost?: Host;
	/** Management URL as the agents use it. */
	url: string;
	/** `stun:<ctl address>:3478` when STUN runs. */
	stunUrl?: string;
	/** `ws://<relay host address>:33080` when the relay runs. */
	relayUrl?: string;
	adminToken: string;
	/** A reusable setup key. */
	setupKey: string;
	/** Calls the REST API from inside the control host (we are outside the lab). */
	api(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }>;
}

export interface LabControlPlaneOptions {
	/**
	 * Starts coturn as a plain STUN server in the control host and hands it to the agents
	 * (management's STARLING_STUN_URLS): without it agents gather no server-reflexive candidates
	 * and two NATed agents cannot go P2P.
	 */
	stun?: boolean;
	/**
	 * Starts the relay and hands it to the agents (STARLING_RELAY_URLS, with a fresh shared
	 * STARLING_RELAY_SECRET): `true` runs it in the control host, a Host runs it there (its own
	 * namespace).
	 */
	relay?: boolean | Host;
}

/** The relay (apps/relay) in `host`, listening on its lab address. */
export async function startRelay(host: Host, secret: string): Promise<LabProcess> {
	const relay = host.spawn(NODE, [RELAY], {
		name: "relay",
		env: {
			STARLING_RELAY_LISTEN: `${host.address}:${RELAY_PORT}`,
			STARLING_RELAY_SECRET: secret,
			STARLING_LOG_LEVEL: "warn",
		},
	});
	await waitFor(
		"relay listening",
		async () => {
			const r = await host.exec("ss", ["-ltn", `sport = :${RELAY_PORT}`]);
			return r.stdout.includes(`:${RELAY_PORT}`) ? true : undefined;
		},
		20_000,
		100,
	);
	return relay;
}

/** Starts signal and management in `host` (plus STUN and a relay if asked) and creates a reusable setup key. */
export async function startLabControlPlane(
	host: Host,
	options: LabControlPlaneOptions = {},
): Promise<LabControlPlane> {
	const stun = options.stun ? await startStunServer(host, { port: STUN_PORT }) : undefined;
	const stunUrl = stun ? `stun:${host.address}:${STUN_PORT}` : undefined;
	const relayHost =
		options.relay === true ? host : options.relay ? (options.relay as Host) : undefined;
	// A fresh secret per run, shared by management (which issues relay tokens) and the relay.
	const relaySecret = randomBytes(32).toString("base64");
	const relay = relayHost ? await startRelay(relayHost, relaySecret) : undefined;
	const relayUrl = relayHost ? `ws://${relayHost.address}:${RELAY_PORT}` : undefined;
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
			...(stunUrl ? { STARLING_STUN_URLS: stunUrl } : {}),
			...(relayUrl ? { STARLING_RELAY_URLS: relayUrl, STARLING_RELAY_SECRET: relaySecret } : {}),
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
	return {
		host,
		management,
		signal,
		stun,
		relay,
		relayHost,
		url,
		stunUrl,
		relayUrl,
		adminToken,
		setupKey,
		api,
	};
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
		local_candidate_type?: string;
		remote_candidate_type?: string;
		relay_url?: string;
		peer_online?: boolean;
		reason?: string;
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

	async up(ctl?: LabControlPlane, timeoutMs?: number): Promise<CliResult> {
		const args = ctl ? ["up", "--management-url", ctl.url, "--setup-key", ctl.setupKey] : ["up"];
		const r = await this.cli(args, timeoutMs);
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
	nodeFlags: readonly string[] = [],
): Promise<LabAgent> {
	return startAgentIn(await lab.host(name, { lan }), env, nodeFlags);
}

/** Starts the agent daemon in an existing host (e.g. one behind a NAT router). */
export async function startAgentIn(
	host: Host,
	env: Record<string, string> = {},
	nodeFlags: readonly string[] = [],
): Promise<LabAgent> {
	const agent = new LabAgent(host, spawnDaemon(host, env, nodeFlags));
	await agent.daemon.waitForOutput(/daemon listening/, 30_000);
	return agent;
}

/** `nodeFlags`: V8 flags before the script, e.g. the systemd unit's (daemon/node-flags.ts). */
export function spawnDaemon(
	host: Host,
	env: Record<string, string> = {},
	nodeFlags: readonly string[] = [],
): LabProcess {
	return host.spawn(NODE, [...nodeFlags, CLI, "service", "run"], {
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

const NAT_OF: Record<Exclude<NetworkKind, "public" | "double">, NatKind> = {
	eim: "eim",
	masq: "masquerade-only",
	symmetric: "symmetric",
	"udp-blocked": "udp-blocked",
};

export interface PlacedHost {
	host: Host;
	/** The routers between the host and the internet, innermost first. */
	routers: Router[];
	/** The address the internet sees the host's traffic come from. */
	publicAddress: string;
}

/**
 * Makes host `name` in a network of `kind` hanging off `internet`. Each router gets its own LAN
 * from `nextSubnet()` and is named `r-<name>` (the carrier-grade NAT of "double": `c-<name>`).
 */
export async function placeHost(
	lab: Lab,
	internet: Lan,
	kind: NetworkKind,
	name: string,
	nextSubnet: () => string,
): Promise<PlacedHost> {
	if (kind === "public") {
		const host = await lab.host(name, { lan: internet });
		return { host, routers: [], publicAddress: host.address };
	}
	if (kind === "double") {
		const isp = await lab.lan(`i-${name}`, nextSubnet());
		const cgnat = await lab.router(`c-${name}`, { wan: internet, lan: isp, nat: "eim" });
		const home = await lab.lan(`l-${name}`, nextSubnet());
		const router = await lab.router(`r-${name}`, {
			wan: isp,
			lan: home,
			nat: "eim",
			wanGateway: cgnat,
		});
		const host = await lab.host(name, { lan: home, gateway: router });
		return { host, routers: [router, cgnat], publicAddress: cgnat.wanAddress };
	}
	const lan = await lab.lan(`l-${name}`, nextSubnet());
	const router = await lab.router(`r-${name}`, { wan: internet, lan, nat: NAT_OF[kind] });
	const host = await lab.host(name, { lan, gateway: router });
	return { host, routers: [router], publicAddress: router.wanAddress };
}

/** A fresh WireGuard key pair made in `host`; the private key is written to /var/lib/starling/<ifname>.key. */
export async function wireguardKey(host: Host, ifname: string): Promise<string> {
	const priv = (await host.exec("wg", ["genkey"])).stdout.trim();
	const pub = (await host.exec("wg", ["pubkey"], { input: `${priv}\n` })).stdout.trim();
	await host.exec("sh", [
		"-c",
		`umask 077; printf '%s\\n' "$1" > /var/lib/starling/${ifname}.key`,
		"sh",
		priv,
	]);
	return pub;
}

/**
 * The addressing and keys of a hand-made wireguard-go pair beside the agents: `.1` and `.2`
 * of a /24 none of `used` falls into, and a fresh key per side (written for `ifname`).
 */
export async function baselinePair(
	sides: readonly [Host, Host],
	used: string[],
	ifname: string,
): Promise<{ subnet: string; addresses: [string, string]; publicKeys: [string, string] }> {
	const subnet = freeOverlay24(used);
	const prefix = subnet.split("/")[0]!.split(".").slice(0, 3).join(".");
	return {
		subnet,
		addresses: [`${prefix}.1`, `${prefix}.2`],
		publicKeys: [await wireguardKey(sides[0], ifname), await wireguardKey(sides[1], ifname)],
	};
}

export interface HandMadeWireguard {
	ifname: string;
	listenPort: number;
	/** This side's tunnel address (a /24 is added to the interface). */
	address: string;
	mtu: number;
	peer: {
		publicKey: string;
		endpoint: string;
		allowedIp: string;
		/** Seconds; both sides sending lets them punch through NATs. */
		persistentKeepalive?: number;
	};
}

/**
 * Plain wireguard-go set up by hand (no Starling): starts `wireguard-go -f <ifname>` in `host`
 * (the lab's private mount namespace gives it its own /run/wireguard) and configures it with
 * `wg set` and `ip`. The key must be in place (wireguardKey).
 */
export async function startHandMadeWireguard(
	host: Host,
	config: HandMadeWireguard,
): Promise<LabProcess> {
	// Ready on its own log line: polling `wg show` can delete the socket it is about to listen on.
	const proc = await startWireguardGo(host, config.ifname, { timeoutMs: 20_000 });
	await host.exec("wg", [
		"set",
		config.ifname,
		"listen-port",
		String(config.listenPort),
		"private-key",
		`/var/lib/starling/${config.ifname}.key`,
		"peer",
		config.peer.publicKey,
		"endpoint",
		config.peer.endpoint,
		"allowed-ips",
		`${config.peer.allowedIp}/32`,
		...(config.peer.persistentKeepalive
			? ["persistent-keepalive", String(config.peer.persistentKeepalive)]
			: []),
	]);
	await host.exec("ip", ["addr", "add", `${config.address}/24`, "dev", config.ifname]);
	await host.exec("ip", ["link", "set", config.ifname, "mtu", String(config.mtu), "up"]);
	return proc;
}

/** UDP receive-buffer drops in `host` so far (/proc/net/snmp RcvbufErrors). */
export async function udpRcvbufErrors(host: Pick<Host, "exec">): Promise<number> {
	const { stdout } = await host.exec("cat", ["/proc/net/snmp"]);
	const lines = stdout.split("\n").filter((l) => l.startsWith("Udp:"));
	const names = lines[0]!.split(/\s+/);
	const values = lines[1]!.split(/\s+/);
	return Number(values[names.indexOf("RcvbufErrors")] ?? 0);
}

/**
 * One iperf3 TCP run of `seconds` from `client` to `target` (an `iperf3 -s` in `server`);
 * `reverse` (-R) makes the server send. `mbps` is the receiver's rate (sum_received), `drops`
 * the UDP receive-buffer drops in the receiving host during the run.
 */
export async function iperf(
	client: Host,
	server: Pick<Host, "exec">,
	target: string,
	seconds: number,
	reverse: boolean,
): Promise<{ mbps: number; retransmits: number; drops: number }> {
	const receiver = reverse ? client : server;
	const dropsBefore = await udpRcvbufErrors(receiver);
	const args = ["-c", target, "-t", String(seconds), "-J", ...(reverse ? ["-R"] : [])];
	const r = await client.exec("iperf3", args, {
		allowFailure: true,
		timeoutMs: (seconds + 30) * 1000,
	});
	const drops = (await udpRcvbufErrors(receiver)) - dropsBefore;
	let json: {
		error?: string;
		end?: { sum_received?: { bits_per_second: number }; sum_sent?: { retransmits?: number } };
	};
	try {
		json = JSON.parse(r.stdout);
	} catch {
		throw new Error(`iperf3 ${args.join(" ")}: ${r.stderr.trim() || r.stdout.slice(0, 300)}`);
	}
	if (json.error || !json.end?.sum_received)
		throw new Error(`iperf3 ${args.join(" ")}: ${json.error ?? "no result"}`);
	return {
		mbps: json.end.sum_received.bits_per_second / 1e6,
		retransmits: json.end.sum_sent?.retransmits ?? 0,
		drops,
	};
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
	const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
	const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
	return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks
}

/** The 1-minute load average. */
export const loadAverage = (): number =>
	Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);

export const median = (xs: number[]): number => {
	if (xs.length === 0) return Number.NaN;
	const s = [...xs].sort((a, b) => a - b);
	const mid = Math.floor(s.length / 2);
	return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/**
 * Epoch ms of the first (or last) daemon log line `msg` about peer `peer`
 * at or after `since`, in a daemon's pino output; undefined when none.
 */
export function daemonLogTime(
	output: string,
	msg: string,
	peer: string,
	since: number,
	which: "first" | "last" = "first",
): number | undefined {
	let found: number | undefined;
	for (const line of output.split("\n")) {
		if (!line.includes(`"msg":"${msg}"`)) continue;
		try {
			const entry = JSON.parse(line) as { time: string | number; peer?: string };
			const t = typeof entry.time === "number" ? entry.time : Date.parse(entry.time);
			if (entry.peer !== peer || t < since) continue;
			if (which === "first") return t;
			found = t;
		} catch {
			// not JSON
		}
	}
	return found;
}
