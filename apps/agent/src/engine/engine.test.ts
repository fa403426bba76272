// The engine's wiring, end to end with fakes for every I/O adapter: two
// engines that reach each other only through a fake signal server and a
// fake ICE "network" negotiate a direct path, hand it to WireGuard, and
// report it (with the ICE counts) in status. The real adapters run in the
// lab tests (test/e2e-*.test.ts).
import { EventEmitter } from "node:events";
import { encodeKey, generateKeyPair, type KeyPair } from "@starling/crypto";
import { createLogger } from "@starling/log";
import type { NetworkMap, RemotePeer } from "@starling/proto";
import { afterEach, describe, expect, it } from "vitest";
import type { StartSessionOptions } from "../ice/ice-agent.js";
import type { DesiredPeer } from "../wireguard/plan.js";
import { Engine } from "./engine.js";
import type { IcePort } from "./ice-sessions.js";
import type { MapConsumer } from "./map-consumer.js";
import type { SignalConnection } from "./signal-link.js";

const logger = createLogger("engine-test", { level: "silent" });

/** A signal server in memory: clients by public key. */
class FakeSignalServer {
	readonly clients = new Map<string, FakeSignalClient>();
	sent = 0;
}

class FakeSignalClient extends EventEmitter implements SignalConnection {
	state = "idle";
	constructor(
		private readonly server: FakeSignalServer,
		private readonly self: Uint8Array,
	) {
		super();
	}
	async connect(): Promise<void> {
		this.server.clients.set(encodeKey(this.self), this);
		this.state = "ready";
		this.emit("connected");
	}
	async send(to: Uint8Array, body: Uint8Array): Promise<void> {
		this.server.sent++;
		const peer = this.server.clients.get(encodeKey(to));
		if (!peer) throw new Error("not connected");
		setImmediate(() => peer.emit("message", { from: this.self, body }));
	}
	async close(): Promise<void> {
		this.state = "closed";
		this.server.clients.delete(encodeKey(this.self));
	}
}

/** ICE in memory: a session connects once both ends have the other's description. */
class FakeIceNetwork {
	readonly agents = new Map<string, FakeIce>();
}

class FakeIce extends EventEmitter {
	readonly started: StartSessionOptions[] = [];
	readonly remoteSet = new Set<string>();
	constructor(
		private readonly net: FakeIceNetwork,
		readonly key: string,
		readonly address: string,
	) {
		super();
		net.agents.set(key, this);
	}
	startSession(o: StartSessionOptions): void {
		this.started.push(o);
		setImmediate(() => {
			this.emit("local-description", {
				sessionId: o.sessionId,
				sdp: `sdp ${this.key} ${o.sessionId}`,
				type: "offer",
			});
			this.emit("local-candidate", { sessionId: o.sessionId, candidate: "", mid: "0" });
		});
	}
	setRemoteDescription(sessionId: string): void {
		this.remoteSet.add(sessionId);
		const [peerKey, n] = sessionId.split("#");
		const other = this.net.agents.get(peerKey!);
		const mirror = `${this.key}#${n}`;
		if (!other?.remoteSet.has(mirror)) return;
		setImmediate(() => {
			this.connect(sessionId, other);
			other.connect(mirror, this);
		});
	}
	addRemoteCandidate(): void {}
	async closeSession(): Promise<void> {}
	private connect(sessionId: string, other: FakeIce): void {
		this.emit("connected", {
			sessionId,
			local: { address: this.address, port: 40_000, type: "host" },
			remote: { address: other.address, port: 40_000, type: "host" },
			localPort: 40_000,
			elapsedMs: 1,
			rttMs: 2,
		});
	}
}

interface Side {
	keyPair: KeyPair;
	key: string;
	engine: Engine;
	applied: DesiredPeer[][];
	consumed: number[];
}

const engines: Engine[] = [];
afterEach(async () => {
	for (const e of engines.splice(0)) await e.stop();
});

