// Agent daemon memory (issue 11: daemon ≤ 60 MB idle with 10 connected peers,
// ≤ 90 MB with its ICE worker while negotiating). A lab with 11 agents on one
// LAN (198.18.44.0/24: the measured agent m and p1..p10) and the control plane
// in a twelfth host. Every daemon runs with the V8 flags its systemd unit
// gives it (apps/agent/src/daemon/node-flags.ts).
//
// Baseline, in the same run: a bare `node <same flags> -e <idle timer>` in m's
// host, started with the daemons and read at the same moments.
//
// 1. After start, before `up`: VmRSS of m's daemon and of the bare node.
// 2. While negotiating: all 11 agents `starling up` (a full mesh, every agent
//    has 10 peers); m's daemon and its ICE worker are sampled every 200 ms
//    until the whole mesh is connected; the sample with the largest daemon +
//    worker sum is reported.
// 3. Idle: `idle` seconds later (the worker stops 5 s after its last session
//    closed, sessions close 3 s after connecting) m's daemon, whether its ICE
//    worker still runs, its wireguard-go, and the bare node; the other ten
//    daemons as a range. m must still have 10 peers connected.
// VmRSS and RssAnon come from /proc/<pid>/status. "node binary once" subtracts
// the worker's resident pages of the node binary, which it shares with the daemon.
// BENCH_AGENT_NODE_FLAGS="--flag ..." replaces the unit's flags (daemons, their
// bare baseline; "none" for no flags), to try others.
// Usage: pnpm bench overlay-rss [peers=10] [idle=15]
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { log, numberArg, percentile, repoRoot, round } from "./lib-control-plane.js";
import {
	childPids,
	cmdline,
	type LabAgent,
	NODE,
	nodeBinaryRss,
	runLabBenchmark,
	sleep,
	startAgent,
	startLabControlPlane,
} from "./lib-lab.js";

const peers = numberArg(1, "peers", 10);
const idleSeconds = numberArg(2, "idle seconds", 15);
const MB = 2 ** 20;
const TARGET_IDLE_MB = 60;
const TARGET_NEGOTIATING_MB = 90;

const { DAEMON_NODE_FLAGS } = (await import(
	pathToFileURL(join(repoRoot, "apps/agent/dist/daemon/node-flags.js")).href
)) as { DAEMON_NODE_FLAGS: readonly string[] };
const flagsOverride = process.env.BENCH_AGENT_NODE_FLAGS;
const nodeFlags: readonly string[] =
	flagsOverride === undefined
		? DAEMON_NODE_FLAGS
		: flagsOverride === "none"
			? []
			: flagsOverride.split(/\s+/).filter(Boolean);

interface Memory {
	rss: number;
	anon: number;
}

function memory(pid: number | undefined): Memory | undefined {
	if (pid === undefined) return undefined;
	try {
		const status = readFileSync(`/proc/${pid}/status`, "utf8");
		const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
		return { rss: kb("VmRSS") * 1024, anon: kb("RssAnon") * 1024 };
	} catch {
		return undefined;
	}
}

/** The daemon's ICE worker and wireguard-go children, by command line. */
function children(agent: LabAgent): { ice?: number; wg?: number } {
	const out: { ice?: number; wg?: number } = {};
	for (const pid of childPids(agent.pid)) {
		const cmd = cmdline(pid);
		if (cmd.includes("ice-worker")) out.ice = pid;
		else if (cmd.includes("wireguard-go")) out.wg = pid;
	}
	return out;
}

const mb = (bytes: number | undefined) => (bytes === undefined ? null : round(bytes / MB, 1));
const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number);

