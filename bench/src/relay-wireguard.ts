// Relayed WireGuard throughput: iperf3 TCP between two lab hosts over
// wireguard-go whose endpoints are RelayUdpBridge ports feeding RelayClients,
// with the relay in a third host (its own namespace), against plain
// wireguard-go with direct endpoints between the same two hosts in the same
// run (interleaved: baseline b→a, a→b, relayed b→a, a→b, per round).
// Usage: pnpm bench relay-wireguard [rounds=1] [seconds=8]
// (Internally, `relay-wireguard.js --peer` is the per-host relay side.)
import { readFileSync } from "node:fs";
import { RelayClient, RelayUdpBridge } from "@starling/relay-client";
import { issueRelayToken } from "@starling/relay-protocol";
import { log, numberArg, repoRoot, round } from "./lib-control-plane.js";
import { type Host, Lab, labUnavailable, sleep, waitFor } from "./lib-lab.js";

const SECRET = "relay-wireguard bench secret, not for production";
const RELAY_PORT = 33080;
const MTU = 1280;
const self = new URL(import.meta.url).pathname;

/** The relay side of one host: a RelayClient and a bridge for one remote peer. */
async function runPeer(): Promise<void> {
	const { RELAY_URL, RELAY_TOKEN, WG_PORT, PEER_KEY } = process.env;
	if (!RELAY_URL || !RELAY_TOKEN || !WG_PORT || !PEER_KEY) {
		throw new Error("RELAY_URL, RELAY_TOKEN, WG_PORT and PEER_KEY are required");
	}
	const relay = new RelayClient({ url: RELAY_URL, token: RELAY_TOKEN });
	relay.start();
	const bridge = new RelayUdpBridge({ relay, wireguardPort: Number(WG_PORT) });
	const bridgePort = await bridge.addPeer(new Uint8Array(Buffer.from(PEER_KEY, "base64")));
	if (relay.state !== "ready") await new Promise((resolve) => relay.once("ready", resolve));
	process.stdout.write(`${JSON.stringify({ bridgePort })}\n`);
	process.on("SIGTERM", () => {
		const s = bridge.stats().peers[0];
		process.stdout.write(`${JSON.stringify({ final: s, relay: relay.stats() })}\n`);
		process.exit(0);
	});
}

interface Tunnel {
	ifname: string;
	port: number;
	addresses: [string, string];
}

async function wgKeys(host: Host): Promise<{ priv: string; pub: string }> {
	const priv = (await host.exec("wg", ["genkey"])).stdout.trim();
	const pub = (await host.exec("wg", ["pubkey"], { input: `${priv}\n` })).stdout.trim();
	return { priv, pub };
}

/** wireguard-go `t.ifname` on both hosts; endpoints[i] is host i's endpoint for the other. */
async function setUpTunnel(
	hosts: [Host, Host],
	t: Tunnel,
	keys: [{ priv: string; pub: string }, { priv: string; pub: string }],
	endpoints: [string, string],
): Promise<void> {
	for (const [i, host] of hosts.entries()) {
		await waitFor(`${host.name}: ${t.ifname} ready`, async () => {
			const r = await host.exec("wg", ["show", t.ifname], { allowFailure: true });
			return r.exitCode === 0 ? true : undefined;
		});
		await host.exec("sh", [
			"-c",
			`umask 077; printf '%s\\n' "$1" > /var/lib/starling/${t.ifname}.key`,
			"sh",
			keys[i]!.priv,
		]);
		await host.exec("wg", [
			"set",
			t.ifname,
			"listen-port",
			String(t.port),
			"private-key",
			`/var/lib/starling/${t.ifname}.key`,
			"peer",
			keys[1 - i]!.pub,
			"endpoint",
			endpoints[i]!,
			"allowed-ips",
			`${t.addresses[1 - i]}/32`,
		]);
		await host.exec("ip", ["addr", "add", `${t.addresses[i]}/24`, "dev", t.ifname]);
		await host.exec("ip", ["link", "set", t.ifname, "mtu", String(MTU), "up"]);
	}
	await waitFor(`${t.ifname} answers ping`, async () =>
		(await hosts[1].ping(t.addresses[0], { count: 1, timeoutSeconds: 1 })) ? true : undefined,
	);
}

async function iperf(client: Host, target: string, reverse: boolean, seconds: number) {
	const args = ["-c", target, "-t", String(seconds), "-J", ...(reverse ? ["-R"] : [])];
	const r = await client.exec("iperf3", args, {
		allowFailure: true,
		timeoutMs: (seconds + 30) * 1000,
	});
	const json = JSON.parse(r.stdout) as {
		error?: string;
		end?: { sum_received?: { bits_per_second: number }; sum_sent?: { retransmits?: number } };
	};
	if (json.error || !json.end?.sum_received) {
		throw new Error(`iperf3 ${args.join(" ")}: ${json.error ?? "no result"}`);
	}
	return {
		mbps: json.end.sum_received.bits_per_second / 1e6,
		retransmits: json.end.sum_sent?.retransmits ?? 0,
	};
}

