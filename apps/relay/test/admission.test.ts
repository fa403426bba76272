import { randomBytes } from "node:crypto";
import { CloseCode, type RelayClient, type RelayError } from "@starling/relay-client";
import { issueRelayToken } from "@starling/relay-protocol";
import { afterEach, describe, expect, it } from "vitest";
import type { RelayServer } from "../src/server.js";
import {
	identity,
	RawPeer,
	relayClient,
	SECRET,
	startTestRelay,
	tokenFor,
	waitFor,
} from "./helpers.js";

describe("relay admission", () => {
	let relay: RelayServer;
	const clients: RelayClient[] = [];
	const raws: RawPeer[] = [];
	afterEach(async () => {
		for (const c of clients.splice(0)) await c.close();
		for (const r of raws.splice(0)) r.close();
		await relay?.close();
	});

	/**
	 * Sends HELLO with `token` and, right behind it without waiting for an
	 * answer, DATA frames to a connected receiver; returns the close.
	 */
	async function attackWith(token: string): Promise<{ code: number; reason: string }> {
		const receiver = await RawPeer.admitted(relay.url, tokenFor(identity()));
		raws.push(receiver);
		const receiverId = receiver.frames.find((f) => f.type === "welcome");
		if (receiverId?.type !== "welcome") throw new Error("no welcome");
		const attacker = await RawPeer.hello(relay.url, token);
		raws.push(attacker);
		for (let i = 0; i < 50; i++) {
			attacker.send({ type: "data", peerId: receiverId.peerId, payload: Buffer.from(`leak ${i}`) });
		}
		const closed = await attacker.closed;
		// Give any stray frame time to arrive.
		await new Promise((resolve) => setTimeout(resolve, 100));
		expect(receiver.data()).toEqual([]);
		expect(attacker.frames).toEqual([]);
		return closed;
	}

	it("refuses a forged token with 4001 and forwards no byte", async () => {
		relay = await startTestRelay();
		const raw = Buffer.from(tokenFor(identity()), "base64url");
		raw[40] = (raw[40] ?? 0) ^ 0xff; // push the expiry out
		const closed = await attackWith(raw.toString("base64url"));
		expect(closed).toEqual({
			code: CloseCode.TokenInvalid,
			reason: "token signature does not match",
		});
		expect(relay.stats().framesForwarded).toBe(0);
		expect(relay.stats().refused.token_invalid).toBe(1);
	});

	it("refuses a token signed with another secret with 4001", async () => {
		relay = await startTestRelay();
		const closed = await attackWith(tokenFor(identity(), 60_000, "not the relay's secret at all"));
		expect(closed.code).toBe(CloseCode.TokenInvalid);
		expect(relay.stats().framesForwarded).toBe(0);
	});

	it("refuses an expired token with 4002 and forwards no byte", async () => {
		relay = await startTestRelay();
		const token = issueRelayToken(SECRET, identity().publicKey, Date.now() - 1);
		const closed = await attackWith(token);
		expect(closed.code).toBe(CloseCode.TokenExpired);
		expect(closed.reason).toMatch(/^token expired at /);
		expect(relay.stats().framesForwarded).toBe(0);
		expect(relay.stats().refused.token_expired).toBe(1);
	});

	it("refuses a malformed token, DATA before HELLO, and text with 4001/4003", async () => {
		relay = await startTestRelay();
		expect((await attackWith("not-a-token")).code).toBe(CloseCode.TokenInvalid);

		const early = new RawPeer(relay.url);
		raws.push(early);
		await early.opened;
		early.send({ type: "data", peerId: identity().peerId, payload: Buffer.from("x") });
		expect(await early.closed).toEqual({
			code: CloseCode.ProtocolError,
			reason: "the first frame must be HELLO",
		});

		const text = new RawPeer(relay.url);
		raws.push(text);
		await text.opened;
		text.ws.send("HELLO");
		expect((await text.closed).code).toBe(CloseCode.ProtocolError);

		const garbage = new RawPeer(relay.url);
		raws.push(garbage);
		await garbage.opened;
		garbage.ws.send(randomBytes(100), { binary: true });
		expect((await garbage.closed).code).toBe(CloseCode.ProtocolError);
		expect(relay.stats().framesForwarded).toBe(0);
	});

	it("closes a connection that sends no HELLO in time with 4004", async () => {
		relay = await startTestRelay({ helloTimeoutMs: 200 });
		const silent = new RawPeer(relay.url);
		raws.push(silent);
		await silent.opened;
		expect(await silent.closed).toEqual({
			code: CloseCode.HelloTimeout,
			reason: "no HELLO within 200 ms",
		});
		expect(relay.stats().refused.hello_timeout).toBe(1);
		expect(relay.stats().pendingConnections).toBe(0);
	});

	it("RelayClient reports a refused token and does not retry with it", async () => {
		relay = await startTestRelay();
		const alice = identity();
		const client = relayClient(relay, alice, {
			token: tokenFor(alice, 60_000, "wrong secret, wrong secret!!"),
			reconnect: { initialDelayMs: 10, maxDelayMs: 10 },
		});
		clients.push(client);
		const refused: RelayError[] = [];
		client.on("tokenRefused", (err) => refused.push(err));
		client.start();
		await waitFor(() => refused.length === 1, "refusal");
		await new Promise((resolve) => setTimeout(resolve, 200));
		expect(refused).toHaveLength(1);
		expect(refused[0]?.code).toBe(CloseCode.TokenInvalid);
		expect(client.state).toBe("waiting");
		expect(relay.stats().connectionsAccepted).toBe(1);
		await expect(client.connect()).rejects.toThrow(/waiting for a new token/);
		client.setToken(tokenFor(alice));
		await waitFor(() => client.state === "ready", "admission with the new token");
	});

	it("connect() rejects with the close code of a refused token", async () => {
		relay = await startTestRelay();
		const alice = identity();
		const client = relayClient(relay, alice, { token: tokenFor(alice, -5) });
		clients.push(client);
		await expect(client.connect()).rejects.toMatchObject({ code: CloseCode.TokenExpired });
		expect(client.state).toBe("idle");
	});

	it("closes connections beyond maxConnections with 1013", async () => {
		relay = await startTestRelay({ maxConnections: 2 });
		const a = relayClient(relay, identity());
		const b = relayClient(relay, identity());
		const c = relayClient(relay, identity());
		clients.push(a, b, c);
		await a.connect();
		await b.connect();
		await expect(c.connect()).rejects.toMatchObject({ code: CloseCode.TryAgainLater });
		expect(relay.stats().refused.capacity).toBe(1);
		await a.close();
		await waitFor(() => relay.stats().readyConnections === 1, "a gone");
		await c.connect();
		expect(c.state).toBe("ready");
	});
});