const loadAtStart = loadavg();
runLabBenchmark("overlay-rss", "mrss", async (lab) => {
	const lan = await lab.lan("lan", "198.18.44.0/24");
	log("starting management and signal in host ctl");
	const ctl = await startLabControlPlane(await lab.host("ctl", { lan }));
	log(`starting ${peers + 1} agent daemons with node flags [${nodeFlags.join(" ")}]`);
	const agents: LabAgent[] = [];
	for (const name of ["m", ...Array.from({ length: peers }, (_, i) => `p${i + 1}`)]) {
		agents.push(await startAgent(lab, lan, name, {}, nodeFlags));
	}
	const m = agents[0]!;
	const bare = m.host.spawn(NODE, [...nodeFlags, "-e", "setInterval(() => {}, 60_000)"], {
		name: "bare-node",
	});
	await sleep(2000);
	const afterStart = { daemon: memory(m.pid)!, bare: memory(bare.pid)! };
	const othersAfterStart = agents.slice(1).map((a) => memory(a.pid)!.rss);
	log(
		`after start: m's daemon ${mb(afterStart.daemon.rss)} MB, bare node ${mb(afterStart.bare.rss)} MB`,
	);

	log(`starling up on all ${agents.length} agents; sampling m while it negotiates`);
	const upStart = Date.now();
	let peak = {
		sum: 0,
		daemon: afterStart.daemon,
		ice: undefined as Memory | undefined,
		/** The worker's resident pages of the node binary, shared with the daemon (0: unreadable). */
		iceNodeBinary: 0,
	};
	let workerSeen = false;
	let sampling = true;
	const sampler = (async () => {
		while (sampling) {
			const daemon = memory(m.pid);
			const icePid = children(m).ice;
			const ice = memory(icePid);
			if (ice !== undefined) workerSeen = true;
			if (daemon !== undefined) {
				const sum = daemon.rss + (ice?.rss ?? 0);
				// Read at the sample: the worker is gone by the end.
				if (sum > peak.sum) {
					const iceNodeBinary = icePid === undefined ? 0 : nodeBinaryRss(icePid);
					peak = { sum, daemon, ice, iceNodeBinary };
				}
			}
			await sleep(200);
		}
	})();
	// Eleven registrations in a row: on a loaded machine one `up` can take over a minute.
	for (const a of agents) await a.up(ctl, 180_000);
	const s = await m.waitConnected(peers, 180_000);
	log(
		`m has ${s.peers_connected}/${s.peers_total} peers connected after ${Date.now() - upStart} ms`,
	);
	// The others too (a full mesh): then nothing is negotiating any more.
	for (const a of agents.slice(1)) await a.waitConnected(peers, 240_000);
	const meshMs = Date.now() - upStart;
	sampling = false;
	await sampler;
	const bareWhileNegotiating = memory(bare.pid)!;
	log(
		`full mesh connected after ${meshMs} ms; peak daemon + worker ${mb(peak.sum)} MB; idle for ${idleSeconds} s`,
	);
	await sleep(idleSeconds * 1000);
	const again = await m.status();
	if (again.peers_connected !== peers)
		throw new Error(`m has only ${again.peers_connected}/${peers} peers connected after idling`);

	const idle = agents.map((a) => {
		const c = children(a);
		return { daemon: memory(a.pid)!, ice: memory(c.ice), wg: memory(c.wg) };
	});
	const bareIdle = memory(bare.pid)!;
	const mIdle = idle[0]!;
	const loadAtEnd = loadavg();
	const sorted = (xs: number[]) => [...xs].sort((x, y) => x - y);
	const range = (xs: number[]) => {
		const s = sorted(xs);
		return { min: mb(s[0]), p50: mb(percentile(s, 50)), max: mb(s.at(-1)) };
	};
	return {
		bench: "overlay-rss",
		what: "agent daemon memory (VmRSS, MB) with 10 connected peers, and daemon + ICE worker while negotiating, beside a bare node -e started with the same flags in the same run",
		node: process.version,
		node_flags: nodeFlags.join(" "),
		node_flags_from:
			flagsOverride === undefined
				? "daemon/node-flags.ts (the systemd unit's)"
				: "BENCH_AGENT_NODE_FLAGS",
		peers,
		idle_seconds: idleSeconds,
		full_mesh_connected_ms: meshMs,
		// 1. right after start, before `up`
		after_start_daemon_mb: mb(afterStart.daemon.rss),
		after_start_bare_node_mb: mb(afterStart.bare.rss),
		// 2. while negotiating: the sample with the largest daemon + worker
		negotiating_ice_worker_seen: workerSeen,
		negotiating_daemon_mb: mb(peak.daemon.rss),
		negotiating_ice_worker_mb: mb(peak.ice?.rss),
		negotiating_daemon_plus_ice_worker_mb: mb(peak.sum),
		// null when the worker's smaps could not be read at that sample (it was exiting).
		negotiating_daemon_plus_ice_worker_node_binary_once_mb:
			peak.ice !== undefined && peak.iceNodeBinary === 0 ? null : mb(peak.sum - peak.iceNodeBinary),
		negotiating_bare_node_mb: mb(bareWhileNegotiating.rss),
		ratio_negotiating_to_bare_node: round(peak.sum / bareWhileNegotiating.rss, 2),
		// 3. idle with `peers` connected peers
		idle_daemon_mb: mb(mIdle.daemon.rss),
		idle_daemon_anon_mb: mb(mIdle.daemon.anon),
		idle_ice_worker_running: mIdle.ice !== undefined,
		idle_ice_worker_mb: mb(mIdle.ice?.rss),
		idle_wireguard_go_mb: mb(mIdle.wg?.rss),
		idle_bare_node_mb: mb(bareIdle.rss),
		idle_bare_node_anon_mb: mb(bareIdle.anon),
		ratio_idle_daemon_to_bare_node: round(mIdle.daemon.rss / bareIdle.rss, 2),
		others_after_start_daemon_mb: range(othersAfterStart),
		others_idle_daemon_mb: range(idle.slice(1).map((x) => x.daemon.rss)),
		others_idle_ice_workers_running: idle.slice(1).filter((x) => x.ice !== undefined).length,
		target_idle_daemon_mb: TARGET_IDLE_MB,
		target_idle_met: mIdle.daemon.rss / MB <= TARGET_IDLE_MB,
		target_negotiating_daemon_plus_ice_worker_mb: TARGET_NEGOTIATING_MB,
		target_negotiating_met: peak.sum / MB <= TARGET_NEGOTIATING_MB,
		loadavg_at_start: loadAtStart,
		loadavg_at_end: loadAtEnd,
	};
});
