// Agent daemon memory when idle with 10 peers. A lab with 11 agents on one
// LAN (198.18.44.0/24: the measured agent m and p1..p10) and the control plane
// in a twelfth host. Baseline: VmRSS of m's daemon right after it started,
// before `up`. Then all 11 agents `starling up` (a full mesh: every agent has
// 10 peers), and once m shows 10 peers connected and everything has been idle
// for `idle` seconds: VmRSS of m's daemon (from /proc/<pid>/status), of its
// ICE worker child process (reported separately and summed with the daemon),
// and for information of the wireguard-go it runs. The other ten daemons are
// measured the same way (range).
// "daemon + ICE worker, node binary once" subtracts the worker's resident
// pages of the node binary, which it shares with the daemon.
// BENCH_AGENT_NODE_OPTIONS=... sets NODE_OPTIONS for the daemons (and so for
// their ICE workers, which inherit the environment), to try V8 flags.
// Usage: pnpm bench overlay-rss [peers=10] [idle=10]
import { readFileSync } from "node:fs";
import { log, numberArg, percentile, round } from "./lib-control-plane.js";
import {
	childPids,
	cmdline,
	type LabAgent,
	nodeBinaryRss,
	runLabBenchmark,
	sleep,
	startAgent,
	startLabControlPlane,
} from "./lib-lab.js";

const peers = numberArg(1, "peers", 10);
const idleSeconds = numberArg(2, "idle seconds", 10);
const MB = 2 ** 20;
const nodeOptions = process.env.BENCH_AGENT_NODE_OPTIONS ?? "";

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

const loadAtStart = Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
runLabBenchmark("overlay-rss", "brss", async (lab) => {
	const lan = await lab.lan("lan", "198.18.44.0/24");
	log("starting management and signal in host ctl");
	const ctl = await startLabControlPlane(await lab.host("ctl", { lan }));
	log(`starting ${peers + 1} agent daemons`);
	const agents: LabAgent[] = [];
	for (const name of ["m", ...Array.from({ length: peers }, (_, i) => `p${i + 1}`)]) {
		agents.push(await startAgent(lab, lan, name, nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}));
	}
	await sleep(2000);
	const m = agents[0]!;
	const before = agents.map((a) => memory(a.pid)!);
	log(`m's daemon (pid ${m.pid}) right after start: ${mb(before[0]!.rss)} MB`);

	log(`starling up on all ${agents.length} agents`);
	const upStart = Date.now();
	for (const a of agents) await a.up(ctl);
	const s = await m.waitConnected(peers, 180_000);
	log(
		`m has ${s.peers_connected}/${s.peers_total} peers connected after ${Date.now() - upStart} ms`,
	);
	// The others too (a full mesh), so that nothing is still negotiating.
	for (const a of agents.slice(1)) await a.waitConnected(peers, 120_000);
	log(`full mesh connected after ${Date.now() - upStart} ms; idle for ${idleSeconds} s`);
	await sleep(idleSeconds * 1000);
	const again = await m.status();
	if (again.peers_connected !== peers)
		throw new Error(`m has only ${again.peers_connected}/${peers} peers connected after idling`);

	const after = agents.map((a) => {
		const c = children(a);
		return { daemon: memory(a.pid)!, ice: memory(c.ice), wg: memory(c.wg) };
	});
	const mAfter = after[0]!;
	const sumM = mAfter.daemon.rss + (mAfter.ice?.rss ?? 0);
	const iceShared = children(m).ice;
	const sumUnique = sumM - (iceShared === undefined ? 0 : nodeBinaryRss(iceShared));
	const sorted = (xs: number[]) => [...xs].sort((x, y) => x - y);
	const others = sorted(after.slice(1).map((x) => x.daemon.rss));
	const othersSum = sorted(after.slice(1).map((x) => x.daemon.rss + (x.ice?.rss ?? 0)));
	const result = {
		bench: "overlay-rss",
		...(nodeOptions ? { node_options: nodeOptions } : {}),
		peers,
		idle_seconds: idleSeconds,
		daemon_rss_mb: mb(mAfter.daemon.rss),
		daemon_anon_mb: mb(mAfter.daemon.anon),
		ice_worker_running: mAfter.ice !== undefined,
		ice_worker_rss_mb: mb(mAfter.ice?.rss),
		ice_worker_anon_mb: mb(mAfter.ice?.anon),
		daemon_plus_ice_worker_mb: mb(sumM),
		daemon_plus_ice_worker_node_binary_once_mb: mb(sumUnique),
		wireguard_go_rss_mb: mb(mAfter.wg?.rss),
		baseline_daemon_rss_after_start_mb: mb(before[0]!.rss),
		baseline_daemon_anon_after_start_mb: mb(before[0]!.anon),
		ratio_daemon_to_baseline: round(mAfter.daemon.rss / before[0]!.rss, 2),
		target_mb: 80,
		others_daemon_rss_mb: {
			min: mb(others[0]),
			p50: mb(percentile(others, 50)),
			max: mb(others.at(-1)),
		},
		others_daemon_plus_ice_worker_mb: {
			min: mb(othersSum[0]),
			p50: mb(percentile(othersSum, 50)),
			max: mb(othersSum.at(-1)),
		},
		others_baseline_rss_mb: {
			min: mb(Math.min(...before.slice(1).map((b) => b.rss))),
			max: mb(Math.max(...before.slice(1).map((b) => b.rss))),
		},
		loadavg_1m_at_start: loadAtStart,
	};
	return result;
});
