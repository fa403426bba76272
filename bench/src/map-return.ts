// A peer coming back into the network map: the time from the REST change
// that re-enables the Default policy to the first answered overlay ping
// between two agents behind home NATs.
//
// Lab: "internet" 198.18.60.0/24 with the control plane (management, signal,
// coturn STUN) in host ctl and the relay in host relay; agents a and b, each
// behind its own endpoint-independent NAT router ("eim", a home router).
// Both `starling up` and connect. Each iteration: PUT the Default policy
// with enabled=false and wait until both agents list no peer and their
// WireGuard has none; then t0; a loop in a pings b's overlay address every
// 50 ms (`ping -D` timestamps the first reply; while a has no WireGuard peer
// for b, ping fails at once and the loop retries 50 ms later) while the PUT
// with enabled=true goes out. Figure: first reply − t0. Also per iteration
// (ms after t0): the REST call's return, "peer added" in a's and b's logs
// (the map reached them), "direct path up" in a's log, and whether the first
// reply came before or after that (relay or direct).
//
// Baseline, interleaved in the same hosts and run: the same peer leaving and
// coming back at the WireGuard level with everything known in advance — a
// hand-made wireguard-go pair across the same two NATs (port 51900, the other
// router's WAN address as endpoint, persistent keepalive 1 s so both sides
// punch their NAT, as in p2p-throughput): `wg set … peer X remove` on both
// sides; t0; the peer re-added on both sides at once; a pings b every 50 ms;
// first reply − t0.
// Targets (issue 11): p50 ≤ 1.5 s, p99 ≤ 2.5 s.
// Usage: pnpm bench map-return [iterations=20]
import { log, numberArg, percentile, round } from "./lib-control-plane.js";
import {
	baselinePair,
	type LabAgent,
	loadAverage,
	placeHost,
	runLabBenchmark,
	sleep,
	startAgentIn,
	startHandMadeWireguard,
	startLabControlPlane,
	waitFor,
} from "./lib-lab.js";

const iterations = numberArg(1, "iterations", 20);
const PING_INTERVAL_S = 0.05;
const PING_GIVE_UP_S = 20;
const BASELINE_IF = "wgb0";
const BASELINE_PORT = 51900;
const MTU = 1280;
const TARGET_P50_MS = 1500;
const TARGET_P99_MS = 2500;

const pingLoop = (target: string) =>
	`until ping -n -D -i ${PING_INTERVAL_S} -c 1 -w 1 ${target}; do sleep ${PING_INTERVAL_S}; done`;

/** Epoch ms of the first reply in `ping -D` output, or undefined. */
function firstReplyAt(output: string): number | undefined {
	const m = /^\[(\d+\.\d+)\] \d+ bytes from/m.exec(output);
	return m ? Number(m[1]) * 1000 : undefined;
}

/** Epoch ms of the first daemon log line `msg` at or after `since`. */
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

interface PolicyJson {
	id: string;
	name: string;
	description: string;
	enabled: boolean;
	rules: {
		id: string;
		name: string;
		description: string;
		enabled: boolean;
		action: string;
		bidirectional: boolean;
		protocol: string;
		ports?: string[];
		port_ranges?: unknown[];
		sources: { id: string }[];
		destinations: { id: string }[];
	}[];
}

