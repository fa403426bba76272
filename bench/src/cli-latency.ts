// How long `starling status` and `starling version` take from the release
// build, beside a bare `node -e 0` of the same node binary in the same run.
//
// Set-up: a lab LAN with the control plane in host ctl and agent m. By
// default ten more peers are registered with management (`starling login`,
// one short-lived daemon after the other, each with its own key) and m goes
// up: m's daemon is up with 10 peers in its map and status (offline). With
// BENCH_CLI_FULL_MESH=1 it is the overlay-rss set-up instead: 11 daemons up,
// m has 10 peers connected (heavy: 11 daemons and ICE workers on the machine).
// The daemons are the repository build (dist/); the CLI measured is the
// release tarball (`pnpm release:agent` makes it), extracted to a temporary
// directory, run inside host m against m's daemon.
//
// Inside m one node process (the harness) runs, `runs` rounds, each command
// once per round, the order rotated every round (spawnSync, wall time from
// spawn to exit; the same harness overhead for every command):
//   node_e0                bin/node -e 0                            the baseline
//   status                 bin/starling status                      compile cache warm
//   version                bin/starling version                     compile cache warm
//   status_no_cache        bin/starling status, STARLING_COMPILE_CACHE=off
//   status_repo_build      node apps/agent/dist/cli/main.js status  for information
//   status_compare         BENCH_CLI_COMPARE=<extracted release>/bin/starling status,
//                          e.g. the release of the main branch before this work
// The compile cache lives in a temporary directory, filled by one untimed run
// of each command first. Target: status p50 <= 2 x node_e0 p50.
// Usage: pnpm release:agent && pnpm bench cli-latency [runs=30]
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { log, numberArg, percentile, repoRoot, round } from "./lib-control-plane.js";
import {
	AGENT_ENV,
	CLI,
	type LabAgent,
	NODE,
	runLabBenchmark,
	startAgent,
	startAgentIn,
	startLabControlPlane,
	waitFor,
} from "./lib-lab.js";

const runs = numberArg(1, "runs", 30);
const PEERS = 10;
const compare = process.env.BENCH_CLI_COMPARE;
const fullMesh = process.env.BENCH_CLI_FULL_MESH === "1";

const { version } = JSON.parse(readFileSync(join(repoRoot, "apps/agent/package.json"), "utf8"));
const tarball = join(repoRoot, `dist/release/starling-agent-${version}-linux-x64.tar.gz`);
if (!existsSync(tarball)) {
	process.stderr.write(`bench: ${tarball} is missing: run 'pnpm release:agent' first\n`);
	process.exit(2);
}
if (compare && !existsSync(join(compare, "bin/starling"))) {
	process.stderr.write(`bench: BENCH_CLI_COMPARE=${compare} has no bin/starling\n`);
	process.exit(2);
}

/** The harness run inside host m: argv[1] is JSON {runs, commands}; prints {name: [ms...]}. */
const HARNESS = `
const { spawnSync } = require("node:child_process");
const { runs, commands } = JSON.parse(process.argv[1]);
const times = Object.fromEntries(commands.map((c) => [c.name, []]));
const once = (c) => {
	const t0 = process.hrtime.bigint();
	const r = spawnSync(c.argv[0], c.argv.slice(1), { env: { ...process.env, ...c.env }, stdio: ["ignore", "pipe", "pipe"] });
	const ms = Number(process.hrtime.bigint() - t0) / 1e6;
	if (r.status !== 0) throw new Error(c.name + " exited " + r.status + ": " + r.stderr);
	return ms;
};
for (const c of commands) once(c);
for (let i = 0; i < runs; i++) {
	for (let k = 0; k < commands.length; k++) {
		const c = commands[(i + k) % commands.length];
		times[c.name].push(once(c));
	}
}
process.stdout.write(JSON.stringify(times));
`;

const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number);

const work = mkdtempSync(join(tmpdir(), "starling-cli-latency-"));
execFileSync("tar", ["-C", work, "-xzf", tarball]);
const release = join(work, `starling-agent-${version}-linux-x64`);
const releaseNode = join(release, "bin/node");
const releaseCli = join(release, "bin/starling");
const cache = { STARLING_COMPILE_CACHE: join(work, "compile-cache") };

