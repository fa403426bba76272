import { EventEmitter } from "node:events";
import { BoxChannel, encodeKey, generateKeyPair } from "@starling/crypto";
import { createLogger } from "@starling/log";
import { PeerMessage } from "@starling/proto";
import { SignalError } from "@starling/signal-client";
import { describe, expect, it, vi } from "vitest";
import {
	type SignalConnection,
	SignalLink,
	type SignalPeer,
	UNSENT_SIGNAL_TTL_MS,
} from "./signal-link.js";

class FakeSignal extends EventEmitter implements SignalConnection {
	state = "connecting";
	sent: { to: Uint8Array; body: Uint8Array }[] = [];
	closed = false;
	failNext: Error | undefined;
	constructor(readonly url: string) {
		super();
	}
	async connect(): Promise<void> {}
	async send(to: Uint8Array, body: Uint8Array): Promise<void> {
		const err = this.failNext;
		this.failNext = undefined;
		if (err) throw err;
		this.sent.push({ to, body });
	}
	async close(): Promise<void> {
		this.closed = true;
	}
	ready(): void {
		this.state = "ready";
		this.emit("connected");
	}
}

const self = generateKeyPair();
const other = generateKeyPair();
const otherPeer: SignalPeer = { key: encodeKey(other.publicKey), publicKey: other.publicKey };
const offerRequest = (sessionId: number): PeerMessage => ({
	sessionId,
	senderInstance: 0,
	kind: { $case: "offerRequest", value: { reason: "test" } },
});

function setup(known: SignalPeer[] = [otherPeer]) {
	const clients: FakeSignal[] = [];
	const received: { peer: SignalPeer; message: PeerMessage }[] = [];
	const failed: { sessionId: number; notFound: boolean }[] = [];
	let now = 1_000;
	const peers = new Map(known.map((p) => [p.key, p]));
	const link = new SignalLink<SignalPeer>({
		keyPair: self,
		createClient: (url) => {
			const c = new FakeSignal(url);
			clients.push(c);
			return c;
		},
		logger: createLogger("signal-link-test", { level: "silent" }),
		random: () => 0.5,
		now: () => now,
		peer: (key) => peers.get(key),
		onMessage: (peer, message) => received.push({ peer, message }),
		onSendFailed: (_peer, sessionId, notFound) => failed.push({ sessionId, notFound }),
	});
	return { link, clients, received, failed, peers, advance: (ms: number) => (now += ms) };
}

const openAs = (body: Uint8Array) =>
	PeerMessage.decode(new BoxChannel(other.privateKey, self.publicKey).openFromBytes(body));

