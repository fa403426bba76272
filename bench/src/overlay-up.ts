// Time from `starling up` to the first overlay ping, with the peer already up.
// A lab with hosts a and b on 198.18.42.0/24 and the control plane in a third
// host. Agent a stays up. Each iteration: b is down and a has seen it go
// offline; t0; `starling up` on b while b pings a's overlay address every
// 50 ms (`ping -D` timestamps the first reply). Then `starling down` on b.
// Baseline, interleaved with the agent iterations in the same hosts: plain
// wireguard-go between a and b with everything known in advance (keys,
// endpoints, addresses: no control plane, no ICE): t0; on b start
// `wireguard-go -f wgb0`, wait for its "UAPI listener started" log line
// (polling for the socket file races: `wg` deletes a socket that refuses it), `wg set`, `ip addr add`,
// `ip link set up`, ping every 50 ms. That is the floor for bringing up a
// userspace WireGuard interface and getting a first packet through; the
// difference is what login, sync, signal and ICE cost. Also reported: the
// time of one `starling status` call (the CLI's own start-up cost, part of
// every `starling up`).
// Mode "down" (default) is the case above: b comes back with the same
// identity and a still holds b's WireGuard peer from before. Mode "rejoin"
// uses `starling logout` instead of `down` (management deletes b, a drops it
// from WireGuard) and `starling up --setup-key` (b registers again), so a
// meets b as a new peer.
// Per step (b's daemon log, ms after t0): wireguard-go started, management
// sync connected (login + map), peer added, signal connected, direct path up;
// and whether a replaced its WireGuard session for b (b announced a new
// instance over signal). Targets (issue 11): p50 ≤ 1.5 s, p99 ≤ 2.5 s.
// Usage: pnpm bench overlay-up [iterations=20] [down|rejoin]
import { readFileSync } from "node:fs";
import { log, numberArg, percentile, round } from "./lib-control-plane.js";
import {
	baselinePair,
	type LabAgent,
	runLabBenchmark,
	sleep,
	startAgent,
	startHandMadeWireguard,
	startLabControlPlane,
	waitFor,
} from "./lib-lab.js";

const iterations = numberArg(1, "iterations", 20);
const mode = process.argv[3] ?? "down";
if (mode !== "down" && mode !== "rejoin") throw new Error(`unknown mode ${mode} (down or rejoin)`);
const BASELINE_IF = "wgb0";
const BASELINE_PORT = 51900;
const PING_INTERVAL_S = 0.05;

/**
 * A shell loop that pings `target` every 50 ms until the first reply and prints it with its
 * wall-clock timestamp (ping -D). While there is no route yet, ping exits at once
 * ("Network is unreachable") and the loop tries again 50 ms later.
 */
const pingLoop = (target: string) =>
	`until ping -n -D -i ${PING_INTERVAL_S} -c 1 -w 20 ${target}; do sleep ${PING_INTERVAL_S}; done`;

/** Epoch ms of the first reply in `ping -D` output. */
function firstReplyAt(output: string): number {
	const m = /^\[(\d+\.\d+)\] \d+ bytes from/m.exec(output);
	if (!m) throw new Error(`no ping reply in: ${output.slice(-300)}`);
	return Number(m[1]) * 1000;
}

/** The first daemon log line with `msg` logged at or after `since` (epoch ms). */
function logTime(output: string, msg: string, since: number): number | undefined {
	for (const line of output.split("\n")) {
		if (!line.includes(`"msg":"${msg}"`)) continue;
		try {
			const t = Date.parse((JSON.parse(line) as { time: string }).time);
			if (t >= since) return t;
		} catch {
			// not JSON
		}
	}
	return undefined;
}

/** b goes down (or logs out); returns once a has seen it go (offline, or removed). */
async function takeDown(a: LabAgent, b: LabAgent, ipOfB: string): Promise<void> {
	if (mode === "down") await b.down();
	else {
		const r = await b.cli(["logout"]);
		if (r.exitCode !== 0) throw new Error(`starling logout on b: ${r.stderr.trim()}`);
	}
	await waitFor("a sees b go", async () => {
		const s = await a.status();
		const peer = s.peers?.find((p) => p.overlay_ip === ipOfB);
		if (mode === "rejoin") return peer === undefined && s.peers_total === 0 ? true : undefined;
		return peer && peer.connection_state !== "connected" ? true : undefined;
	});
	if (mode === "rejoin") {
		// ...and from its WireGuard.
		await waitFor("b gone from a's WireGuard", async () => {
			const dump = await a.host.exec("wg", ["show", "starling0", "peers"]);
			return dump.stdout.trim() === "" ? true : undefined;
		});
	}
}

