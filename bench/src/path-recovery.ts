// Path recovery, timed (issue 11): how long traffic stops when the direct
// path between two agents dies, as a user sees it.
//
// Lab: "internet" 198.18.100.0/24 with management, signal and STUN in host
// ctl and the relay in host relay; agents pa and pb each behind its own home
// NAT (endpoint-independent mapping, unsolicited inbound dropped: placeHost
// "eim"), so their direct path is a hole punched by ICE. pa pings pb's
// overlay address; every sample starts on a direct path (both daemons logged
// "direct path up" and no "path down" since).
//
// Case A, cut on an idle path: the direct path is idle for idle_s (longer
// than the 15 s a probe stays active after traffic, so nothing watches it); pa's
// router starts dropping UDP to and from pb's public address (nft, a table
// of its own); 1 s later pa starts pinging every 100 ms. Figure: time from
// the first echo request to the first answer. The cut is removed 1 s after
// that answer and the sample ends when the direct path is back.
// Case B, NAT rebinding under traffic: pa pings every 100 ms for window_s;
// 3 s in, pa's router moves its UDP mappings to a public address it never
// used (an snat rule ahead of its masquerade, and its UDP conntrack entries
// deleted: every UDP flow leaves from the new address from its next packet
// on; each sample a fresh address, so pb's NAT has no mapping for it; the
// path has been up for 31 s, as a stable path is). TCP flows (signal, relay) keep their
// mappings: this times the direct path, not a reconnect of signal or relay.
// Figure: the longest time without an answer in the window.
//
// Baseline, in the same run, one sample before each faulty one, the same
// work without the fault: case A's is the same idle path, the same ping
// started the same way, time to the first answer (what the user sees when
// nothing broke); case B's is the longest time without an answer in a
// window of the same length with no fault (the ping interval plus jitter).
// Target (issue 11): ≤ 3 s p95 in both cases.
// Usage: pnpm bench path-recovery [samples=10] [idle_s=20] [window_s=15]
import { log, numberArg, percentile, round } from "./lib-control-plane.js";
import {
	daemonLogTime,
	type LabAgent,
	loadAverage,
	placeHost,
	type Router,
	runLabBenchmark,
	sleep,
	startAgentIn,
	startLabControlPlane,
	waitFor,
} from "./lib-lab.js";

const samples = numberArg(1, "samples", 10);
if (samples > 50) {
	process.stderr.write("bench: at most 50 samples (case B uses a fresh public address for each)\n");
	process.exit(2);
}
// Longer than a probe stays active after traffic (15 s, path-probe.ts): no probe runs at the cut.
const idleMs = numberArg(2, "idle seconds", 20) * 1000;
const windowS = numberArg(3, "window seconds", 15);
const TARGET_MS = 3_000;
const PING_INTERVAL_S = 0.1;
/** Case A gives up on an answer after this long. */
const CASE_A_GIVE_UP_S = 20;
/** Case B's fault comes this long into the window. */
const FAULT_AT_MS = 3_000;
/** A direct path must be back within this long after a sample (ICE backs off after a failure). */
const DIRECT_AGAIN_MS = 120_000;
/** The second public address pa's router moves its UDP mappings to. */
/** Case B's sample i moves pa's UDP mappings to 198.18.100.(MOVED_ADDRESS_BASE + i). */
const MOVED_ADDRESS_BASE = 200;
/** A path younger than this that dies makes ICE back off (conn's stableConnectionMs, plus margin). */
const STABLE_PATH_MS = 31_000;
const CUT_TABLE = "bench_cut";
const MOVE_TABLE = "bench_move";

/** Epoch ms of every echo reply in `ping -D` output. */
function replyTimes(output: string): number[] {
	return [...output.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)].map((m) => Number(m[1]) * 1000);
}

/** The longest time in [from, to] without an answer, given the answers' times. */
function longestGap(replies: number[], from: number, to: number): number {
	const marks = [from, ...replies.filter((t) => t > from && t < to), to];
	let longest = 0;
	for (let i = 1; i < marks.length; i++) longest = Math.max(longest, marks[i]! - marks[i - 1]!);
	return longest;
}

/** True when `agent`'s last "direct path up" for `peer` came after its last "path down". */
function onDirectPath(agent: LabAgent, peer: string): boolean {
	const up = daemonLogTime(agent.daemon.output(), "direct path up", peer, 0, "last");
	if (up === undefined) return false;
	return daemonLogTime(agent.daemon.output(), "path down", peer, up, "last") === undefined;
}

function summary(xs: number[]) {
	const sorted = [...xs].sort((a, b) => a - b);
	return {
		samples_ms: xs.map((x) => round(x, 0)),
		p50_ms: round(percentile(sorted, 50), 0),
		p95_ms: round(percentile(sorted, 95), 0),
		max_ms: round(sorted[sorted.length - 1] ?? Number.NaN, 0),
	};
}

const loadAtStart = loadAverage();
const startedAt = Date.now();
const progress = (message: string) =>
	log(`[${Math.round((Date.now() - startedAt) / 1000)} s] ${message}`);