describe("SignalLink", () => {
	it("follows the map's URL: one client, replaced on a new URL, closed on none", () => {
		const { link, clients } = setup();
		link.follow("http://signal-a:10000");
		link.follow("http://signal-a:10000");
		expect(clients).toHaveLength(1);
		link.follow("http://signal-b:10000");
		expect(clients.map((c) => c.url)).toEqual(["http://signal-a:10000", "http://signal-b:10000"]);
		expect(clients[0]?.closed).toBe(true);
		link.follow("");
		expect(clients[1]?.closed).toBe(true);
		expect(link.status()).toEqual({ url: "", connected: false, error: "" });
	});

	it("holds messages while connecting and sends them sealed to the peer once ready", () => {
		const { link, clients } = setup();
		link.follow("http://signal:10000");
		link.send(otherPeer, offerRequest(7));
		expect(clients[0]?.sent).toEqual([]);
		expect(link.heldCount).toBe(1);
		clients[0]?.ready();
		expect(clients[0]?.sent).toHaveLength(1);
		expect(encodeKey(clients[0]!.sent[0]!.to)).toBe(otherPeer.key);
		expect(openAs(clients[0]!.sent[0]!.body)).toEqual(offerRequest(7));
		expect(link.status()).toEqual({ url: "http://signal:10000", connected: true, error: "" });
	});

	it("drops held messages older than the TTL, reporting them as failed sends, and those of a peer that left", async () => {
		const { link, clients, advance, failed } = setup();
		link.follow("http://signal:10000");
		link.send(otherPeer, offerRequest(1));
		advance(UNSENT_SIGNAL_TTL_MS + 1);
		link.send(otherPeer, offerRequest(2));
		const gone: SignalPeer = { key: "gone", publicKey: generateKeyPair().publicKey };
		link.send(gone, offerRequest(3));
		link.forget(gone);
		clients[0]?.ready();
		expect(clients[0]?.sent.map((s) => openAs(s.body).sessionId)).toEqual([2]);
		await Promise.resolve();
		// The state machine hears of the one that was not sent (not of the departed peer's).
		expect(failed).toEqual([{ sessionId: 1, notFound: false }]);
	});

	it("reports a message held while signal stays away once its TTL passes, without another send", async () => {
		vi.useFakeTimers();
		try {
			const { link, clients, advance, failed } = setup();
			link.follow("http://signal:10000");
			link.send(otherPeer, offerRequest(1));
			advance(1_000);
			link.send(otherPeer, offerRequest(2));
			// Not before its time, and not in the turn of the send that held it.
			advance(UNSENT_SIGNAL_TTL_MS - 1_001);
			await vi.advanceTimersByTimeAsync(UNSENT_SIGNAL_TTL_MS - 1);
			expect(failed).toEqual([]);
			advance(1);
			await vi.advanceTimersByTimeAsync(1);
			expect(failed).toEqual([{ sessionId: 1, notFound: false }]);
			expect(link.heldCount).toBe(1);
			advance(1_000);
			await vi.advanceTimersByTimeAsync(1_000);
			expect(failed).toEqual([
				{ sessionId: 1, notFound: false },
				{ sessionId: 2, notFound: false },
			]);
			// Signal comes back: nothing stale goes out.
			clients[0]?.ready();
			expect(clients[0]?.sent).toEqual([]);
		} finally {
			vi.useRealTimers();
		}
	});

	it("reports the oldest held messages pushed out by newer ones", async () => {
		const { link, failed } = setup();
		link.follow("http://signal:10000");
		for (let id = 1; id <= 258; id++) link.send(otherPeer, offerRequest(id));
		expect(link.heldCount).toBe(256);
		expect(failed).toEqual([]);
		await Promise.resolve();
		expect(failed).toEqual([
			{ sessionId: 1, notFound: false },
			{ sessionId: 2, notFound: false },
		]);
	});

	it("reports nothing once closed", async () => {
		vi.useFakeTimers();
		try {
			const { link, advance, failed } = setup();
			link.follow("http://signal:10000");
			link.send(otherPeer, offerRequest(1));
			await link.close();
			advance(UNSENT_SIGNAL_TTL_MS);
			await vi.advanceTimersByTimeAsync(UNSENT_SIGNAL_TTL_MS);
			expect(failed).toEqual([]);
			expect(vi.getTimerCount()).toBe(0);
		} finally {
			vi.useRealTimers();
		}
	});

	it("reports a failed send, with notFound when signal does not know the peer", async () => {
		const { link, clients, failed } = setup();
		link.follow("http://signal:10000");
		clients[0]?.ready();
		clients[0]!.failNext = new SignalError(5, "peer not connected");
		link.send(otherPeer, offerRequest(9));
		await new Promise((resolve) => setImmediate(resolve));
		expect(failed).toEqual([{ sessionId: 9, notFound: true }]);
	});

	it("opens messages from known peers, keeps those of peers the map does not name yet, drops forgeries", () => {
		const { link, clients, received, peers } = setup([]);
		link.follow("http://signal:10000");
		const body = new BoxChannel(other.privateKey, self.publicKey).sealToBytes(
			PeerMessage.encode(offerRequest(4)).finish(),
		);
		clients[0]?.emit("message", { from: other.publicKey, body });
		// From a key that did not seal it: does not open.
		clients[0]?.emit("message", { from: generateKeyPair().publicKey, body });
		expect(received).toEqual([]);
		peers.set(otherPeer.key, otherPeer);
		expect(link.takeEarly(otherPeer.key)).toEqual([offerRequest(4)]);
		expect(link.takeEarly(otherPeer.key)).toEqual([]);
		clients[0]?.emit("message", { from: other.publicKey, body });
		expect(received).toEqual([{ peer: otherPeer, message: offerRequest(4) }]);
	});

	it("without a client factory says so in status instead of connecting", () => {
		const link = new SignalLink<SignalPeer>({
			keyPair: self,
			createClient: undefined,
			logger: createLogger("signal-link-test", { level: "silent" }),
			random: Math.random,
			now: Date.now,
			peer: () => undefined,
			onMessage: () => undefined,
			onSendFailed: () => undefined,
		});
		link.follow("http://signal:10000");
		expect(link.status()).toEqual({
			url: "http://signal:10000",
			connected: false,
			error: "this engine was given no signal client",
		});
	});
});
