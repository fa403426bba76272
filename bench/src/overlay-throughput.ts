// Overlay throughput: iperf3 TCP between two Starling agents on one LAN,
// against plain wireguard-go configured by hand between the same two hosts in
// the same run. A lab with hosts a and b on 198.18.41.0/24 and the control
// plane in a third host; both agents `starling up`; then, interleaved for
// `rounds` rounds: baseline b→a, a→b (iperf3 -R), overlay b→a, a→b.
// Usage: pnpm bench overlay-throughput [rounds=2] [seconds=10]
import { readFileSync } from "node:fs";
import { log, numberArg, round } from "./lib-control-plane.js";
import {
	freeOverlay24,
	iperf,
	type LabAgent,
	runLabBenchmark,
	sleep,
	startAgent,
	startHandMadeWireguard,
	startLabControlPlane,
	waitFor,
	wireguardKey,
} from "./lib-lab.js";

const rounds = numberArg(1, "rounds", 2);
const seconds = numberArg(2, "seconds", 10);
const BASELINE_IF = "wgb0";
const BASELINE_PORT = 51900;
const MTU = 1280; // the agent's default, so both tunnels carry the same packet sizes

interface IperfRun {
	path: "baseline" | "overlay";
	direction: "b_to_a" | "a_to_b";
	mbps: number;
	retransmits: number;
	/** UDP receive-buffer drops in the receiving host during the run (/proc/net/snmp RcvbufErrors). */
	udp_rcvbuf_drops: number;
}

/** Hand-made wireguard-go tunnel wgb0 between a and b, endpoints set directly. */
async function setUpBaseline(
	a: LabAgent,
	b: LabAgent,
	subnet24: string,
): Promise<[string, string]> {
	const base = subnet24.split("/")[0]!.split(".").slice(0, 3).join(".");
	const addrs: [string, string] = [`${base}.1`, `${base}.2`];
	const hosts = [a.host, b.host];
	const keys = [await wireguardKey(a.host, BASELINE_IF), await wireguardKey(b.host, BASELINE_IF)];
	for (const [i, host] of hosts.entries()) {
		await startHandMadeWireguard(host, {
			ifname: BASELINE_IF,
			listenPort: BASELINE_PORT,
			address: addrs[i]!,
			mtu: MTU,
			peer: {
				publicKey: keys[1 - i]!,
				endpoint: `${hosts[1 - i]!.address}:${BASELINE_PORT}`,
				allowedIp: addrs[1 - i]!,
			},
		});
	}
	await waitFor("baseline tunnel answers ping", async () =>
		(await b.host.ping(addrs[0], { count: 1, timeoutSeconds: 1 })) ? true : undefined,
	);
	return addrs;
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

const loadAtStart = Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
runLabBenchmark("overlay-throughput", "bthr", async (lab) => {
	const lan = await lab.lan("lan", "198.18.41.0/24");
	log("starting management and signal in host ctl");
	const ctl = await startLabControlPlane(await lab.host("ctl", { lan }));
	const a = await startAgent(lab, lan, "a");
	const b = await startAgent(lab, lan, "b");
	log("starling up on a and b");
	await a.up(ctl);
	await b.up(ctl);
	await Promise.all([a.waitConnected(1), b.waitConnected(1)]);
	const [sa, sb] = await Promise.all([a.status(), b.status()]);
	const overlayA = sa.overlay_address.split("/")[0]!;
	const peerOfB = sb.peers?.[0];
	log(
		`agents up: a ${sa.overlay_address}, b ${sb.overlay_address}; b→a path ${peerOfB?.path_type} ${peerOfB?.local_endpoint} → ${peerOfB?.remote_endpoint}`,
	);
	await waitFor("overlay ping b→a", async () =>
		(await b.host.ping(overlayA, { count: 1, timeoutSeconds: 1 })) ? true : undefined,
	);

	const subnet = freeOverlay24([sa.overlay_address, sb.overlay_address]);
	log(`baseline: plain wireguard-go ${BASELINE_IF} on ${subnet}, port ${BASELINE_PORT}`);
	const [baseA] = await setUpBaseline(a, b, subnet);

	const server = a.host.spawn("iperf3", ["-s", "--forceflush"], { name: "iperf3-server" });
	await server.waitForOutput(/Server listening/, 10_000);

	const runs: IperfRun[] = [];
	for (let i = 0; i < rounds; i++) {
		for (const [path, target] of [
			["baseline", baseA],
			["overlay", overlayA],
		] as const) {
			for (const reverse of [false, true]) {
				const direction = reverse ? "a_to_b" : "b_to_a";
				log(`round ${i + 1}/${rounds}: ${path} ${direction.replace(/_/g, " ")} (${seconds} s)`);
				const r = await iperf(b.host, a.host, target, seconds, reverse);
				runs.push({
					path,
					direction,
					mbps: round(r.mbps, 1),
					retransmits: r.retransmits,
					udp_rcvbuf_drops: r.drops,
				});
				log(
					`  ${round(r.mbps, 1)} Mbit/s, ${r.retransmits} retransmits, ${r.drops} UDP receive-buffer drops`,
				);
				await sleep(500);
			}
		}
	}
	const pick = (path: string, direction: string) =>
		runs.filter((r) => r.path === path && r.direction === direction).map((r) => r.mbps);
	const figures: Record<string, number> = {};
	for (const direction of ["b_to_a", "a_to_b"]) {
		const o = mean(pick("overlay", direction));
		const bl = mean(pick("baseline", direction));
		figures[`overlay_${direction}_mbps`] = round(o, 1);
		figures[`baseline_${direction}_mbps`] = round(bl, 1);
		figures[`ratio_${direction}`] = round(o / bl, 3);
	}
	const overall = mean(runs.filter((r) => r.path === "overlay").map((r) => r.mbps));
	const overallBase = mean(runs.filter((r) => r.path === "baseline").map((r) => r.mbps));
	const result = {
		bench: "overlay-throughput",
		rounds,
		seconds,
		...figures,
		ratio: round(overall / overallBase, 3),
		target_ratio: 0.9,
		path_type: peerOfB?.path_type ?? "",
		udp_rmem_default: Number(
			(await a.host.exec("cat", ["/proc/sys/net/core/rmem_default"])).stdout.trim(),
		),
		loadavg_1m_at_start: loadAtStart,
		runs,
	};
	return result;
});
