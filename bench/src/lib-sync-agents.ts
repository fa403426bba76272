// Load generator for the scale-out benchmarks, run as its own process
// (forked by lib-sync-agents-client.ts): simulated agents, each with its own
// HTTP/2 connection (a local subchannel pool per client, so grpc-js does not
// share one connection between them), logging in with a setup key and
// holding a Sync stream. The parent asks, over IPC, how long until every
// agent of an account sees a change, and how long agents cut off by a
// killed instance take to be in sync again through another one.
import { encodeKey, generateKeyPair, type KeyPair } from "@starling/crypto";
import { ManagementClient, type SyncStream } from "@starling/management-client";
import type { NetworkMap } from "@starling/proto";
import type { AgentSpec, FromGenerator, ToGenerator, Watch } from "./lib-sync-agents-protocol.js";

const LOGIN_CONCURRENCY = 48;

interface Agent {
	spec: AgentSpec;
	key: string;
	keyPair: KeyPair;
	peerId: string;
	client: ManagementClient;
	stream: SyncStream | undefined;
	map: NetworkMap | undefined;
	/** Index into spec.urls of the instance this agent is on. */
	urlIndex: number;
	/** When its stream ended with an error (ms since epoch, performance-based); 0 while in sync. */
	lostAt: number;
	resyncedAt: number;
	/** When the reconnect's login and Sync call returned (for the breakdown of a re-sync). */
	loggedInAt: number;
	streamOpenAt: number;
}

