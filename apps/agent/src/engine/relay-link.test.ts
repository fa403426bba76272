import { EventEmitter } from "node:events";
import { generateKeyPair } from "@starling/crypto";
import { createLogger } from "@starling/log";
import { describe, expect, it } from "vitest";
import { rankRelaysForPair } from "./relay-choice.js";
import { type RelayBridge, type RelayConnection, RelayLink, type RelayPeer } from "./relay-link.js";

class FakeRelay extends EventEmitter implements RelayConnection {
	state = "connecting";
	started = false;
	closed = false;
	tokens: string[] = [];
	constructor(
		readonly url: string,
		token: string,
	) {
		super();
		this.tokens.push(token);
	}
	start(): void {
		this.started = true;
	}
	setToken(token: string): void {
		this.tokens.push(token);
	}
	close(): void {
		this.closed = true;
	}
}

class FakeBridge implements RelayBridge {
	nextPort = 50_000;
	added: Uint8Array[] = [];
	removed: Uint8Array[] = [];
	closed = false;
	async addPeer(publicKey: Uint8Array): Promise<number> {
		this.added.push(publicKey);
		return this.nextPort++;
	}
	async removePeer(publicKey: Uint8Array): Promise<void> {
		this.removed.push(publicKey);
	}
	async close(): Promise<void> {
		this.closed = true;
	}
}

const peerA: RelayPeer = { key: "a", publicKey: generateKeyPair().publicKey };
const peerB: RelayPeer = { key: "b", publicKey: generateKeyPair().publicKey };
const self = generateKeyPair();
const tick = () => new Promise((resolve) => setImmediate(resolve));

function setup() {
	const made: { client: FakeRelay; bridge: FakeBridge }[] = [];
	const peers = new Map<string, RelayPeer>([["a", peerA]]);
	const endpoints: [string, string | undefined][] = [];
	const link = new RelayLink<RelayPeer>({
		create: (url, token) => {
			const m = { client: new FakeRelay(url, token), bridge: new FakeBridge() };
			made.push(m);
			return m;
		},
		logger: createLogger("relay-link-test", { level: "silent" }),
		selfPublicKey: self.publicKey,
		peer: (key) => peers.get(key),
		peers: () => peers.values(),
		nameOf: (peer) => `peer ${peer.key}`,
		onEndpoint: (peer, endpoint) => endpoints.push([peer.key, endpoint]),
	});
	return { link, made, peers, endpoints };
}

