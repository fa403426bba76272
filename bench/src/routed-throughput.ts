// Routed throughput: iperf3 TCP from an overlay client C to a LAN host H
// through a routing peer R (R forwards with its served route in force: the
// agent's nftables table `inet starling-routing`, forward filter and
// masquerade, and net.ipv4.ip_forward as the agent sets them), against
// iperf3 TCP from C to R's own overlay address over the same WireGuard
// tunnel, in the same run. The routed path does the baseline's work plus
// R's forwarding, filter and NAT, so the ratio is what routing costs.
//
// Lab "rfwdb": underlay 198.18.62.0/24 (C, R's wan leg), LAN 198.18.63.0/24
// (R's lan leg, H, no agent). wireguard-go `wt0` in C and R, hand-set: C's
// peer R has allowed IPs R's overlay /32 and the LAN (what the client side
// installs), MTU 1280 like the agent's. R's served route is applied by the
// agent's own code (apps/agent/dist/routing: ForwardingConsumer with
// RoutingTable and Forwarding on /proc/sys) run by Node inside R.
// Per round: baseline C→R overlay, then routed C→H (one iperf3 run each).
// Figures: receiver's rate (sum_received); the mean of each over rounds, the
// ratio of the means, and the median of the per-round ratios.
// Usage: pnpm bench routed-throughput [rounds=3] [seconds=10] [masquerade=1]
import { fileURLToPath } from "node:url";
import { encodeKey, generateKeyPair } from "@starling/crypto";
import { startWireguardGo } from "@starling/lab";
import { log, numberArg, round } from "./lib-control-plane.js";
import { iperf, loadAverage, median, NODE, runLabBenchmark, waitFor } from "./lib-lab.js";

const rounds = numberArg(1, "rounds", 3);
const seconds = numberArg(2, "seconds", 10);
const masquerade = (process.argv[4] ?? "1") !== "0";
const IFACE = "wt0";
const C_OVERLAY = "100.64.0.1";
const R_OVERLAY = "100.64.0.2";
const LAN = "198.18.63.0/24";
const ROUTING_DIR = fileURLToPath(new URL("../../apps/agent/dist/routing/", import.meta.url));

/**
 * R's side, with the agent's code (run by Node inside R): `serve ROUTE`
 * applies one served route as the engine would and exits, leaving the route
 * in force as a killed agent would; `give-back` is what the next start does.
 */
const ROUTE_TOOL = `
const [dir, mode, route] = process.argv.slice(1);
const { ForwardingConsumer } = await import(dir + "forwarding-consumer.js");
const { RoutingTable } = await import(dir + "forwarding-table.js");
const { Forwarding, procSysctl, fileForwardingRecord } = await import(dir + "forwarding.js");
const { execFile } = await import("node:child_process");
const runner = (command, args, options = {}) => new Promise((resolve, reject) => {
	const child = execFile(command, args, (err, stdout, stderr) =>
		err ? reject(new Error(command + ": " + stderr)) : resolve({ stdout, stderr, exitCode: 0 }));
	if (options.input !== undefined) child.stdin.end(options.input);
});
const quiet = { info() {}, warn: console.error, error: console.error, child() { return quiet; } };
const table = new RoutingTable(runner, "${IFACE}");
const forwarding = new Forwarding(procSysctl(), fileForwardingRecord("/var/lib/starling"));
if (mode === "serve") {
	const consumer = new ForwardingConsumer(table, forwarding, quiet);
	consumer.applyMap({ servedRoutes: [JSON.parse(route)] });
	await consumer.settled();
	console.log("serving " + JSON.stringify(consumer.status()));
} else {
	await forwarding.restore();
	await table.remove();
	console.log("given back");
}
`;

interface Run {
	round: number;
	path: "baseline" | "routed";
	mbps: number;
	retransmits: number;
	loadAverage: number;
}