const now = () => performance.timeOrigin + performance.now();
function median(values: number[]): number {
	const sorted = [...values].sort((x, y) => x - y);
	return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** Why reconnects failed (message → count), for the benchmark's report. */
const reconnectErrors = new Map<string, number>();
const agents: Agent[] = [];
const META = { os: "linux", kernelVersion: "6.1", agentVersion: "bench", osVersion: "debian 12" };
let watch: (Watch & { arrivals: Map<number, number> }) | undefined;

function send(message: FromGenerator): void {
	process.send?.(message);
}

function matches(w: Watch, map: NetworkMap): boolean {
	const peer = map.peers.find((p) =>
		w.peerKey ? p.wgPublicKey === w.peerKey : p.peerId === w.peerId,
	);
	if (w.kind === "present") return peer !== undefined;
	return peer?.name === w.name;
}

function onMap(i: number, map: NetworkMap, kind: "full" | "delta"): void {
	const agent = agents[i] as Agent;
	agent.map = map;
	if (agent.lostAt && !agent.resyncedAt && kind === "full") agent.resyncedAt = now();
	if (
		watch &&
		agent.spec.account === watch.account &&
		!watch.arrivals.has(i) &&
		matches(watch, map)
	)
		watch.arrivals.set(i, now());
}

function client(spec: AgentSpec, urlIndex: number, keyPair = generateKeyPair()): ManagementClient {
	return new ManagementClient({
		url: spec.urls[urlIndex] as string,
		keyPair,
		timeoutMs: 60_000,
		channelOptions: { "grpc.use_local_subchannel_pool": 1 },
	});
}

async function openSync(i: number): Promise<void> {
	const agent = agents[i] as Agent;
	agent.stream = await agent.client.sync(undefined, {
		onMap: (map, kind) => onMap(i, map, kind),
		onEnd: (err) => {
			if (!err || agent.lostAt) return;
			// The instance went away: go to the next one, as a load balancer would send it.
			agent.lostAt = now();
			agent.resyncedAt = 0;
			void reconnect(i);
		},
	});
}

async function reconnect(i: number): Promise<void> {
	const agent = agents[i] as Agent;
	agent.client.close();
	agent.urlIndex = (agent.urlIndex + 1) % agent.spec.urls.length;
	for (let attempt = 0; attempt < 50; attempt++) {
		agent.client = client(agent.spec, agent.urlIndex, agent.keyPair);
		try {
			await agent.client.login("", { hostname: `a${i}`, ...META });
			agent.loggedInAt = now();
			await openSync(i);
			agent.streamOpenAt = now();
			return;
		} catch (err) {
			const reason = String((err as Error)?.message ?? err).slice(0, 120);
			reconnectErrors.set(reason, (reconnectErrors.get(reason) ?? 0) + 1);
			agent.client.close();
			await new Promise((r) => setTimeout(r, 200));
		}
	}
}

async function pool(
	count: number,
	limit: number,
	task: (i: number) => Promise<void>,
): Promise<void> {
	let next = 0;
	await Promise.all(
		Array.from({ length: Math.min(limit, count) }, async () => {
			while (next < count) await task(next++);
		}),
	);
}

async function start(specs: AgentSpec[]): Promise<void> {
	const t0 = now();
	await pool(specs.length, LOGIN_CONCURRENCY, async (i) => {
		const spec = specs[i] as AgentSpec;
		const keyPair = generateKeyPair();
		const c = client(spec, 0, keyPair);
		const agent: Agent = {
			spec,
			key: encodeKey(keyPair.publicKey),
			keyPair,
			peerId: "",
			client: c,
			stream: undefined,
			map: undefined,
			urlIndex: 0,
			lostAt: 0,
			resyncedAt: 0,
			loggedInAt: 0,
			streamOpenAt: 0,
		};
		agents[i] = agent;
		const login = await c.login(spec.setupKey, { hostname: `a${i}`, ...META });
		agent.peerId = login.self?.peerId ?? "";
		await openSync(i);
		if ((i + 1) % 1000 === 0) send({ type: "progress", message: `${i + 1} agents in sync` });
	});
	send({ type: "ready", keys: agents.map((a) => a.key), seconds: (now() - t0) / 1000 });
}

process.on("message", (message: ToGenerator) => {
	switch (message.type) {
		case "start":
			start(message.agents).catch((err: unknown) => {
				send({ type: "error", message: String((err as Error)?.stack ?? err) });
			});
			break;
		case "settled": {
			// Whether every agent of the account sees `expectPeers` peers, all connected.
			const of = agents.filter((a) => a.spec.account === message.account);
			const ok = of.every(
				(a) =>
					a.map &&
					a.map.peers.length === message.expectPeers &&
					a.map.peers.every((p) => p.connected),
			);
			send({ type: "settled", ok });
			break;
		}
		case "watch": {
			watch = { ...message.watch, arrivals: new Map() };
			const w = watch;
			const expected = agents.filter(
				(a) => a.spec.account === w.account && a.key !== w.peerKey && a.peerId !== w.peerId,
			).length;
			// Agents that already match (say, the change landed before the watch) count at once.
			agents.forEach((a, i) => {
				if (a.spec.account === w.account && a.map && matches(w, a.map)) w.arrivals.set(i, now());
			});
			const deadline = now() + message.timeoutMs;
			const poll = setInterval(() => {
				if (w.arrivals.size >= expected || now() > deadline) {
					clearInterval(poll);
					send({
						type: "arrivals",
						expected,
						arrivalsMs: [...w.arrivals.values()].map((t) => t - w.t0).sort((x, y) => x - y),
					});
				}
			}, 5);
			break;
		}
		case "resync": {
			const deadline = now() + message.timeoutMs;
			const poll = setInterval(() => {
				const lost = agents.filter((a) => a.lostAt >= message.since);
				const done = lost.filter((a) => a.resyncedAt);
				if (
					(lost.length >= message.expectLost && done.length === lost.length) ||
					now() > deadline
				) {
					clearInterval(poll);
					send({
						type: "resynced",
						lost: lost.length,
						resynced: done.length,
						resyncMs: done.map((a) => a.resyncedAt - message.since).sort((x, y) => x - y),
						errors: Object.fromEntries(reconnectErrors),
						breakdownMedianMs: {
							noticed: median(lost.map((a) => a.lostAt - message.since)),
							loggedIn: median(done.map((a) => a.loggedInAt - a.lostAt)),
							streamOpen: median(done.map((a) => a.streamOpenAt - a.loggedInAt)),
							fullMap: median(done.map((a) => a.resyncedAt - a.streamOpenAt)),
						},
					});
				}
			}, 20);
			break;
		}
		case "stop":
			for (const a of agents) {
				a.stream?.close();
				a.client.close();
			}
			process.exit(0);
	}
});
// The benchmark is gone (it crashed or was killed): so are its agents.
process.on("disconnect", () => process.exit(0));
send({ type: "alive" });