const loadAtStart = Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
runLabBenchmark("overlay-up", "btup", async (lab) => {
	const lan = await lab.lan("lan", "198.18.42.0/24");
	log("starting management and signal in host ctl");
	const ctl = await startLabControlPlane(await lab.host("ctl", { lan }));
	const a = await startAgent(lab, lan, "a");
	const b = await startAgent(lab, lan, "b");
	log("first up on a and b (registration)");
	await a.up(ctl);
	await b.up(ctl);
	await Promise.all([a.waitConnected(1), b.waitConnected(1)]);
	const ipOfA = await a.overlayIp();
	let ipOfB = await b.overlayIp();
	await takeDown(a, b, ipOfB);

	// The baseline's wireguard-go pair: a's side stays up; b's side is started from scratch
	// in every baseline iteration.
	const {
		addresses: [baseA, baseB],
		publicKeys: [pubA, pubB],
	} = await baselinePair([a.host, b.host], [`${ipOfA}/16`, `${ipOfB}/16`], BASELINE_IF);
	await startHandMadeWireguard(a.host, {
		ifname: BASELINE_IF,
		listenPort: BASELINE_PORT,
		address: baseA,
		mtu: 1280,
		peer: { publicKey: pubB, endpoint: `${b.host.address}:${BASELINE_PORT}`, allowedIp: baseB },
	});
	const baselineScript = [
		"set -e",
		// Own pid file, so that we stop exactly this process afterwards.
		// Emptied first: the file still holds the last iteration's lines.
		`: > /var/lib/starling/${BASELINE_IF}.log`,
		`LOG_LEVEL=verbose wireguard-go -f ${BASELINE_IF} >/var/lib/starling/${BASELINE_IF}.log 2>&1 & echo $! > /var/lib/starling/${BASELINE_IF}.pid`,
		// Ready when it says so: `wg` deletes a socket file that refuses its connection.
		`until grep -q "UAPI listener started" /var/lib/starling/${BASELINE_IF}.log; do sleep 0.005; done`,
		`wg set ${BASELINE_IF} listen-port ${BASELINE_PORT} private-key /var/lib/starling/${BASELINE_IF}.key peer ${pubA} endpoint ${a.host.address}:${BASELINE_PORT} allowed-ips ${baseA}/32`,
		`ip addr add ${baseB}/24 dev ${BASELINE_IF}`,
		`echo "link-up $(date +%s.%N)"`,
		`ip link set ${BASELINE_IF} mtu 1280 up`,
		"set +e",
		pingLoop(baseA),
	].join("\n");

	const agentSamples: {
		first_ping_ms: number;
		up_returned_ms: number;
		path_up_ms?: number;
		steps: Record<string, number | null>;
		a_replaced_session: boolean;
	}[] = [];
	/** The daemon log events of one `up`, in order, and what they stand for. */
	const STEPS: [string, string][] = [
		["wireguard_started", "wireguard-go started"],
		["sync_connected", "management sync connected"],
		["peer_added", "peer added"],
		["signal_connected", "signal connected"],
		["path_up", "direct path up"],
	];
	const baselineSamples: { first_ping_ms: number; link_up_to_ping_ms: number }[] = [];
	const statusCallMs: number[] = [];
	for (let i = 0; i < iterations; i++) {
		// The agent: b is down, a has seen it go.
		const t0 = Date.now();
		// Generous: on a machine at load 50 the daemon alone took 20 s to start wireguard-go.
		const ping = b.host.exec("sh", ["-c", pingLoop(ipOfA)], { timeoutMs: 90_000 });
		const upArgs = mode === "down" ? ["up"] : ["up", "--setup-key", ctl.setupKey];
		const up = b.cli(upArgs).then((r) => ({ r, at: Date.now() }));
		const [pinged, upDone] = await Promise.all([ping, up]);
		if (upDone.r.exitCode !== 0) throw new Error(`starling up on b: ${upDone.r.stderr}`);
		const bLog = b.daemon.output();
		const steps: Record<string, number | null> = {};
		for (const [name, msg] of STEPS) {
			const t = logTime(bLog, msg, t0);
			steps[name] = t === undefined ? null : t - t0;
		}
		const sample = {
			steps,
			a_replaced_session:
				logTime(a.daemon.output(), "peer restarted: replacing its WireGuard session", t0) !==
				undefined,
			first_ping_ms: round(firstReplyAt(pinged.stdout) - t0, 0),
			up_returned_ms: upDone.at - t0,
			path_up_ms: (() => {
				const t = logTime(b.daemon.output(), "direct path up", t0);
				return t === undefined ? undefined : t - t0;
			})(),
		};
		agentSamples.push(sample);
		log(
			`agent ${i + 1}/${iterations}: first ping after ${sample.first_ping_ms} ms (up returned after ${sample.up_returned_ms} ms; steps ${JSON.stringify(steps)}; a replaced its session: ${sample.a_replaced_session})`,
		);
		const s0 = performance.now();
		const st = await b.cli(["status"]);
		statusCallMs.push(performance.now() - s0);
		if (st.exitCode !== 0) throw new Error(`starling status: ${st.stderr}`);
		ipOfB = await b.overlayIp();
		await takeDown(a, b, ipOfB);

		// The baseline, in the same hosts while b's agent is down.
		const t1 = Date.now();
		const out = await b.host.exec("sh", ["-c", baselineScript], { timeoutMs: 30_000 });
		const linkUp = Number(/^link-up (\d+\.\d+)$/m.exec(out.stdout)?.[1]) * 1000;
		const reply = firstReplyAt(out.stdout);
		baselineSamples.push({
			first_ping_ms: round(reply - t1, 0),
			link_up_to_ping_ms: round(reply - linkUp, 1),
		});
		log(
			`baseline ${i + 1}/${iterations}: first ping after ${round(reply - t1, 0)} ms (${round(reply - linkUp, 1)} ms after link up)`,
		);
		await b.host.exec("sh", [
			"-c",
			`kill $(cat /var/lib/starling/${BASELINE_IF}.pid); while [ -S /var/run/wireguard/${BASELINE_IF}.sock ]; do sleep 0.01; done; ip link del ${BASELINE_IF} 2>/dev/null; true`,
		]);
		await sleep(200);
	}
	const sorted = (xs: number[]) => [...xs].sort((x, y) => x - y);
	const firstPing = sorted(agentSamples.map((s) => s.first_ping_ms));
	const upReturned = sorted(agentSamples.map((s) => s.up_returned_ms));
	const pathUp = sorted(
		agentSamples.flatMap((s) => (s.path_up_ms === undefined ? [] : [s.path_up_ms])),
	);
	const pathUpToPing = sorted(
		agentSamples.flatMap((s) =>
			s.path_up_ms === undefined ? [] : [s.first_ping_ms - s.path_up_ms],
		),
	);
	const baseline = sorted(baselineSamples.map((s) => s.first_ping_ms));
	const baselineLink = sorted(baselineSamples.map((s) => s.link_up_to_ping_ms));
	const status = sorted(statusCallMs);
	const result = {
		bench: "overlay-up",
		mode,
		iterations,
		ping_interval_ms: PING_INTERVAL_S * 1000,
		up_to_first_ping_p50_ms: round(percentile(firstPing, 50), 0),
		up_to_first_ping_p95_ms: round(percentile(firstPing, 95), 0),
		up_to_first_ping_p99_ms: round(percentile(firstPing, 99), 0),
		up_to_first_ping_max_ms: round(firstPing.at(-1)!, 0),
		up_returned_p50_ms: round(percentile(upReturned, 50), 0),
		path_up_p50_ms: round(percentile(pathUp, 50), 0),
		path_up_to_first_ping_p50_ms: round(percentile(pathUpToPing, 50), 0),
		baseline_wg_start_to_first_ping_p50_ms: round(percentile(baseline, 50), 0),
		baseline_wg_start_to_first_ping_p95_ms: round(percentile(baseline, 95), 0),
		baseline_link_up_to_first_ping_p50_ms: round(percentile(baselineLink, 50), 1),
		status_call_p50_ms: round(percentile(status, 50), 0),
		ratio_p50: round(percentile(firstPing, 50) / percentile(baseline, 50), 2),
		target_p50_ms: 1500,
		target_p99_ms: 2500,
		p50_target_met: percentile(firstPing, 50) <= 1500,
		p99_target_met: percentile(firstPing, 99) <= 2500,
		steps_p50_ms: Object.fromEntries(
			STEPS.map(([name]) => {
				const xs = sorted(
					agentSamples.flatMap((s) => (s.steps[name] == null ? [] : [s.steps[name] as number])),
				);
				return [name, xs.length ? round(percentile(xs, 50), 0) : null];
			}),
		),
		a_replaced_session: agentSamples.filter((s) => s.a_replaced_session).length,
		loadavg_1m_at_start: loadAtStart,
		loadavg_1m_at_end: Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]),
		samples_ms: firstPing.map((x) => round(x, 0)),
		baseline_samples_ms: baseline.map((x) => round(x, 0)),
	};
	return result;
});