runLabBenchmark("routed-throughput", "rfwdb", async (lab) => {
	const underlay = await lab.lan("ul", "198.18.62.0/24");
	const lan = await lab.lan("lan", LAN);
	const c = await lab.host("c", { lan: underlay });
	const r = await lab.router("r", { wan: underlay, lan, nat: "none" });
	await r.exec("sysctl", ["-q", "-w", "net.ipv4.ip_forward=0"]);
	const h = await lab.host("h", { lan });
	if (!masquerade) await h.exec("ip", ["route", "add", "100.64.0.0/10", "via", r.lanAddress]);

	const keys = { c: generateKeyPair(), r: generateKeyPair() };
	for (const [node, key, address] of [
		[c, keys.c, C_OVERLAY],
		[r, keys.r, R_OVERLAY],
	] as const) {
		await startWireguardGo(node, IFACE, { timeoutMs: 20_000 });
		await node.exec("sh", ["-c", "umask 077; cat > /var/lib/starling/wg.key"], {
			input: encodeKey(key.privateKey),
		});
		await node.exec("wg", [
			"set",
			IFACE,
			"private-key",
			"/var/lib/starling/wg.key",
			"listen-port",
			"51820",
		]);
		await node.exec("ip", ["address", "add", `${address}/32`, "dev", IFACE]);
		await node.exec("ip", ["link", "set", IFACE, "mtu", "1280", "up"]);
	}
	await c.exec("wg", [
		"set",
		IFACE,
		"peer",
		encodeKey(keys.r.publicKey),
		"endpoint",
		`${r.wanAddress}:51820`,
		"allowed-ips",
		`${R_OVERLAY}/32,${LAN}`,
	]);
	await c.exec("ip", ["route", "add", `${R_OVERLAY}/32`, "dev", IFACE]);
	await c.exec("ip", ["route", "add", LAN, "dev", IFACE]);
	await r.exec("wg", [
		"set",
		IFACE,
		"peer",
		encodeKey(keys.c.publicKey),
		"endpoint",
		`${c.address}:51820`,
		"allowed-ips",
		`${C_OVERLAY}/32`,
	]);
	await r.exec("ip", ["route", "add", `${C_OVERLAY}/32`, "dev", IFACE]);

	const route = {
		routeId: "bench",
		network: LAN,
		masquerade,
		filtered: false,
		rules: [],
		sources: [`${C_OVERLAY}/32`],
	};
	const routeTool = (...args: string[]) =>
		r.exec(NODE, ["--input-type=module", "-e", ROUTE_TOOL, ROUTING_DIR, ...args]);
	const serving = (await routeTool("serve", JSON.stringify(route))).stdout;
	if (!serving.includes('"error":""')) throw new Error(`R could not serve the route: ${serving}`);
	const ipForward = (await r.exec("cat", ["/proc/sys/net/ipv4/ip_forward"])).stdout.trim();
	const table = (
		await r.exec("nft", ["list", "table", "inet", "starling-routing"], { allowFailure: true })
	).stdout;
	log(`R serves ${LAN} (masquerade ${masquerade}), ip_forward=${ipForward}`);
	if (ipForward !== "1" || table.includes("masquerade") !== masquerade)
		throw new Error(`R is not routing as the agent should:\n${table}`);

	r.spawn("iperf3", ["-s", "--forceflush"], { name: "iperf3-r" });
	h.spawn("iperf3", ["-s", "--forceflush"], { name: "iperf3-h" });
	await waitFor("the tunnel and both iperf3 servers", async () =>
		(await c.ping(R_OVERLAY)) && (await c.ping(h.address)) ? true : undefined,
	);
	await new Promise((done) => setTimeout(done, 500));

	const runs: Run[] = [];
	for (let i = 1; i <= rounds; i++) {
		for (const [path, target] of [
			["baseline", R_OVERLAY],
			["routed", h.address],
		] as const) {
			const load = loadAverage();
			const result = await iperf(c, path === "baseline" ? r : h, target, seconds, false);
			runs.push({
				round: i,
				path,
				mbps: round(result.mbps, 1),
				retransmits: result.retransmits,
				loadAverage: load,
			});
			log(`round ${i} ${path}: ${result.mbps.toFixed(0)} Mbit/s (load ${load})`);
		}
	}
	const mean = (path: Run["path"]) => {
		const xs = runs.filter((x) => x.path === path).map((x) => x.mbps);
		return xs.reduce((a, b) => a + b, 0) / xs.length;
	};
	const perRound = Array.from({ length: rounds }, (_, i) => {
		const b = runs.find((x) => x.round === i + 1 && x.path === "baseline")!.mbps;
		const rt = runs.find((x) => x.round === i + 1 && x.path === "routed")!.mbps;
		return rt / b;
	});
	const ratio = mean("routed") / mean("baseline");
	return {
		bench: "routed-throughput",
		what: "iperf3 TCP C->H through routing peer R (agent's served route: nftables forward filter, masquerade, ip_forward) vs C->R's overlay address over the same wireguard-go tunnel, same run",
		unit: "Mbit/s (receiver)",
		rounds,
		seconds,
		masquerade,
		baselineMbps: round(mean("baseline"), 1),
		routedMbps: round(mean("routed"), 1),
		ratio: round(ratio, 3),
		medianRoundRatio: round(median(perRound), 3),
		target: ">= 0.9",
		targetMet: ratio >= 0.9,
		loadAverageStart: runs[0]?.loadAverage,
		loadAverageEnd: loadAverage(),
		runs,
	};
});