const loadAtStart = loadavg();
runLabBenchmark("cli-latency", "clilat", async (lab) => {
	try {
		const lan = await lab.lan("lan", "198.18.46.0/24");
		log("starting management and signal in host ctl");
		const ctl = await startLabControlPlane(await lab.host("ctl", { lan }));
		const upArgs = ["up", "--management-url", ctl.url, "--setup-key", ctl.setupKey];
		const m = await startAgent(lab, lan, "m");
		let wanted: number;
		if (fullMesh) {
			log(`starting ${PEERS} more agent daemons; all ${PEERS + 1} go up (a full mesh)`);
			const agents: LabAgent[] = [m];
			for (let i = 1; i <= PEERS; i++) agents.push(await startAgent(lab, lan, `p${i}`));
			for (const a of agents) {
				// LabAgent.up allows 60 s; on a loaded 2-core machine eleven daemons take longer.
				const r = await a.cli(upArgs, 300_000);
				if (r.exitCode !== 0) throw new Error(`${a.name}: starling up failed: ${r.stderr.trim()}`);
			}
			wanted = PEERS;
		} else {
			// Ten peers registered with management (`starling login`, each with its own
			// state folder and key, one short-lived daemon after the other in host p),
			// then m goes up: m's map and status hold 10 peers, none of them online.
			log(`registering ${PEERS} peers in host p, one daemon after the other`);
			const p = await lab.host("p", { lan });
			for (let i = 1; i <= PEERS; i++) {
				const env = {
					STARLING_DATA_DIR: `/var/lib/starling/p${i}`,
					STARLING_SOCKET: `/var/lib/starling/p${i}.sock`,
				};
				const peer = await startAgentIn(p, env);
				const r = await p.exec(
					NODE,
					[CLI, "login", "--management-url", ctl.url, "--setup-key", ctl.setupKey],
					{
						env,
						allowFailure: true,
						timeoutMs: 300_000,
					},
				);
				await peer.daemon.kill();
				if (r.exitCode !== 0) throw new Error(`p${i}: starling login failed: ${r.stderr.trim()}`);
			}
			const r = await m.cli(upArgs, 300_000);
			if (r.exitCode !== 0) throw new Error(`m: starling up failed: ${r.stderr.trim()}`);
			wanted = 0;
		}
		const s = await waitFor(
			`m: ${PEERS} peers in its status, ${wanted} connected`,
			async () => {
				const st = await m.status();
				return st.peers_total === PEERS && st.peers_connected >= wanted ? st : undefined;
			},
			300_000,
			500,
		);
		log(`m has ${s.peers_total} peers, ${s.peers_connected} connected`);

		// What the release CLI itself reports, as a check that it reads the same daemon.
		const shown = await m.host.exec(releaseCli, ["status", "--json"], { env: { ...AGENT_ENV } });
		const shownJson = JSON.parse(shown.stdout) as { peers_total: number; peers_connected: number };
		if (shownJson.peers_total !== PEERS) {
			throw new Error(`the release CLI shows ${shownJson.peers_total} peers, expected ${PEERS}`);
		}

		const commands = [
			{ name: "node_e0", argv: [releaseNode, "-e", "0"], env: {} },
			{ name: "status", argv: [releaseCli, "status"], env: cache },
			{ name: "version", argv: [releaseCli, "version"], env: cache },
			{
				name: "status_no_cache",
				argv: [releaseCli, "status"],
				env: { STARLING_COMPILE_CACHE: "off" },
			},
			{ name: "status_repo_build", argv: [NODE, CLI, "status"], env: cache },
			...(compare
				? [{ name: "status_compare", argv: [join(compare, "bin/starling"), "status"], env: {} }]
				: []),
		];
		log(`${runs} rounds of ${commands.map((c) => c.name).join(", ")} in host m`);
		const loadBefore = loadavg();
		const harness = await m.host.exec(
			releaseNode,
			["-e", HARNESS, JSON.stringify({ runs, commands })],
			{
				env: { ...AGENT_ENV },
				timeoutMs: 30 * 60_000,
			},
		);
		const loadAfter = loadavg();
		const times = JSON.parse(harness.stdout) as Record<string, number[]>;
		const stats = (name: string) => {
			const sorted = [...(times[name] ?? [])].sort((a, b) => a - b);
			return { p50_ms: round(percentile(sorted, 50), 1), p95_ms: round(percentile(sorted, 95), 1) };
		};
		const summary = Object.fromEntries(Object.keys(times).map((n) => [n, stats(n)]));
		const base = summary.node_e0 as { p50_ms: number; p95_ms: number };
		const ratio = (name: string) => {
			const s = summary[name];
			return s
				? { p50: round(s.p50_ms / base.p50_ms, 2), p95: round(s.p95_ms / base.p95_ms, 2) }
				: undefined;
		};
		const statusRatio = ratio("status") as { p50: number; p95: number };
		return {
			bench: "cli-latency",
			what: "wall ms from spawn to exit inside lab host m (daemon up, 10 peers; see set_up), release build's bin/starling beside its own bin/node -e 0, interleaved",
			node: execFileSync(releaseNode, ["--version"], { encoding: "utf8" }).trim(),
			runs,
			set_up: fullMesh
				? "full mesh: 11 daemons up, m has 10 peers connected"
				: "m up with 10 other peers registered (login only, offline): 10 peers in m's status",
			peers_total: shownJson.peers_total,
			peers_connected: shownJson.peers_connected,
			...summary,
			ratio_to_node_e0: Object.fromEntries(Object.keys(times).map((n) => [n, ratio(n)])),
			target: "status p50 <= 2 x node_e0 p50",
			target_met: statusRatio.p50 <= 2,
			...(compare ? { compare_release: compare } : {}),
			loadavg_at_start: loadAtStart,
			loadavg_before_timing: loadBefore,
			loadavg_after_timing: loadAfter,
		};
	} finally {
		rmSync(work, { recursive: true, force: true });
	}
});
