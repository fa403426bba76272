// Relay capacity: aggregate throughput and relay CPU with 1, 10 and 50 pairs
// of RelayClients blasting 1200-byte packets (sender → receiver) through the
// real relay process on loopback, for a few seconds per pair count. Baseline
// in the same run, doing the same forwarding work: the same number of pairs
// sending 1200-byte UDP datagrams, driven by the same loop, through a plain
// UDP forwarder in its own process (lib-udp-forwarder.ts), so both sides have
// one process sending and receiving and one forwarding on its own event loop.
// Usage: pnpm bench relay [seconds=4] [pairs=1,10,50]
import { type ChildProcess, fork, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { RelayClient } from "@starling/relay-client";
import { issueRelayToken, peerIdOf } from "@starling/relay-protocol";
import { freePort, log, numberArg, repoRoot, round } from "./lib-control-plane.js";

const seconds = numberArg(1, "seconds", 4);
const pairCounts = (process.argv[3] ?? "1,10,50").split(",").map(Number);
const PACKET_BYTES = 1200;
const WARMUP_MS = 500;
/** A sender stops for this turn when its socket holds this much. */
const SENDER_HIGH_WATER = 256 * 1024;
/** UDP sends in flight per socket (libuv queues them; this bounds the queue). */
const UDP_IN_FLIGHT = 64;
const SECRET = randomBytes(32).toString("base64");

interface PhaseResult {
	pairs: number;
	mbps: number;
	packets_per_second: number;
	/** CPU of the forwarding process (the relay, or the baseline's UDP forwarder), in cores (1.0 = one core busy the whole time). */
	forwarder_cpu: number;
	/** Benchmark (client) process CPU, in cores. */
	client_cpu: number;
	/** Packets the forwarding process dropped because the receiver fell behind. */
	forwarder_drops: number;
	forwarder_rss_mb: number;
}

interface RelayProcess {
	child: ChildProcess;
	port: number;
	url: string;
	cpuSeconds(): number;
	metrics(): Promise<string>;
	stop(): Promise<void>;
}

const CLOCK_TICKS = 100; // _SC_CLK_TCK on Linux

function procCpuSeconds(pid: number): number {
	const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
	const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
	return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime, stime
}

function procRssBytes(pid: number): number {
	const status = readFileSync(`/proc/${pid}/status`, "utf8");
	return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
}

function selfCpuSeconds(): number {
	const { user, system } = process.cpuUsage();
	return (user + system) / 1e6;
}

function metricValue(text: string, name: string): number {
	const line = text.split("\n").find((l) => l.startsWith(`${name} `));
	return line ? Number(line.slice(name.length + 1)) : 0;
}

async function startRelay(): Promise<RelayProcess> {
	const port = await freePort();
	const child = spawn(process.execPath, [`${repoRoot}/apps/relay/dist/main.js`], {
		env: {
			...process.env,
			STARLING_RELAY_LISTEN: `127.0.0.1:${port}`,
			STARLING_RELAY_SECRET: SECRET,
			STARLING_LOG_LEVEL: "warn",
		},
		stdio: ["ignore", "inherit", "inherit"],
	});
	const base = `http://127.0.0.1:${port}`;
	const deadline = Date.now() + 10_000;
	for (;;) {
		if (child.exitCode !== null) throw new Error("relay exited at start");
		try {
			if ((await fetch(`${base}/healthz`)).ok) break;
		} catch {
			// not listening yet
		}
		if (Date.now() > deadline) throw new Error("relay did not start");
		await sleep(50);
	}
	return {
		child,
		port,
		url: `ws://127.0.0.1:${port}`,
		cpuSeconds: () => procCpuSeconds(child.pid!),
		metrics: async () => (await fetch(`${base}/metrics`)).text(),
		async stop() {
			if (child.exitCode === null) {
				child.kill("SIGTERM");
				await new Promise((r) => child.once("exit", r));
			}
		},
	};
}

function sleep(ms: number): Promise<void> {
	return new Promise((r) => setTimeout(r, ms));
}

/**
 * Runs `pump` (one round of sends over all senders) on every event-loop turn
 * for warm-up plus `seconds`, and measures what `received()` counted in the
 * measured window, with the CPU of this process and of `otherPid`.
 */
async function drive(
	pump: () => void,
	received: () => number,
	otherCpu: () => number,
): Promise<{ bytes: number; elapsed: number; cpuSelf: number; cpuOther: number }> {
	let running = true;
	const loop = (): void => {
		if (!running) return;
		pump();
		setImmediate(loop);
	};
	loop();
	await sleep(WARMUP_MS);
	const startBytes = received();
	const startSelf = selfCpuSeconds();
	const startOther = otherCpu();
	const start = performance.now();
	await sleep(seconds * 1000);
	const bytes = received() - startBytes;
	const elapsed = (performance.now() - start) / 1000;
	const cpuSelf = selfCpuSeconds() - startSelf;
	const cpuOther = otherCpu() - startOther;
	running = false;
	await sleep(200);
	return { bytes, elapsed, cpuSelf, cpuOther };
}

async function relayPhase(relay: RelayProcess, pairs: number): Promise<PhaseResult> {
	const packet = Buffer.alloc(PACKET_BYTES, 0x5a);
	const senders: { client: RelayClient; to: Uint8Array }[] = [];
	const clients: RelayClient[] = [];
	let receivedBytes = 0;
	for (let i = 0; i < pairs; i++) {
		const keyA = randomBytes(32);
		const keyB = randomBytes(32);
		const expires = Date.now() + 3_600_000;
		const a = new RelayClient({ url: relay.url, token: issueRelayToken(SECRET, keyA, expires) });
		const b = new RelayClient({ url: relay.url, token: issueRelayToken(SECRET, keyB, expires) });
		b.on("packet", (_from, payload) => {
			receivedBytes += payload.length;
		});
		await Promise.all([a.connect(), b.connect()]);
		clients.push(a, b);
		senders.push({ client: a, to: peerIdOf(keyB) });
	}
	const before = await relay.metrics();
	const result = await drive(
		() => {
			for (const s of senders) {
				for (let n = 0; n < 32 && s.client.bufferedAmount < SENDER_HIGH_WATER; n++) {
					s.client.send(s.to, packet);
				}
			}
		},
		() => receivedBytes,
		() => relay.cpuSeconds(),
	);
	const after = await relay.metrics();
	await Promise.all(clients.map((c) => c.close()));
	const dropName = 'starling_relay_frames_dropped_total{reason="receiver_slow"}';
	return {
		pairs,
		mbps: round((result.bytes * 8) / result.elapsed / 1e6, 1),
		packets_per_second: Math.round(result.bytes / PACKET_BYTES / result.elapsed),
		forwarder_cpu: round(result.cpuOther / result.elapsed),
		client_cpu: round(result.cpuSelf / result.elapsed),
		forwarder_drops: metricValue(after, dropName) - metricValue(before, dropName),
		forwarder_rss_mb: round(metricValue(after, "process_resident_memory_bytes") / 1e6, 1),
	};
}

interface ForwarderProcess {
	child: ChildProcess;
	inboundPorts: number[];
	drops(): Promise<number>;
	stop(): Promise<void>;
}

/** Forks the baseline's UDP forwarder (lib-udp-forwarder.js) for these receivers. */
async function startForwarder(receiverPorts: number[]): Promise<ForwarderProcess> {
	const child = fork(fileURLToPath(new URL("./lib-udp-forwarder.js", import.meta.url)), [], {
		stdio: ["ignore", "inherit", "inherit", "ipc"],
		execArgv: [],
	});
	const reply = <T>(key: string): Promise<T> =>
		new Promise((resolve, reject) => {
			const onMessage = (message: Record<string, unknown>) => {
				if (!(key in message)) return;
				child.off("message", onMessage);
				child.off("exit", onExit);
				resolve(message[key] as T);
			};
			const onExit = () => reject(new Error("the UDP forwarder exited"));
			child.on("message", onMessage);
			child.once("exit", onExit);
		});
	const ports = reply<number[]>("inboundPorts");
	child.send({ receiverPorts });
	const inboundPorts = await ports;
	return {
		child,
		inboundPorts,
		async drops() {
			const drops = reply<number>("drops");
			child.send("stats");
			return drops;
		},
		async stop() {
			if (child.exitCode === null) {
				const exited = new Promise((r) => child.once("exit", r));
				child.disconnect();
				await exited;
			}
		},
	};
}

/**
 * The baseline: the same pairs, packets and sending loop, but each sender's
 * datagrams go over UDP to a forwarder in its own process, which sends them on
 * to the receiver: the relay's work (receive, find the destination, send) in
 * the simplest form, on its own event loop as the relay has.
 */
async function udpPhase(pairs: number): Promise<PhaseResult> {
	const packet = Buffer.alloc(PACKET_BYTES, 0x5a);
	const sockets: Socket[] = [];
	const senders: { socket: Socket; inFlight: number }[] = [];
	let receivedBytes = 0;
	const bind = async (): Promise<Socket> => {
		const socket = createSocket({ type: "udp4", recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
		await new Promise<void>((r) => socket.bind(0, "127.0.0.1", r));
		sockets.push(socket);
		return socket;
	};
	const receivers: Socket[] = [];
	for (let i = 0; i < pairs; i++) {
		const b = await bind();
		b.on("message", (msg) => {
			receivedBytes += msg.length;
		});
		receivers.push(b);
	}
	const forwarder = await startForwarder(receivers.map((b) => b.address().port));
	try {
		for (const port of forwarder.inboundPorts) {
			const a = await bind();
			await new Promise<void>((r) => a.connect(port, "127.0.0.1", () => r()));
			senders.push({ socket: a, inFlight: 0 });
		}
		const dropsBefore = await forwarder.drops();
		const result = await drive(
			() => {
				for (const s of senders) {
					for (let n = 0; n < 32 && s.inFlight < UDP_IN_FLIGHT; n++) {
						s.inFlight++;
						s.socket.send(packet, () => {
							s.inFlight--;
						});
					}
				}
			},
			() => receivedBytes,
			() => procCpuSeconds(forwarder.child.pid!),
		);
		const drops = (await forwarder.drops()) - dropsBefore;
		return {
			pairs,
			mbps: round((result.bytes * 8) / result.elapsed / 1e6, 1),
			packets_per_second: Math.round(result.bytes / PACKET_BYTES / result.elapsed),
			forwarder_cpu: round(result.cpuOther / result.elapsed),
			client_cpu: round(result.cpuSelf / result.elapsed),
			forwarder_drops: drops,
			forwarder_rss_mb: round(procRssBytes(forwarder.child.pid!) / 1e6, 1),
		};
	} finally {
		await forwarder.stop();
		await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
	}
}

const loadAverage = () => Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);

async function main(): Promise<void> {
	const loadAtStart = loadAverage();
	const relay = await startRelay();
	const relayResults: PhaseResult[] = [];
	const udpResults: PhaseResult[] = [];
	try {
		for (const pairs of pairCounts) {
			log(`relay: ${pairs} pair(s) for ${seconds} s`);
			const r = await relayPhase(relay, pairs);
			log(
				`  ${r.mbps} Mbit/s, ${r.packets_per_second} packets/s, relay CPU ${r.forwarder_cpu}, clients CPU ${r.client_cpu}, drops ${r.forwarder_drops}, relay RSS ${r.forwarder_rss_mb} MB`,
			);
			relayResults.push(r);
			log(`baseline: ${pairs} pair(s) through a UDP forwarder process for ${seconds} s`);
			const u = await udpPhase(pairs);
			log(
				`  ${u.mbps} Mbit/s, ${u.packets_per_second} packets/s, forwarder CPU ${u.forwarder_cpu}, clients CPU ${u.client_cpu}, drops ${u.forwarder_drops}`,
			);
			udpResults.push(u);
		}
	} finally {
		await relay.stop();
	}
	const perCore = (p: PhaseResult) =>
		p.forwarder_cpu > 0 ? round(p.mbps / p.forwarder_cpu, 1) : null;
	const byPairs: Record<string, unknown> = {};
	for (const [i, r] of relayResults.entries()) {
		const u = udpResults[i]!;
		const relayPerCore = perCore(r);
		const udpPerCore = perCore(u);
		byPairs[`pairs_${r.pairs}`] = {
			relay_mbps: r.mbps,
			relay_packets_per_second: r.packets_per_second,
			relay_cpu_cores: r.forwarder_cpu,
			client_cpu_cores: r.client_cpu,
			relay_mbps_per_relay_core: relayPerCore,
			relay_drops: r.forwarder_drops,
			relay_rss_mb: r.forwarder_rss_mb,
			baseline_udp_mbps: u.mbps,
			baseline_udp_packets_per_second: u.packets_per_second,
			baseline_udp_forwarder_cpu_cores: u.forwarder_cpu,
			baseline_udp_client_cpu_cores: u.client_cpu,
			baseline_udp_mbps_per_forwarder_core: udpPerCore,
			baseline_udp_forwarder_drops: u.forwarder_drops,
			// relay_mbps / baseline_udp_mbps
			ratio: u.mbps > 0 ? round(r.mbps / u.mbps, 3) : null,
			// relay_mbps_per_relay_core / baseline_udp_mbps_per_forwarder_core
			per_core_ratio: relayPerCore && udpPerCore ? round(relayPerCore / udpPerCore, 3) : null,
		};
	}
	const result = {
		bench: "relay",
		packet_bytes: PACKET_BYTES,
		seconds_per_phase: seconds,
		baseline:
			"same pairs and sending loop; each sender's UDP datagrams go through a UDP forwarder in its own process (receive, send on to the receiver) instead of the relay",
		...byPairs,
		// Other work on the machine skews both sides; CPU figures under 1 core
		// with throughput flat mean the processes were waiting for a core.
		load_average_start: loadAtStart,
		load_average_end: loadAverage(),
	};
	process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
