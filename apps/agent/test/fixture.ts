// Shared pieces of the agent's end-to-end tests: the control plane and
// agents as real processes in lab hosts, and the CLI's JSON status.
import { resolve } from "node:path";
import {
	addRootUplink,
	type Host,
	type Lab,
	type LabProcess,
	type RootUplink,
	startStunServer,
} from "@starling/lab";
import { expect } from "vitest";

const ROOT = resolve(__dirname, "../../..");
export const NODE = process.execPath;
export const CLI = resolve(ROOT, "apps/agent/dist/cli/main.js");
export const MANAGEMENT = resolve(ROOT, "apps/management/dist/main.js");
export const SIGNAL = resolve(ROOT, "apps/signal/dist/main.js");
export const RELAY = resolve(ROOT, "apps/relay/dist/main.js");
export const AGENT_ENV = {
	STARLING_DATA_DIR: "/var/lib/starling",
	STARLING_SOCKET: "/var/lib/starling/starling.sock",
};
/** Test-only shared secret between management and relay (lab hosts only). */
const RELAY_SECRET = "lab-relay-secret-0123456789abcdef0123456789";

import { waitFor } from "@starling/lab";

export { waitFor };

/** Management, signal and optionally a relay, as processes in one lab host. */
export class ControlPlane {
	management: LabProcess | undefined;
	signal: LabProcess | undefined;
	/** The relays, by index (ports 33080, 33081, ...). */
	relays: (LabProcess | undefined)[] = [];
	token = "";

	stun: LabProcess | undefined;

	constructor(
		readonly host: Host,
		private readonly options: {
			relay?: boolean;
			/** How many relays to run (default 1 with `relay`); the map lists them all. */
			relayCount?: number;
			stun?: boolean;
			/** Serve management and signal over TLS: their certificate files, and the CA file clients in the control host trust. */
			tls?: {
				management: { certFile: string; keyFile: string };
				signal: { certFile: string; keyFile: string };
				caFile: string;
			};
		} = {},
	) {}

	get url(): string {
		return `${this.options.tls ? "https" : "http"}://${this.host.address}:33073`;
	}

	get signalUrl(): string {
		return `${this.options.tls ? "https" : "http"}://${this.host.address}:10000`;
	}

	get stunUrl(): string {
		return `stun:${this.host.address}:3478`;
	}

	get relayUrl(): string {
		return this.relayUrlOf(0);
	}

	relayUrlOf(index: number): string {
		return `ws://${this.host.address}:${33080 + index}`;
	}

	get relayUrls(): string[] {
		const count = this.options.relay ? (this.options.relayCount ?? 1) : 0;
		return Array.from({ length: count }, (_, i) => this.relayUrlOf(i));
	}

	/** The first relay's process. */
	get relay(): LabProcess | undefined {
		return this.relays[0];
	}

	async start(): Promise<void> {
		if (this.options.stun) await this.startStun();
		await this.startSignal();
		for (let i = 0; i < this.relayUrls.length; i++) await this.startRelay(i);
		await this.startManagement();
		this.token = (await this.host.exec("cat", ["/var/lib/starling/admin-token"])).stdout.trim();
	}

	/** coturn as a plain STUN server, as in the compose deployment. */
	async startStun(): Promise<void> {
		this.stun = await startStunServer(this.host);
	}

	async startSignal(): Promise<void> {
		this.signal = this.host.spawn(NODE, [SIGNAL], {
			name: "signal",
			env: {
				STARLING_SIGNAL_LISTEN: `${this.host.address}:10000`,
				...(this.options.tls
					? {
							STARLING_SIGNAL_TLS_CERT_FILE: this.options.tls.signal.certFile,
							STARLING_SIGNAL_TLS_KEY_FILE: this.options.tls.signal.keyFile,
						}
					: {}),
			},
		});
		await this.signal.waitForOutput(/listening|serving/i, 10_000);
	}