const loadAtStart = loadAverage();
runLabBenchmark("map-return", "pingmr", async (lab) => {
	const internet = await lab.lan("inet", "198.18.60.0/24");
	let third = 61;
	const nextSubnet = () => `198.18.${third++}.0/24`;
	const relayHost = await lab.host("relay", { lan: internet });
	log("starting management, signal, coturn (ctl) and the relay (its own host)");
	const ctl = await startLabControlPlane(await lab.host("ctl", { lan: internet }), {
		stun: true,
		relay: relayHost,
	});
	const placedA = await placeHost(lab, internet, "eim", "a", nextSubnet);
	const placedB = await placeHost(lab, internet, "eim", "b", nextSubnet);
	const a = await startAgentIn(placedA.host);
	const b = await startAgentIn(placedB.host);
	await a.up(ctl);
	await b.up(ctl);
	await Promise.all([a.waitConnected(1), b.waitConnected(1)]);
	const ipOfA = await a.overlayIp();
	const ipOfB = await b.overlayIp();

	const policies = (await ctl.api("GET", "/api/policies")).json as PolicyJson[];
	const defaultPolicy = policies.find((p) => p.name === "Default");
	if (!defaultPolicy) throw new Error(`no Default policy in ${JSON.stringify(policies)}`);
	const putDefault = async (enabled: boolean) => {
		const r = await ctl.api("PUT", `/api/policies/${defaultPolicy.id}`, {
			name: defaultPolicy.name,
			description: defaultPolicy.description,
			enabled,
			rules: defaultPolicy.rules.map((rule) => ({
				id: rule.id,
				name: rule.name,
				description: rule.description,
				enabled: rule.enabled,
				action: rule.action,
				bidirectional: rule.bidirectional,
				protocol: rule.protocol,
				ports: rule.ports ?? [],
				port_ranges: rule.port_ranges ?? [],
				sources: rule.sources.map((g) => g.id),
				destinations: rule.destinations.map((g) => g.id),
			})),
		});
		if (r.status !== 200) throw new Error(`PUT Default policy: ${JSON.stringify(r)}`);
	};
	/** Both agents have dropped each other: no peer in status, none in WireGuard. */
	const waitApart = () =>
		waitFor(
			"a and b without each other",
			async () => {
				const [sa, sb, wa, wb] = await Promise.all([
					a.status(),
					b.status(),
					a.host.exec("wg", ["show", "starling0", "peers"]),
					b.host.exec("wg", ["show", "starling0", "peers"]),
				]);
				return sa.peers_total === 0 &&
					sb.peers_total === 0 &&
					wa.stdout.trim() === "" &&
					wb.stdout.trim() === ""
					? true
					: undefined;
			},
			// Generous: at load 50-80 one `starling status` call took seconds.
			90_000,
			500,
		);

	// The baseline pair across the same NATs, up before the first iteration.
	const {
		addresses: [baseA, baseB],
		publicKeys: [pubA, pubB],
	} = await baselinePair([a.host, b.host], [`${ipOfA}/16`, `${ipOfB}/16`], BASELINE_IF);
	const baselinePeer = (agent: LabAgent) =>
		agent === a
			? `peer ${pubB} endpoint ${placedB.publicAddress}:${BASELINE_PORT} allowed-ips ${baseB}/32 persistent-keepalive 1`
			: `peer ${pubA} endpoint ${placedA.publicAddress}:${BASELINE_PORT} allowed-ips ${baseA}/32 persistent-keepalive 1`;
	for (const [host, address, peerKey, peerEndpoint, peerIp] of [
		[a.host, baseA, pubB, placedB.publicAddress, baseB],
		[b.host, baseB, pubA, placedA.publicAddress, baseA],
	] as const) {
		await startHandMadeWireguard(host, {
			ifname: BASELINE_IF,
			listenPort: BASELINE_PORT,
			address,
			mtu: MTU,
			peer: {
				publicKey: peerKey,
				endpoint: `${peerEndpoint}:${BASELINE_PORT}`,
				allowedIp: peerIp,
				persistentKeepalive: 1,
			},
		});
	}
	await waitFor("baseline tunnel answers ping", async () =>
		(await a.host.exec("ping", ["-n", "-c", "1", "-w", "1", baseB], { allowFailure: true }))
			.exitCode === 0
			? true
			: undefined,
	);

	const samples: {
		first_ping_ms: number | null;
		rest_returned_ms: number;
		a_peer_added_ms: number | null;
		b_peer_added_ms: number | null;
		a_path_up_ms: number | null;
		first_ping_via: "p2p" | "relay" | null;
	}[] = [];
	const baselineSamples: number[] = [];
	for (let i = 0; i < iterations; i++) {
		await putDefault(false);
		await waitApart();
		await sleep(300);
		const t0 = Date.now();
		const ping = a.host.exec("timeout", [String(PING_GIVE_UP_S), "sh", "-c", pingLoop(ipOfB)], {
			allowFailure: true,
			timeoutMs: (PING_GIVE_UP_S + 10) * 1000,
		});
		await putDefault(true);
		const restReturned = Date.now() - t0;
		const reply = firstReplyAt((await ping).stdout);
		const since = (t: number | undefined) => (t === undefined ? null : t - t0);
		const pathUp = logTime(a.daemon.output(), "direct path up", t0);
		const sample = {
			first_ping_ms: reply === undefined ? null : Math.round(reply - t0),
			rest_returned_ms: restReturned,
			a_peer_added_ms: since(logTime(a.daemon.output(), "peer added", t0)),
			b_peer_added_ms: since(logTime(b.daemon.output(), "peer added", t0)),
			a_path_up_ms: since(pathUp),
			first_ping_via:
				reply === undefined
					? null
					: pathUp !== undefined && pathUp <= reply
						? ("p2p" as const)
						: ("relay" as const),
		};
		samples.push(sample);
		log(`agents ${i + 1}/${iterations}: ${JSON.stringify(sample)}`);

		// The baseline: the peer leaves both hand-made WireGuards and comes back.
		await Promise.all([
			a.host.exec("wg", ["set", BASELINE_IF, "peer", pubB, "remove"]),
			b.host.exec("wg", ["set", BASELINE_IF, "peer", pubA, "remove"]),
		]);
		await sleep(300);
		const t1 = Date.now();
		const basePing = a.host.exec("timeout", [String(PING_GIVE_UP_S), "sh", "-c", pingLoop(baseB)], {
			allowFailure: true,
			timeoutMs: (PING_GIVE_UP_S + 10) * 1000,
		});
		await Promise.all(
			[a, b].map((agent) =>
				agent.host.exec("sh", ["-c", `wg set ${BASELINE_IF} ${baselinePeer(agent)}`]),
			),
		);
		const baseReply = firstReplyAt((await basePing).stdout);
		if (baseReply === undefined) throw new Error("baseline: no ping reply");
		baselineSamples.push(Math.round(baseReply - t1));
		log(`baseline ${i + 1}/${iterations}: first ping after ${Math.round(baseReply - t1)} ms`);
	}

	const sorted = (xs: number[]) => [...xs].sort((x, y) => x - y);
	const pings = sorted(samples.flatMap((s) => (s.first_ping_ms === null ? [] : [s.first_ping_ms])));
	const baseline = sorted(baselineSamples);
	const p50 = percentile(pings, 50);
	const p99 = percentile(pings, 99);
	const p50Of = (xs: (number | null)[]) => {
		const v = sorted(xs.flatMap((x) => (x === null ? [] : [x])));
		return v.length ? round(percentile(v, 50), 0) : null;
	};
	return {
		bench: "map-return",
		what: "REST PUT re-enabling the Default policy -> first answered ping a->b, two agents behind eim NATs, relay and STUN configured",
		iterations,
		ping_interval_ms: PING_INTERVAL_S * 1000,
		first_ping_p50_ms: round(p50, 0),
		first_ping_p95_ms: round(percentile(pings, 95), 0),
		first_ping_p99_ms: round(p99, 0),
		first_ping_max_ms: pings.at(-1) ?? null,
		no_ping: samples.filter((s) => s.first_ping_ms === null).length,
		first_ping_via_relay: samples.filter((s) => s.first_ping_via === "relay").length,
		rest_returned_p50_ms: p50Of(samples.map((s) => s.rest_returned_ms)),
		a_peer_added_p50_ms: p50Of(samples.map((s) => s.a_peer_added_ms)),
		b_peer_added_p50_ms: p50Of(samples.map((s) => s.b_peer_added_ms)),
		a_path_up_p50_ms: p50Of(samples.map((s) => s.a_path_up_ms)),
		baseline:
			"hand-made wireguard-go pair across the same NATs: peer removed on both sides, re-added on both, first ping",
		baseline_first_ping_p50_ms: round(percentile(baseline, 50), 0),
		baseline_first_ping_max_ms: baseline.at(-1) ?? null,
		ratio_p50: round(p50 / percentile(baseline, 50), 2),
		target_p50_ms: TARGET_P50_MS,
		target_p99_ms: TARGET_P99_MS,
		p50_target_met: p50 <= TARGET_P50_MS,
		p99_target_met: samples.every((s) => s.first_ping_ms !== null) && p99 <= TARGET_P99_MS,
		loadavg_1m_at_start: loadAtStart,
		loadavg_1m_at_end: loadAverage(),
		samples_ms: samples.map((s) => s.first_ping_ms),
		baseline_samples_ms: baselineSamples,
		samples,
	};
});