function cpuSeconds(pid: number): number {
	const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
	const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
	return (Number(fields[11]) + Number(fields[12])) / 100;
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

async function main(): Promise<void> {
	const rounds = numberArg(1, "rounds", 1);
	const seconds = numberArg(2, "seconds", 8);
	if (labUnavailable) {
		log(`skipped: ${labUnavailable}`);
		process.stdout.write(
			`${JSON.stringify({ bench: "relay-wireguard", skipped: labUnavailable })}\n`,
		);
		return;
	}
	const lab = await Lab.create("brlwg");
	try {
		const lan = await lab.lan("lan", "198.18.43.0/24");
		const relayHost = await lab.host("relay", { lan });
		const a = await lab.host("a", { lan });
		const b = await lab.host("b", { lan });
		const hosts: [Host, Host] = [a, b];
		const relay = relayHost.spawn(process.execPath, [`${repoRoot}/apps/relay/dist/main.js`], {
			env: {
				STARLING_RELAY_LISTEN: `0.0.0.0:${RELAY_PORT}`,
				STARLING_RELAY_SECRET: SECRET,
				STARLING_LOG_LEVEL: "warn",
			},
			name: "relay",
		});
		await waitFor("relay listening", async () => {
			const r = await relayHost.exec("ss", ["-ltn", `sport = :${RELAY_PORT}`]);
			return r.stdout.includes(`:${RELAY_PORT}`) ? true : undefined;
		});

		const baseline: Tunnel = {
			ifname: "wgb0",
			port: 51900,
			addresses: ["100.64.91.1", "100.64.91.2"],
		};
		const relayed: Tunnel = {
			ifname: "wgr0",
			port: 51901,
			addresses: ["100.64.92.1", "100.64.92.2"],
		};
		for (const t of [baseline, relayed]) {
			for (const host of hosts) host.spawn("wireguard-go", ["-f", t.ifname], { name: t.ifname });
		}
		const baseKeys: [{ priv: string; pub: string }, { priv: string; pub: string }] = [
			await wgKeys(a),
			await wgKeys(b),
		];
		log("baseline: wireguard-go wgb0 with direct endpoints");
		await setUpTunnel(hosts, baseline, baseKeys, [
			`${b.address}:${baseline.port}`,
			`${a.address}:${baseline.port}`,
		]);

		log(`relayed: wireguard-go wgr0 through the relay at ${relayHost.address}:${RELAY_PORT}`);
		const relayKeys: [{ priv: string; pub: string }, { priv: string; pub: string }] = [
			await wgKeys(a),
			await wgKeys(b),
		];
		const bridgePorts: number[] = [];
		const peers: { output(): string; kill(signal?: NodeJS.Signals): void }[] = [];
		for (const [i, host] of hosts.entries()) {
			const token = issueRelayToken(
				SECRET,
				new Uint8Array(Buffer.from(relayKeys[i]!.pub, "base64")),
				Date.now() + 3_600_000,
			);
			const peer = host.spawn(process.execPath, [self, "--peer"], {
				env: {
					RELAY_URL: `ws://${relayHost.address}:${RELAY_PORT}`,
					RELAY_TOKEN: token,
					WG_PORT: String(relayed.port),
					PEER_KEY: relayKeys[1 - i]!.pub,
				},
				name: "relay-peer",
			});
			peers.push(peer);
			await peer.waitForOutput(/"bridgePort":\d+/, 10_000);
			bridgePorts.push(Number(/"bridgePort":(\d+)/.exec(peer.output())?.[1]));
		}
		await setUpTunnel(hosts, relayed, relayKeys, [
			`127.0.0.1:${bridgePorts[0]}`,
			`127.0.0.1:${bridgePorts[1]}`,
		]);

		const server = a.spawn("iperf3", ["-s", "--forceflush"], { name: "iperf3-server" });
		await server.waitForOutput(/Server listening/, 10_000);
		const runs: { path: string; direction: string; mbps: number; relayCpu: number }[] = [];
		for (let i = 0; i < rounds; i++) {
			for (const [path, t] of [
				["baseline", baseline],
				["relayed", relayed],
			] as const) {
				for (const reverse of [false, true]) {
					const direction = reverse ? "a_to_b" : "b_to_a";
					const cpu0 = cpuSeconds(relay.pid);
					const t0 = performance.now();
					const r = await iperf(b, t.addresses[0], reverse, seconds);
					const relayCpu = (cpuSeconds(relay.pid) - cpu0) / ((performance.now() - t0) / 1000);
					runs.push({ path, direction, mbps: r.mbps, relayCpu });
					log(
						`round ${i + 1}: ${path} ${direction}: ${round(r.mbps, 1)} Mbit/s, ${r.retransmits} retransmits, relay CPU ${round(relayCpu)}`,
					);
					await sleep(500);
				}
			}
		}
		const metrics = (
			await relayHost.exec(process.execPath, [
				"-e",
				`fetch('http://127.0.0.1:${RELAY_PORT}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`,
			])
		).stdout;
		const drops = metrics
			.split("\n")
			.filter((l) => l.startsWith("starling_relay_frames_dropped_total{"))
			.join(", ");
		log(`relay drops: ${drops}`);
		for (const peer of peers) peer.kill("SIGTERM");
		await sleep(500);
		for (const peer of peers) log(`relay peer: ${peer.output().trim().split("\n").at(-1)}`);
		const pick = (path: string, direction: string) =>
			runs.filter((r) => r.path === path && r.direction === direction);
		const figures: Record<string, number> = {};
		for (const direction of ["b_to_a", "a_to_b"]) {
			const rel = mean(pick("relayed", direction).map((r) => r.mbps));
			const base = mean(pick("baseline", direction).map((r) => r.mbps));
			figures[`relayed_${direction}_mbps`] = round(rel, 1);
			figures[`baseline_${direction}_mbps`] = round(base, 1);
			figures[`ratio_${direction}`] = round(rel / base, 3);
			figures[`relay_cpu_${direction}`] = round(
				mean(pick("relayed", direction).map((r) => r.relayCpu)),
			);
		}
		process.stdout.write(
			`${JSON.stringify({
				bench: "relay-wireguard",
				rounds,
				seconds,
				mtu: MTU,
				...figures,
				load_average: Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]),
			})}\n`,
		);
	} finally {
		await lab.destroy();
	}
}

if (process.argv.includes("--peer")) await runPeer();
else await main();