runLabBenchmark("path-recovery", "pathrb", async (lab) => {
	const internet = await lab.lan("inet", "198.18.100.0/24");
	let third = 101;
	const nextSubnet = () => `198.18.${third++}.0/24`;
	const relayHost = await lab.host("relay", { lan: internet });
	progress("starting management, signal, STUN (ctl) and the relay");
	const ctl = await startLabControlPlane(await lab.host("ctl", { lan: internet }), {
		stun: true,
		relay: relayHost,
	});
	const placedA = await placeHost(lab, internet, "eim", "pa", nextSubnet);
	const placedB = await placeHost(lab, internet, "eim", "pb", nextSubnet);
	const routerA: Router = placedA.routers[0]!;
	const [a, b] = await Promise.all([startAgentIn(placedA.host), startAgentIn(placedB.host)]);
	await a.up(ctl);
	await b.up(ctl);
	const ipOfB = await b.overlayIp();

	/**
	 * Waits until both daemons are on a direct path (a sample's fault may not have
	 * taken the old one down: see path_down in the output); returns when the later
	 * one got there.
	 */
	const directPath = async (what: string): Promise<number> => {
		await waitFor(
			`${what}: direct path between pa and pb`,
			async () => (onDirectPath(a, "pb") && onDirectPath(b, "pa") ? true : undefined),
			DIRECT_AGAIN_MS,
			250,
		);
		return Math.max(
			daemonLogTime(a.daemon.output(), "direct path up", "pb", 0, "last")!,
			daemonLogTime(b.daemon.output(), "direct path up", "pa", 0, "last")!,
		);
	};
	progress("waiting for the first direct path");
	let directSince = await directPath("start");

	/**
	 * A ping stream started now: when its first request went, its first answer in ms after
	 * that, and that answer's round trip (through the relay after a fallback).
	 */
	const firstAnswer = async (): Promise<{
		startAt: number;
		answerMs: number | undefined;
		rttMs: number | undefined;
	}> => {
		const out = await a.host.exec(
			"sh",
			[
				"-c",
				// The start time is taken in the shell, right before ping sends its first request.
				`date +%s%N; exec ping -n -D -i ${PING_INTERVAL_S} -c 1 -w ${CASE_A_GIVE_UP_S} ${ipOfB}`,
			],
			{ allowFailure: true, timeoutMs: (CASE_A_GIVE_UP_S + 10) * 1000 },
		);
		const start = Number(out.stdout.split("\n")[0]) / 1e6;
		const reply = replyTimes(out.stdout)[0];
		const rtt = /time=([\d.]+) ms/.exec(out.stdout)?.[1];
		return {
			startAt: start,
			answerMs: reply === undefined ? undefined : reply - start,
			rttMs: rtt === undefined ? undefined : Number(rtt),
		};
	};

	/** When pa's daemon dropped the direct path to pb at or after `since`, in ms after it. */
	const pathDownAfter = (since: number): number | undefined => {
		const at = daemonLogTime(a.daemon.output(), "path down", "pb", since);
		return at === undefined ? undefined : at - since;
	};

	/** A ping stream of window_s; `fault` runs FAULT_AT_MS in. Returns the longest silence. */
	const pingWindow = async (fault?: () => Promise<void>): Promise<number> => {
		const stream = a.host.exec(
			"sh",
			["-c", `date +%s%N; exec ping -n -D -i ${PING_INTERVAL_S} -w ${windowS} ${ipOfB}`],
			{ allowFailure: true, timeoutMs: (windowS + 10) * 1000 },
		);
		if (fault) {
			await sleep(FAULT_AT_MS);
			await fault();
		}
		const out = await stream;
		const start = Number(out.stdout.split("\n")[0]) / 1e6;
		return longestGap(replyTimes(out.stdout), start, start + windowS * 1000);
	};

	const cutUdp = (on: boolean) =>
		on
			? routerA.exec("nft", ["-f", "-"], {
					input: `table ip ${CUT_TABLE} {
	chain forward {
		type filter hook forward priority -10; policy accept;
		ip daddr ${placedB.publicAddress} meta l4proto udp drop
		ip saddr ${placedB.publicAddress} meta l4proto udp drop
	}
}
`,
				})
			: routerA.exec("nft", ["delete", "table", "ip", CUT_TABLE]);

	/**
	 * Moves pa's UDP mappings to public address `address` (new to the lab: the
	 * peer's NAT has never seen it), replacing the previous move.
	 */
	const movePublicAddress = async (address: string) => {
		await routerA.exec("ip", ["addr", "add", `${address}/24`, "dev", "wan"]);
		await routerA.exec("nft", ["-f", "-"], {
			input: `table ip ${MOVE_TABLE}
delete table ip ${MOVE_TABLE}
table ip ${MOVE_TABLE} {
	chain postrouting {
		type nat hook postrouting priority srcnat - 1; policy accept;
		oifname "wan" meta l4proto udp snat to ${address}
	}
}
`,
		});
		// Existing UDP mappings would keep their address: delete them (conntrack exits 1 when none).
		await routerA.exec("conntrack", ["-D", "-p", "udp"], { allowFailure: true });
	};

	const caseA: number[] = [];
	const caseABaseline: number[] = [];
	const caseADirectAgain: number[] = [];
	const caseAPathDown: (number | undefined)[] = [];
	const caseAAnswerRtt: (number | undefined)[] = [];
	for (let i = 1; i <= samples; i++) {
		await sleep(idleMs);
		const normal = (await firstAnswer()).answerMs;
		if (normal === undefined) throw new Error("case A baseline: no answer on a healthy path");
		caseABaseline.push(normal);
		// Idle again before the fault, as long as before the baseline.
		await sleep(idleMs);
		await cutUdp(true);
		await sleep(1_000);
		const { startAt, answerMs: faulty, rttMs } = await firstAnswer();
		caseAAnswerRtt.push(rttMs);
		await sleep(1_000);
		await cutUdp(false);
		const cutRemoved = Date.now();
		if (faulty === undefined) throw new Error(`case A: no answer within ${CASE_A_GIVE_UP_S} s`);
		caseA.push(faulty);
		caseAPathDown.push(pathDownAfter(startAt));
		const directAt = await directPath(`case A sample ${i}`);
		directSince = directAt;
		caseADirectAgain.push(directAt - cutRemoved);
		progress(
			`case A ${i}/${samples}: first answer ${round(faulty, 0)} ms (healthy path: ${round(normal, 1)} ms); path down after ${round(caseAPathDown.at(-1) ?? Number.NaN, 0)} ms, answer's round trip ${rttMs} ms; direct again ${round((directAt - cutRemoved) / 1000, 1)} s after the cut went`,
		);
	}

	const caseB: number[] = [];
	const caseBBaseline: number[] = [];
	const caseBDirectAgain: number[] = [];
	const caseBPathDown: (number | undefined)[] = [];
	for (let i = 1; i <= samples; i++) {
		// The fault hits a path that has been up long enough to count as stable (as in case A,
		// whose idle spells are longer): ICE then retries at once instead of backing off.
		await sleep(directSince + STABLE_PATH_MS - FAULT_AT_MS - windowS * 1000 - Date.now());
		const normal = await pingWindow();
		caseBBaseline.push(normal);
		let faultAt = 0;
		const faulty = await pingWindow(async () => {
			faultAt = Date.now();
			await movePublicAddress(`198.18.100.${MOVED_ADDRESS_BASE + i}`);
		});
		caseB.push(faulty);
		caseBPathDown.push(pathDownAfter(faultAt));
		const directAt = await directPath(`case B sample ${i}`);
		directSince = directAt;
		caseBDirectAgain.push(directAt - faultAt);
		progress(
			`case B ${i}/${samples}: longest silence ${round(faulty, 0)} ms (no fault: ${round(normal, 0)} ms); path down ${round(caseBPathDown.at(-1) ?? Number.NaN, 0)} ms after the move; direct again ${round((directAt - faultAt) / 1000, 1)} s after the move`,
		);
	}

	const a95 = summary(caseA).p95_ms;
	const b95 = summary(caseB).p95_ms;
	return {
		bench: "path-recovery",
		node: process.version,
		load_average_start: loadAtStart,
		load_average_end: loadAverage(),
		samples,
		idle_s: idleMs / 1000,
		window_s: windowS,
		ping_interval_ms: PING_INTERVAL_S * 1000,
		target_p95_ms: TARGET_MS,
		cut_idle_path: {
			what: "UDP between the two NATs dropped on pa's router while the direct path is idle; then pa pings pb every 100 ms: ms from the first request to the first answer",
			...summary(caseA),
			baseline: {
				what: "the same ping started the same way on the same idle, healthy direct path: ms to the first answer",
				...summary(caseABaseline),
			},
			ratio_p95: round(a95 / summary(caseABaseline).p95_ms, 1),
			path_down_after_first_request_ms: caseAPathDown.map((x) =>
				x === undefined ? null : round(x, 0),
			),
			first_answer_round_trip_ms: caseAAnswerRtt.map((x) => (x === undefined ? null : x)),
			direct_again_after_cut_removed_s: caseADirectAgain.map((x) => round(x / 1000, 1)),
			target_met: a95 <= TARGET_MS,
		},
		nat_rebinding: {
			what: `pa pings pb every 100 ms for ${windowS} s; ${FAULT_AT_MS / 1000} s in, pa's NAT moves its UDP mappings to another public address: the longest time without an answer`,
			...summary(caseB),
			baseline: {
				what: `the longest time without an answer in a ${windowS} s window of the same ping with no fault`,
				...summary(caseBBaseline),
			},
			ratio_p95: round(b95 / summary(caseBBaseline).p95_ms, 1),
			path_down_after_move_ms: caseBPathDown.map((x) => (x === undefined ? null : round(x, 0))),
			direct_again_after_move_s: caseBDirectAgain.map((x) => round(x / 1000, 1)),
			target_met: b95 <= TARGET_MS,
		},
	};
});