	async startRelay(index = 0): Promise<void> {
		const relay = this.host.spawn(NODE, [RELAY], {
			name: index === 0 ? "relay" : `relay-${index}`,
			env: {
				STARLING_RELAY_LISTEN: `${this.host.address}:${33080 + index}`,
				STARLING_RELAY_SECRET: RELAY_SECRET,
			},
		});
		this.relays[index] = relay;
		await relay.waitForOutput(/listening|serving/i, 10_000);
	}

	async startManagement(): Promise<void> {
		this.management = this.host.spawn(NODE, [MANAGEMENT], {
			name: "management",
			env: {
				STARLING_DATA_DIR: "/var/lib/starling/management",
				STARLING_MANAGEMENT_LISTEN: `${this.host.address}:33073`,
				STARLING_SIGNAL_URL: this.signalUrl,
				...(this.options.tls
					? {
							STARLING_MANAGEMENT_TLS_CERT_FILE: this.options.tls.management.certFile,
							STARLING_MANAGEMENT_TLS_KEY_FILE: this.options.tls.management.keyFile,
						}
					: {}),
				STARLING_ADMIN_TOKEN_FILE: "/var/lib/starling/admin-token",
				STARLING_SYNC_FLUSH_MS: "20",
				...(this.options.relay
					? { STARLING_RELAY_URLS: this.relayUrls.join(","), STARLING_RELAY_SECRET: RELAY_SECRET }
					: {}),
				...(this.options.stun ? { STARLING_STUN_URLS: this.stunUrl } : {}),
			},
		});
		await this.management.waitForOutput(/management is serving/, 15_000);
	}

	/** Calls the REST API from inside the control host (the test process is outside the lab). */
	async api(
		method: string,
		path: string,
		body?: unknown,
	): Promise<{ status: number; json: unknown }> {
		const script = `fetch(${JSON.stringify(`${this.url}${path}`)}, {method: ${JSON.stringify(method)}, headers: {authorization: "Token " + ${JSON.stringify(this.token)}, "content-type": "application/json"}, body: ${body === undefined ? "undefined" : JSON.stringify(JSON.stringify(body))}}).then(async r => console.log(JSON.stringify({status: r.status, json: await r.json().catch(() => null)})))`;
		const { stdout } = await this.host.exec(NODE, ["-e", script], {
			env: this.options.tls ? { NODE_EXTRA_CA_CERTS: this.options.tls.caFile } : {},
		});
		return JSON.parse(stdout) as { status: number; json: unknown };
	}

	async createSetupKey(name = "test"): Promise<string> {
		const key = await this.api("POST", "/api/setup-keys", {
			name,
			type: "reusable",
			expires_in: 3600,
			auto_groups: [],
			usage_limit: 0,
		});
		expect(key.status).toBe(200);
		return (key.json as { key: string }).key;
	}
}

/** The nftables table of `AgentHost.dropUdpFrom`. */
const UDP_CUT_TABLE = "test-udp-cut";

/** One lab host running the agent daemon, driven through the real CLI. */
export class AgentHost {
	daemon: LabProcess | undefined;

	constructor(readonly host: Host) {}

	get name(): string {
		return this.host.name;
	}

	/** `env` adds to the daemon's environment (e.g. a PATH with a fake tool). */
	async startDaemon(env: Record<string, string> = {}): Promise<void> {
		this.daemon = this.host.spawn(NODE, [CLI, "service", "run"], {
			name: `agent-${this.host.name}`,
			env: { ...AGENT_ENV, ...env },
		});
		await this.daemon.waitForOutput(/daemon listening/, 10_000);
	}

	/** `starling up` against this management URL with the setup key; it must succeed. */
	async up(managementUrl: string, setupKey: string): Promise<void> {
		const r = await this.starling([
			"up",
			"--management-url",
			managementUrl,
			"--setup-key",
			setupKey,
		]);
		expect(r.exitCode, r.stderr).toBe(0);
	}

	starling(args: string[]) {
		return this.host.exec(NODE, [CLI, ...args], {
			env: AGENT_ENV,
			allowFailure: true,
			timeoutMs: 60_000,
		});
	}

