// P2P throughput across two NATs: iperf3 TCP between two Starling agents,
// each behind its own endpoint-independent NAT (lab router kind "eim":
// masquerade plus a drop of unsolicited inbound) on a simulated internet,
// over the P2P path ICE found (server-reflexive candidates from coturn),
// against plain wireguard-go with hand-set endpoints through the same NATs
// between the same two namespaces in the same run. Also the relayed path
// (the agent's relay fallback, with the relay in its own namespace on the
// internet) against the same baseline.
//
// Lab: "internet" 198.18.50.0/24 with the control plane (management, signal,
// coturn STUN) in host ctl and the relay in host relay; host a behind router
// r-a, host b behind router r-b.
// Baseline: wireguard-go `wgb0` in a and b, listen port 51900, endpoint = the
// other router's WAN address :51900 (Linux masquerade keeps the source port
// when it is free), persistent keepalive 1 s so both sides punch; MTU 1280
// like the agent's.
// P2P: both agents `starling up`; before each P2P run `starling status --json
// --detail` must show path_type "p2p" on both sides (and again after it).
// Relayed: the routers drop all forwarded UDP except the baseline's 51900 ↔
// 51900 (an extra nftables table), b goes `starling down`/`up`, ICE cannot
// connect and the agents stay on the relay (path_type "relayed" on both
// sides). The block is lifted and b goes down/up again for the next P2P runs.
// Per round: baseline b→a, a→b, P2P b→a, a→b, then relayed b→a, a→b.
// Figures: receiver's rate (iperf3 sum_received); per direction the mean over
// rounds and its ratio to the baseline's mean; the median of the per-run
// ratios (each run against the baseline run of the same round and direction).
// Usage: pnpm bench p2p-throughput [rounds=3] [seconds=10] [paths=p2p,relayed]
import { log, numberArg, round } from "./lib-control-plane.js";
import {
	baselinePair,
	cpuSeconds,
	iperf,
	type LabAgent,
	loadAverage,
	median,
	placeHost,
	type Router,
	runLabBenchmark,
	type StatusJson,
	sleep,
	startAgentIn,
	startHandMadeWireguard,
	startLabControlPlane,
	waitFor,
} from "./lib-lab.js";

const rounds = numberArg(1, "rounds", 3);
const seconds = numberArg(2, "seconds", 10);
const paths = (process.argv[4] ?? "p2p,relayed").split(",");
for (const p of paths) if (p !== "p2p" && p !== "relayed") throw new Error(`unknown path ${p}`);
const BASELINE_IF = "wgb0";
const BASELINE_PORT = 51900;
const MTU = 1280;
/** Extra router table that leaves only the baseline's UDP through, forcing the agents onto the relay. */
const RELAY_ONLY_TABLE = "bench_relay_only";

type PathName = "baseline" | "p2p" | "relayed";
type Direction = "b_to_a" | "a_to_b";

interface IperfRun {
	round: number;
	path: PathName;
	direction: Direction;
	mbps: number;
	retransmits: number;
	/** UDP receive-buffer drops in the receiving host during the run. */
	udp_rcvbuf_drops: number;
	/** Relay process CPU in cores during relayed runs. */
	relay_cpu?: number;
	/** The agent's path_type (b's view of a) after the run, for P2P and relayed runs. */
	path_after?: string;
}

/** The peer entry for `overlayIp` in `agent`'s detailed status. */
async function peerOf(agent: LabAgent, overlayIp: string) {
	const s: StatusJson = await agent.status();
	return s.peers?.find((p) => p.overlay_ip === overlayIp);
}

async function setRelayOnly(routers: Router[], on: boolean): Promise<void> {
	for (const r of routers) {
		const ruleset = on
			? [
					`table ip ${RELAY_ONLY_TABLE}`,
					`delete table ip ${RELAY_ONLY_TABLE}`,
					`table ip ${RELAY_ONLY_TABLE} {`,
					"\tchain forward {",
					"\t\ttype filter hook forward priority -5; policy accept;",
					`\t\tudp sport ${BASELINE_PORT} udp dport ${BASELINE_PORT} accept`,
					"\t\tmeta l4proto udp drop",
					"\t}",
					"}",
					"",
				].join("\n")
			: [`table ip ${RELAY_ONLY_TABLE}`, `delete table ip ${RELAY_ONLY_TABLE}`, ""].join("\n");
		await r.exec("nft", ["-f", "-"], { input: ruleset });
	}
}