describe("RelayLink", () => {
	it("connects to the map's relay and gives every peer, present and later, a bridge endpoint", async () => {
		const { link, made, peers, endpoints } = setup();
		link.follow({ urls: ["ws://relay:33080"], token: "t1" } as never);
		expect(made).toHaveLength(1);
		expect(made[0]?.client.started).toBe(true);
		await tick();
		peers.set("b", peerB);
		link.attach(peerB);
		await tick();
		expect(endpoints).toEqual([
			["a", "127.0.0.1:50000"],
			["b", "127.0.0.1:50001"],
		]);
		expect(link.endpointOf("b")).toBe("127.0.0.1:50001");
		link.detach(peerB);
		expect(made[0]?.bridge.removed).toEqual([peerB.publicKey]);
		expect(link.endpointOf("b")).toBeUndefined();
	});

	it("releases the bridge socket of a peer that leaves while its socket is still opening", async () => {
		const { link, made, peers, endpoints } = setup();
		link.follow({ urls: ["ws://relay:33080"], token: "t1" } as never);
		await tick();
		peers.set("b", peerB);
		link.attach(peerB);
		peers.delete("b");
		link.detach(peerB);
		await tick();
		expect(made[0]?.bridge.removed).toEqual([peerB.publicKey]);
		expect(endpoints).toEqual([["a", "127.0.0.1:50000"]]);
		expect(link.endpointOf("b")).toBeUndefined();
	});

	it("follows a token refresh on the same relay, and switches relays on a new URL", async () => {
		const { link, made, endpoints } = setup();
		link.follow({ urls: ["ws://relay:33080"], token: "t1" } as never);
		await tick();
		link.follow({ urls: ["ws://relay:33080"], token: "t2" } as never);
		expect(made).toHaveLength(1);
		expect(made[0]?.client.tokens).toEqual(["t1", "t2"]);
		link.follow({ urls: ["ws://relay-2:33080"], token: "t3" } as never);
		await tick();
		expect(made).toHaveLength(2);
		expect(made[0]?.bridge.closed).toBe(true);
		expect(made[0]?.client.closed).toBe(true);
		expect(endpoints).toEqual([
			["a", "127.0.0.1:50000"],
			["a", undefined],
			["a", "127.0.0.1:50000"],
		]);
		expect(link.url).toBe("ws://relay-2:33080");
	});

	it("reports the relay's state, a refused token, and leaving the relay", async () => {
		const { link, made } = setup();
		link.follow({ urls: ["ws://relay:33080"], token: "t1" } as never);
		made[0]?.client.emit("tokenRefused", new Error("expired"));
		expect(link.status()).toEqual({
			url: "ws://relay:33080",
			connected: false,
			error: "relay refused our token: expired",
		});
		made[0]!.client.state = "ready";
		made[0]?.client.emit("ready");
		expect(link.status()).toEqual({ url: "ws://relay:33080", connected: true, error: "" });
		link.follow(undefined);
		await tick();
		expect(made[0]?.client.closed).toBe(true);
		expect(link.status().url).toBe("");
	});

	it("puts each pair on its ranked relay, moves it when that relay goes down, and back when it returns", async () => {
		const { link, made, peers, endpoints } = setup();
		const urls = ["ws://relay-1:33080", "ws://relay-2:33080"];
		const key = (k: Uint8Array) => Buffer.from(k).toString("base64");
		const [first, second] = rankRelaysForPair(urls, key(self.publicKey), key(peerA.publicKey));
		link.follow({ urls, token: "t1" } as never);
		await tick();
		// Only the relay a's pair meets on is connected.
		expect(made.map((m) => m.client.url)).toEqual([first]);
		expect(link.relayUrlOf("a")).toBe(first);
		const onFirst = made[0]!;
		onFirst.client.state = "ready";
		onFirst.client.emit("ready");

		// The relay dies: a moves to the next relay of its ranking, the dead one is kept retrying.
		onFirst.client.state = "waiting";
		onFirst.client.emit("disconnected", new Error("connection closed"));
		await tick();
		expect(made.map((m) => m.client.url)).toEqual([first, second]);
		expect(link.relayUrlOf("a")).toBe(second);
		expect(onFirst.bridge.removed).toEqual([peerA.publicKey]);
		expect(onFirst.client.closed).toBe(false);
		expect(endpoints).toEqual([
			["a", "127.0.0.1:50000"],
			["a", undefined],
			["a", "127.0.0.1:50000"],
		]);

		// It comes back: a returns to it, and the second relay, now needed by no one, is closed.
		onFirst.client.state = "ready";
		onFirst.client.emit("ready");
		await tick();
		expect(link.relayUrlOf("a")).toBe(first);
		expect(made[1]?.client.closed).toBe(true);
		expect(link.admission(first!)).toEqual({ admitted: true, error: "" });
		expect(link.admission(second!)).toBeUndefined();
		peers.delete("a");
		link.detach(peerA);
		await tick();
		expect(onFirst.client.closed).toBe(true);
	});

	it("moves away from a relay that cannot be reached at all", async () => {
		const { link, made } = setup();
		const urls = ["ws://relay-1:33080", "ws://relay-2:33080"];
		link.follow({ urls, token: "t1" } as never);
		const preferred = link.relayUrlOf("a");
		made[0]?.client.emit("attemptFailed", new Error("ECONNREFUSED"));
		expect(link.relayUrlOf("a")).not.toBe(preferred);
		expect(link.relayUrlOf("a")).toBeDefined();
		expect(made[0]?.client.closed).toBe(false);
	});
});