	async status(): Promise<StatusJson> {
		const r = await this.starling(["status", "--json", "--detail"]);
		expect(r.exitCode, r.stderr).toBe(0);
		return JSON.parse(r.stdout) as StatusJson;
	}

	async overlayIp(): Promise<string> {
		return (await this.status()).overlay_address.split("/")[0]!;
	}

	/**
	 * Drops UDP from `other` as it arrives here, in an nftables table of the
	 * test's own (`restoreUdp` removes it). Cut on arrival, as a network that
	 * loses packets would: an output drop makes the sender's own send fail
	 * (EPERM), and WireGuard then counts no bytes sent, another case (README, Known limits).
	 */
	async dropUdpFrom(other: AgentHost): Promise<void> {
		await this.host.exec("nft", ["-f", "-"], {
			input: `table inet ${UDP_CUT_TABLE} {
	chain input { type filter hook input priority -10; policy accept; ip saddr ${other.host.address} meta l4proto udp drop; }
}`,
		});
	}

	/** Removes what `dropUdpFrom` added. */
	async restoreUdp(): Promise<void> {
		await this.host.exec("nft", ["delete", "table", "inet", UDP_CUT_TABLE]);
	}

	/** The daemon's last log lines, for failure messages. */
	logs(lines = 40): string {
		const tail = this.daemon?.output().trim().split("\n").slice(-lines) ?? [];
		return `--- agent ${this.host.name} (last ${tail.length} lines)\n${tail.join("\n")}`;
	}
}

/**
 * Agent hosts (`a`, `b` by default) on one LAN whose gateway host `gw` has a
 * root uplink, for tests whose servers run in the root namespace (HAProxy,
 * docker containers): the root namespace routes to the LAN, each agent host
 * to the uplink's subnet through the gateway.
 */
export async function agentsBehindRootUplink(
	lab: Lab,
	options: { lan: string; uplinkSubnet: string; names?: string[] },
): Promise<{ uplink: RootUplink; agents: AgentHost[] }> {
	const lan = await lab.lan("lan", options.lan);
	const gw = await lab.host("gw", { lan });
	const uplink = await addRootUplink(lab, gw, {
		subnet: options.uplinkSubnet,
		routes: [options.lan],
	});
	const agents: AgentHost[] = [];
	for (const name of options.names ?? ["a", "b"]) {
		const host = await lab.host(name, { lan });
		await host.addRoute(options.uplinkSubnet, gw.address);
		agents.push(new AgentHost(host));
	}
	return { uplink, agents };
}

/**
 * Waits until `a` pings `b` over the overlay, then `b` pings `a` (each within
 * `timeoutMs`); their overlay addresses.
 */
export async function waitForPingsBothWays(
	a: AgentHost,
	b: AgentHost,
	timeoutMs: number,
): Promise<{ ipA: string; ipB: string }> {
	const ipA = await a.overlayIp();
	const ipB = await b.overlayIp();
	for (const [from, to, ip] of [
		[a, b, ipB],
		[b, a, ipA],
	] as const) {
		await waitFor(
			`${from.name} pings ${to.name} over the overlay`,
			async () => ((await from.host.ping(ip, { count: 1, timeoutSeconds: 1 })) ? true : undefined),
			timeoutMs,
		);
	}
	return { ipA, ipB };
}

export interface PeerJson {
	name: string;
	wg_public_key: string;
	overlay_ip: string;
	connection_state: string;
	path_type: string;
	local_endpoint: string;
	remote_endpoint: string;
	remote_candidate_type: string;
	peer_online: boolean;
	reason: string;
	ice: { attempts: number; successes: number; failures: number; last_failure: string };
}

export interface StatusJson {
	state: string;
	fqdn: string;
	wg_public_key: string;
	overlay_address: string;
	interface_type: string;
	firewall: string;
	peers_connected: number;
	peers_total: number;
	management: { connected: boolean };
	signal: { connected: boolean };
	peers?: PeerJson[];
}
