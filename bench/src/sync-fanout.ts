// Sync fan-out, login rate and management memory with many open Sync streams.
// Figures: time until every connected agent has a new peer in its map (p50,
// p99) and the bytes each existing agent received for it, against a full-map
// resend (what NetBird and headscale push); registrations per second against
// unsealed GetServerKey calls per second; RSS with N open streams against RSS
// idle. Usage: pnpm bench sync-fanout [agents=1000]
import { encodeKey, generateKeyPair } from "@starling/crypto";
import { ManagementClient, type SyncStream } from "@starling/management-client";
import { NetworkMap, type PeerSystemMeta } from "@starling/proto";
import {
	createSetupKeyViaApi,
	log,
	numberArg,
	percentile,
	pool,
	round,
	startManagementProcess,
} from "./lib-control-plane.js";

const agentCount = numberArg(1, "agents", 1000);
const CONCURRENCY = 32;
const meta = (hostname: string): PeerSystemMeta => ({
	hostname,
	os: "linux",
	kernelVersion: "6.1",
	agentVersion: "bench",
	osVersion: "debian 12",
});

async function main(): Promise<void> {
	const m = await startManagementProcess();
	const cleanup = async () => {
		await m.stop();
	};
	process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));
	try {
		const rssIdle = m.rssBytes();
		const key = await createSetupKeyViaApi(m);
		const clients = Array.from(
			{ length: agentCount },
			() => new ManagementClient({ url: m.url, keyPair: generateKeyPair() }),
		);

		log(`baseline: ${agentCount} GetServerKey calls, ${CONCURRENCY} in flight`);
		let t = performance.now();
		await pool(agentCount, CONCURRENCY, (i) => clients[i]!.getServerKey());
		const serverKeyPerSecond = agentCount / ((performance.now() - t) / 1000);

		log(`registering ${agentCount} peers with one reusable key`);
		t = performance.now();
		await pool(agentCount, CONCURRENCY, (i) => clients[i]!.login(key, meta(`agent-${i}`)));
		const loginsPerSecond = agentCount / ((performance.now() - t) / 1000);
		const rssConnections = m.rssBytes();

		log(`opening ${agentCount} Sync streams`);
		let lastUpdateAt = performance.now();
		const arrivals = new Map<number, number>();
		let watchKey = "";
		const streams: SyncStream[] = await pool(agentCount, CONCURRENCY, (i) =>
			clients[i]!.sync(undefined, {
				onMap: (map) => {
					lastUpdateAt = performance.now();
					if (watchKey && !arrivals.has(i) && map.peers.some((p) => p.wgPublicKey === watchKey)) {
						arrivals.set(i, performance.now());
					}
				},
				onEnd: (err) => {
					if (err) log(`stream ${i} ended: ${err.message}`);
				},
			}),
		);
		// Let the connect storm settle: every agent sees every other agent
		// connected, and no updates have flowed for a second.
		const settled = () =>
			streams.every(
				(s) =>
					s.map && s.map.peers.length === agentCount - 1 && s.map.peers.every((p) => p.connected),
			);
		while (performance.now() - lastUpdateAt < 1000 || !settled()) {
			await new Promise((r) => setTimeout(r, 250));
		}
		const rssStreams = m.rssBytes();
		const fullMapBytes =
			streams.reduce((sum, s) => sum + NetworkMap.encode(s.map!).finish().length, 0) /
			streams.length;

		log("one new peer registers");
		const newcomerKeys = generateKeyPair();
		const newcomer = new ManagementClient({ url: m.url, keyPair: newcomerKeys });
		await newcomer.getServerKey();
		const bytesBefore = streams.map((s) => s.bytesReceived);
		watchKey = encodeKey(newcomerKeys.publicKey);
		const t0 = performance.now();
		await newcomer.login(key, meta("newcomer"));
		const deadline = performance.now() + 10_000;
		while (arrivals.size < agentCount && performance.now() < deadline) {
			await new Promise((r) => setTimeout(r, 5));
		}
		const latencies = [...arrivals.values()].map((at) => at - t0).sort((a, b) => a - b);
		await new Promise((r) => setTimeout(r, 200));
		const updateBytes =
			streams.reduce((sum, s, i) => sum + s.bytesReceived - bytesBefore[i]!, 0) / streams.length;

		for (const s of streams) s.close();
		for (const c of clients) c.close();
		newcomer.close();

		const result = {
			bench: "sync-fanout",
			agents: agentCount,
			reached: arrivals.size,
			fanout_p50_ms: round(percentile(latencies, 50)),
			fanout_p99_ms: round(percentile(latencies, 99)),
			update_bytes_per_peer: round(updateBytes, 0),
			full_map_bytes_per_peer: round(fullMapBytes, 0),
			update_to_full_map_ratio: round(updateBytes / fullMapBytes, 4),
			logins_per_second: round(loginsPerSecond, 0),
			get_server_key_per_second: round(serverKeyPerSecond, 0),
			login_to_unsealed_call_ratio: round(loginsPerSecond / serverKeyPerSecond, 3),
			rss_idle_mb: round(rssIdle / 2 ** 20, 1),
			rss_with_connections_mb: round(rssConnections / 2 ** 20, 1),
			rss_with_streams_mb: round(rssStreams / 2 ** 20, 1),
			rss_ratio: round(rssStreams / rssIdle, 2),
		};
		process.stdout.write(`${JSON.stringify(result)}\n`);
	} finally {
		await cleanup();
	}
}

main().catch((err) => {
	console.error(err);
	process.exit(1);
});