function side(name: string, address: string, signal: FakeSignalServer, ice: FakeIceNetwork): Side {
	const keyPair = generateKeyPair();
	const key = encodeKey(keyPair.publicKey);
	const applied: DesiredPeer[][] = [];
	const consumed: number[] = [];
	const consumer: MapConsumer = {
		name: "recorder",
		applyMap: (map) => void consumed.push(map.serial),
		settled: async () => undefined,
		stop: async () => undefined,
	};
	const engine = new Engine({
		keyPair,
		interfaceName: `st-${name}`,
		wireguardPort: 51820,
		agentVersion: "test",
		device: {
			applyPeers: async (desired) => {
				applied.push([...desired]);
				return [];
			},
			dump: async () => ({ peers: [] }) as never,
		},
		ice: new FakeIce(ice, key, address) as unknown as IcePort,
		portRewriter: { set: () => undefined, remove: () => undefined, apply: async () => undefined },
		signalClients: () => new FakeSignalClient(signal, keyPair.publicKey),
		consumers: [consumer],
		openProbeSocket: async () => ({ send: () => undefined, close: () => undefined }),
		logger,
		random: () => 0.5,
	});
	engines.push(engine);
	return { keyPair, key, engine, applied, consumed };
}

function mapFor(serial: number, peer: Side, name: string): NetworkMap {
	const remote: RemotePeer = {
		wgPublicKey: peer.key,
		allowedIps: [`100.64.0.${name === "a" ? 1 : 2}/32`],
		dnsLabel: name,
		fqdn: `${name}.starling.internal`,
		name,
		connected: true,
		lastSeenUnixMs: 0,
		peerId: name,
	};
	return {
		serial,
		self: undefined,
		peers: [remote],
		signal: { url: "http://signal.test:10000" },
		stunServers: [],
		relay: undefined,
		firewallRules: [],
		dnsDomain: "starling.internal",
		network: "100.64.0.0/16",
	};
}

async function until(check: () => boolean, what: string): Promise<void> {
	const deadline = Date.now() + 5_000;
	while (!check()) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 5));
	}
}

describe("Engine wiring", () => {
	it("two engines negotiate a direct path through signal and ICE and hand it to WireGuard", async () => {
		const signal = new FakeSignalServer();
		const ice = new FakeIceNetwork();
		const a = side("a", "198.51.100.1", signal, ice);
		const b = side("b", "198.51.100.2", signal, ice);
		a.engine.applyMap(mapFor(1, b, "b"));
		b.engine.applyMap(mapFor(1, a, "a"));
		await until(
			() => a.applied.some((pass) => pass[0]?.endpoint === "198.51.100.2:40000"),
			"a's WireGuard to get b's direct endpoint",
		);
		await until(
			() => b.applied.some((pass) => pass[0]?.endpoint === "198.51.100.1:40000"),
			"b's WireGuard to get a's direct endpoint",
		);
		expect(a.consumed).toEqual([1]);
		expect(a.engine.signalStatus()).toEqual({
			url: "http://signal.test:10000",
			connected: true,
			error: "",
		});
		const [peerB] = await a.engine.peerStatuses();
		expect(peerB).toMatchObject({
			name: "b",
			pathType: "p2p",
			connectionState: "connected",
			remoteEndpoint: "198.51.100.2:40000",
			iceAttempts: 1,
			iceSuccesses: 1,
			iceFailures: 0,
			iceLastFailure: "",
		});
		// No relay in this map.
		expect(a.engine.relayStatus()).toEqual({ url: "", connected: false, error: "" });

		// The peer leaves the map: WireGuard's set is emptied.
		a.engine.applyMap({ ...mapFor(2, b, "b"), peers: [] });
		await a.engine.settled();
		expect(a.applied.at(-1)).toEqual([]);
		expect(await a.engine.peerStatuses()).toEqual([]);
		expect(a.consumed).toEqual([1, 2]);
	});
});
