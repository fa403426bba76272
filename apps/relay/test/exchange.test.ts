import { CloseCode, type RelayClient, type RelayError } from "@starling/relay-client";
import { afterEach, describe, expect, it } from "vitest";
import type { RelayServer } from "../src/server.js";
import {
	identity,
	nextPacket,
	RawPeer,
	relayClient,
	startTestRelay,
	tokenFor,
	waitFor,
} from "./helpers.js";

describe("relay forwarding", () => {
	let relay: RelayServer;
	const clients: RelayClient[] = [];
	const raws: RawPeer[] = [];
	afterEach(async () => {
		for (const c of clients.splice(0)) await c.close();
		for (const r of raws.splice(0)) r.close();
		await relay?.close();
	});

	it("carries packets both ways between two clients, naming the sender", async () => {
		relay = await startTestRelay();
		const alice = identity();
		const bob = identity();
		const a = relayClient(relay, alice);
		const b = relayClient(relay, bob);
		clients.push(a, b);
		await Promise.all([a.connect(), b.connect()]);
		expect(a.admission?.peerId).toEqual(alice.peerId);
		expect(b.admission?.peerId).toEqual(bob.peerId);

		const toBob = nextPacket(b);
		expect(a.sendTo(bob.publicKey, Buffer.from("hello bob"))).toBe(true);
		const got = await toBob;
		expect(got.payload.toString()).toBe("hello bob");
		expect(got.from).toEqual(alice.peerId);

		const toAlice = nextPacket(a);
		expect(b.send(got.from, Buffer.from("hello alice"))).toBe(true);
		expect((await toAlice).payload.toString()).toBe("hello alice");

		// Many packets of WireGuard sizes arrive in order.
		const received: Buffer[] = [];
		b.on("packet", (_from, payload) => received.push(Buffer.from(payload)));
		for (let i = 0; i < 500; i++) {
			const packet = Buffer.alloc(i === 499 ? 65_535 : 32 + (i % 1400), i % 256);
			packet.writeUInt32BE(i, 0);
			expect(a.send(bob.peerId, packet)).toBe(true);
		}
		await waitFor(() => received.length === 500, "500 packets");
		expect(received.map((p) => p.readUInt32BE(0))).toEqual([...Array(500).keys()]);
		expect(received[499]?.length).toBe(65_535);
		const stats = relay.stats();
		expect(stats.framesForwarded).toBe(502);
		expect(stats.readyConnections).toBe(2);
	});

	it("drops and counts frames to peers that are not connected, and to oneself", async () => {
		relay = await startTestRelay();
		const alice = identity();
		const a = relayClient(relay, alice);
		clients.push(a);
		await a.connect();
		expect(a.sendTo(identity().publicKey, Buffer.from("anyone?"))).toBe(true);
		expect(a.send(alice.peerId, Buffer.from("me"))).toBe(true);
		await waitFor(() => relay.stats().dropped.peer_offline === 1, "offline drop");
		await waitFor(() => relay.stats().dropped.loopback === 1, "loopback drop");
		expect(relay.stats().framesForwarded).toBe(0);
		// The sender's connection stays up.
		expect(a.state).toBe("ready");
	});

	it("refuses invalid sends locally without throwing", async () => {
		relay = await startTestRelay();
		const a = relayClient(relay, identity());
		clients.push(a);
		expect(a.send(identity().peerId, Buffer.from("x"))).toBe(false); // not connected yet
		await a.connect();
		expect(a.send(new Uint8Array(31), Buffer.from("x"))).toBe(false);
		expect(a.send(identity().peerId, new Uint8Array(0))).toBe(false);
		expect(a.send(identity().peerId, new Uint8Array(65_536))).toBe(false);
		expect(a.stats().sendDrops).toEqual({ notReady: 1, bufferFull: 0, invalid: 3 });
	});

	it("refreshes the token on an open connection and closes it when the token expires", async () => {
		relay = await startTestRelay();
		const alice = identity();
		const a = relayClient(relay, alice, { token: tokenFor(alice, 1_000) });
		clients.push(a);
		await a.connect();
		const firstExpiry = a.admission?.expiresAtMs ?? 0;
		const refreshed = new Promise<number>((resolve) => a.once("tokenRefreshed", resolve));
		a.setToken(tokenFor(alice, 1_500));
		const newExpiry = await refreshed;
		expect(newExpiry).toBeGreaterThan(firstExpiry);
		expect(a.admission?.expiresAtMs).toBe(newExpiry);
		expect(relay.stats().tokenRefreshes.accepted).toBe(1);

		// Past the first expiry the connection is still up...
		await new Promise((resolve) => setTimeout(resolve, firstExpiry - Date.now() + 100));
		expect(a.state).toBe("ready");
		// ...and it ends at the refreshed one, with 4002, then waits for a token.
		const refused = new Promise<RelayError>((resolve) => a.once("tokenRefused", resolve));
		const err = await refused;
		expect(err.code).toBe(CloseCode.TokenExpired);
		expect(Date.now()).toBeGreaterThanOrEqual(newExpiry);
		expect(a.state).toBe("waiting");
		await waitFor(() => relay.stats().disconnects.token_expired === 1, "expiry counted");

		// A new token brings it back at once.
		const ready = new Promise((resolve) => a.once("ready", resolve));
		a.setToken(tokenFor(alice, 60_000));
		await ready;
		expect(a.state).toBe("ready");
	});

	it("refuses a refresh with another peer's, a forged or an expired token and keeps the connection", async () => {
		relay = await startTestRelay();
		const alice = identity();
		const a = relayClient(relay, alice);
		clients.push(a);
		await a.connect();
		const errors: RelayError[] = [];
		a.on("tokenRefused", (err) => errors.push(err));
		a.setToken(tokenFor(identity()));
		a.setToken(tokenFor(alice, 60_000, "some other secret of some length"));
		a.setToken(tokenFor(alice, -1));
		await waitFor(() => errors.length === 3, "three refusals");
		expect(errors.map((e) => e.code)).toEqual([
			CloseCode.TokenInvalid,
			CloseCode.TokenInvalid,
			CloseCode.TokenExpired,
		]);
		expect(errors[0]?.reason).toMatch(/another peer/);
		expect(a.state).toBe("ready");
		expect(relay.stats().tokenRefreshes).toEqual({ accepted: 0, refused: 3 });
	});

	it("lets the newest connection of a peer id replace the older one", async () => {
		relay = await startTestRelay();
		const alice = identity();
		const bob = identity();
		const first = relayClient(relay, alice);
		const second = relayClient(relay, alice);
		const b = relayClient(relay, bob);
		clients.push(first, second, b);
		await first.connect();
		await b.connect();
		const firstClosed = new Promise<RelayError | undefined>((resolve) =>
			first.once("closed", resolve),
		);
		await second.connect();
		expect((await firstClosed)?.code).toBe(CloseCode.Replaced);
		expect(first.state).toBe("closed");
		const toAlice = nextPacket(second);
		b.sendTo(alice.publicKey, Buffer.from("to the new one"));
		expect((await toAlice).payload.toString()).toBe("to the new one");
		expect(relay.stats().disconnects.replaced).toBe(1);
	});

	it("closes a connection that sends garbage after admission, and only that one", async () => {
		relay = await startTestRelay();
		const alice = identity();
		const raw = await RawPeer.admitted(relay.url, tokenFor(alice));
		raws.push(raw);
		raw.ws.send(Buffer.from([0x03, 1, 2]), { binary: true });
		expect(await raw.closed).toMatchObject({ code: CloseCode.ProtocolError });
		const text = await RawPeer.admitted(relay.url, tokenFor(identity()));
		raws.push(text);
		text.ws.send("hello");
		expect(await text.closed).toMatchObject({ code: CloseCode.ProtocolError });
		const hello = await RawPeer.admitted(relay.url, tokenFor(identity()));
		raws.push(hello);
		hello.send({ type: "hello", version: 1, token: tokenFor(identity()) });
		expect(await hello.closed).toMatchObject({
			code: CloseCode.ProtocolError,
			reason: "unexpected HELLO frame",
		});
		const big = await RawPeer.admitted(relay.url, tokenFor(identity()));
		raws.push(big);
		big.ws.send(Buffer.alloc(70_000, 3), { binary: true });
		expect((await big.closed).code).toBe(CloseCode.MessageTooBig);
		expect(relay.stats().disconnects.protocol_error).toBe(3);
	});
});