const loadAtStart = loadAverage();
runLabBenchmark("p2p-throughput", "bp2p", async (lab) => {
	const internet = await lab.lan("inet", "198.18.50.0/24");
	let third = 51;
	const nextSubnet = () => `198.18.${third++}.0/24`;
	const relayHost = await lab.host("relay", { lan: internet });
	log("starting management, signal, coturn (ctl) and the relay (its own host)");
	const ctl = await startLabControlPlane(await lab.host("ctl", { lan: internet }), {
		stun: true,
		relay: relayHost,
	});
	const placedA = await placeHost(lab, internet, "eim", "a", nextSubnet);
	const placedB = await placeHost(lab, internet, "eim", "b", nextSubnet);
	const routers = [...placedA.routers, ...placedB.routers];
	const [a, b] = await Promise.all([startAgentIn(placedA.host), startAgentIn(placedB.host)]);
	log("starling up on a and b");
	await a.up(ctl);
	await b.up(ctl);
	const ipOfA = await a.overlayIp();
	const ipOfB = await b.overlayIp();

	/** Waits until both agents show `path` for each other and b's overlay ping reaches a. */
	const waitForPath = async (path: "p2p" | "relayed") => {
		const t0 = Date.now();
		const pathOf = (from: typeof a, label: string, toIp: string) =>
			waitFor(
				`${label} is ${path}`,
				async () => {
					const p = await peerOf(from, toIp);
					return p?.path_type === path ? p : undefined;
				},
				60_000,
				300,
			);
		const [pb, pa] = await Promise.all([
			pathOf(b, "b's path to a", ipOfA),
			pathOf(a, "a's path to b", ipOfB),
		]);
		await waitFor("overlay ping b→a", async () =>
			(await b.host.ping(ipOfA, { count: 1, timeoutSeconds: 1 })) ? true : undefined,
		);
		log(
			`  path ${path} after ${((Date.now() - t0) / 1000).toFixed(1)} s: b ${pb.local_endpoint || "-"} (${pb.local_candidate_type || "-"}) → ${pb.remote_endpoint} (${pb.remote_candidate_type || "-"}); a → ${pa.remote_endpoint}`,
		);
		return pb;
	};
	/** b goes down and up again (a fresh ICE attempt), once a has seen it go. */
	const bounceB = async () => {
		await b.down();
		await waitFor("a sees b go", async () => {
			const p = await peerOf(a, ipOfB);
			// Management's word (peer_online): with a relay, a keeps showing the peer as
			// relayed while WireGuard's last handshake is recent.
			return p && (p.peer_online === false || p.connection_state !== "connected")
				? true
				: undefined;
		});
		await b.up();
	};

	const p2pPeer = await waitForPath("p2p");
	const endpoints = {
		local: p2pPeer.local_endpoint,
		local_type: p2pPeer.local_candidate_type ?? "",
		remote: p2pPeer.remote_endpoint,
		remote_type: p2pPeer.remote_candidate_type ?? "",
	};

	const {
		addresses: [baseA, baseB],
		publicKeys: [pubA, pubB],
	} = await baselinePair([a.host, b.host], [`${ipOfA}/16`, `${ipOfB}/16`], BASELINE_IF);
	log(
		`baseline: wireguard-go ${BASELINE_IF} ${baseA} ↔ ${baseB}, endpoints ${placedB.publicAddress}:${BASELINE_PORT} / ${placedA.publicAddress}:${BASELINE_PORT}`,
	);
	await startHandMadeWireguard(a.host, {
		ifname: BASELINE_IF,
		listenPort: BASELINE_PORT,
		address: baseA,
		mtu: MTU,
		peer: {
			publicKey: pubB,
			endpoint: `${placedB.publicAddress}:${BASELINE_PORT}`,
			allowedIp: baseB,
			persistentKeepalive: 1,
		},
	});
	await startHandMadeWireguard(b.host, {
		ifname: BASELINE_IF,
		listenPort: BASELINE_PORT,
		address: baseB,
		mtu: MTU,
		peer: {
			publicKey: pubA,
			endpoint: `${placedA.publicAddress}:${BASELINE_PORT}`,
			allowedIp: baseA,
			persistentKeepalive: 1,
		},
	});
	await waitFor(
		"baseline tunnel answers ping",
		async () => ((await b.host.ping(baseA, { count: 1, timeoutSeconds: 1 })) ? true : undefined),
		30_000,
	);

	const server = a.host.spawn("iperf3", ["-s", "--forceflush"], { name: "iperf3-server" });
	await server.waitForOutput(/Server listening/, 10_000);
	const relayPid = ctl.relay!.pid;

	const runs: IperfRun[] = [];
	let pathChanged = 0;
	const measure = async (roundNo: number, path: PathName) => {
		const target = path === "baseline" ? baseA : ipOfA;
		for (const reverse of [false, true]) {
			const direction: Direction = reverse ? "a_to_b" : "b_to_a";
			log(`round ${roundNo}/${rounds}: ${path} ${direction.replace(/_/g, " ")} (${seconds} s)`);
			const cpu0 = cpuSeconds(relayPid);
			const t0 = performance.now();
			const r = await iperf(b.host, a.host, target, seconds, reverse);
			const relayCpu = (cpuSeconds(relayPid) - cpu0) / ((performance.now() - t0) / 1000);
			const run: IperfRun = {
				round: roundNo,
				path,
				direction,
				mbps: round(r.mbps, 1),
				retransmits: r.retransmits,
				udp_rcvbuf_drops: r.drops,
			};
			if (path === "relayed") run.relay_cpu = round(relayCpu);
			if (path !== "baseline") {
				run.path_after = (await peerOf(b, ipOfA))?.path_type ?? "";
				if (run.path_after !== path) {
					pathChanged++;
					log(`  WARNING: the path changed to "${run.path_after}" during the run`);
				}
			}
			runs.push(run);
			log(
				`  ${run.mbps} Mbit/s, ${r.retransmits} retransmits, ${r.drops} UDP receive-buffer drops${run.relay_cpu === undefined ? "" : `, relay CPU ${run.relay_cpu}`}`,
			);
			await sleep(500);
		}
	};

	let mode: "p2p" | "relayed" = "p2p";
	for (let i = 1; i <= rounds; i++) {
		if (mode !== "p2p" && paths.includes("p2p")) {
			log("lifting the UDP block; b down/up for a fresh ICE attempt");
			await setRelayOnly(routers, false);
			await bounceB();
			await waitForPath("p2p");
			mode = "p2p";
		}
		await measure(i, "baseline");
		if (paths.includes("p2p")) {
			const p = await peerOf(b, ipOfA);
			if (p?.path_type !== "p2p") throw new Error(`b's path to a is "${p?.path_type}", not p2p`);
			await measure(i, "p2p");
		}
		if (paths.includes("relayed")) {
			log("routers drop all UDP but the baseline's; b down/up, so the agents stay relayed");
			await setRelayOnly(routers, true);
			await bounceB();
			await waitForPath("relayed");
			mode = "relayed";
			await measure(i, "relayed");
		}
	}
	await setRelayOnly(routers, false);

	const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
	const pick = (path: PathName, direction?: Direction) =>
		runs.filter((r) => r.path === path && (direction === undefined || r.direction === direction));
	const figures: Record<string, number> = {};
	for (const path of ["p2p", "relayed"] as const) {
		if (!paths.includes(path)) continue;
		const perRun: number[] = [];
		for (const direction of ["b_to_a", "a_to_b"] as const) {
			const agent = mean(pick(path, direction).map((r) => r.mbps));
			const base = mean(pick("baseline", direction).map((r) => r.mbps));
			figures[`${path}_${direction}_mbps`] = round(agent, 1);
			figures[`${path}_ratio_${direction}`] = round(agent / base, 3);
			for (const r of pick(path, direction)) {
				const b0 = pick("baseline", direction).find((x) => x.round === r.round);
				if (b0) perRun.push(r.mbps / b0.mbps);
			}
		}
		figures[`${path}_ratio`] = round(
			mean(pick(path).map((r) => r.mbps)) / mean(pick("baseline").map((r) => r.mbps)),
			3,
		);
		figures[`${path}_ratio_median`] = round(median(perRun), 3);
		if (path === "relayed")
			figures.relay_cpu_cores = round(mean(pick("relayed").map((r) => r.relay_cpu ?? 0)));
	}
	for (const direction of ["b_to_a", "a_to_b"] as const)
		figures[`baseline_${direction}_mbps`] = round(
			mean(pick("baseline", direction).map((r) => r.mbps)),
			1,
		);
	const result = {
		bench: "p2p-throughput",
		rounds,
		seconds,
		mtu: MTU,
		nat: "eim/eim",
		...figures,
		target_p2p_ratio: 0.95,
		target_relayed_ratio: 0.5,
		p2p_path: endpoints,
		runs_with_path_change: pathChanged,
		loadavg_1m_at_start: loadAtStart,
		loadavg_1m_at_end: loadAverage(),
		runs,
	};
	return result;
});
