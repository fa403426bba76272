import { status } from "@grpc/grpc-js";
import { generateKeyPair, openFrom, sealTo } from "@starling/crypto";
import { SignalError } from "@starling/signal-client";
import { describe, expect, it } from "vitest";
import { closedAfterEach, nextMessage, startTestServer, statusOf, waitFor } from "./helpers.js";

const text = (s: string) => new TextEncoder().encode(s);

describe("signal exchange", () => {
	const { server, client, raw: rawStream } = closedAfterEach();

	it("carries sealed bodies both ways unchanged, from the authenticated sender", async () => {
		const srv = await server();
		const alice = generateKeyPair();
		const bob = generateKeyPair();
		const a = client(srv, alice);
		const b = client(srv, bob);
		await Promise.all([a.connect(), b.connect()]);
		expect(srv.stats().connectedPeers).toBe(2);

		const offer = text("offer: ufrag=abc pwd=secret candidates=198.18.0.1:51820");
		const sealed = sealTo(offer, bob.publicKey, alice.privateKey);
		const atBob = nextMessage(b);
		await a.send(bob.publicKey, sealed);
		const received = await atBob;
		expect(received.from).toEqual(alice.publicKey);
		expect(received.body).toEqual(sealed);
		expect(Buffer.from(received.body).includes(Buffer.from(offer))).toBe(false);
		expect(openFrom(received.body, alice.publicKey, bob.privateKey)).toEqual(offer);

		const answer = text("answer: ufrag=def");
		const sealedBack = sealTo(answer, alice.publicKey, bob.privateKey);
		const atAlice = nextMessage(a);
		await b.send(alice.publicKey, sealedBack);
		const back = await atAlice;
		expect(back.from).toEqual(bob.publicKey);
		expect(back.body).toEqual(sealedBack);
		expect(openFrom(back.body, bob.publicKey, alice.privateKey)).toEqual(answer);
		expect(srv.stats().messagesDelivered).toBe(2);
	});

	it("refuses an impersonator, who never sees the victim's messages", async () => {
		const srv = await server();
		const victim = generateKeyPair();
		const attacker = generateKeyPair();
		const sender = generateKeyPair();
		const v = client(srv, victim);
		const s = client(srv, sender);
		await Promise.all([v.connect(), s.connect()]);

		const impostor = client(srv, { publicKey: victim.publicKey, privateKey: attacker.privateKey });
		const impostorMessages: unknown[] = [];
		impostor.on("message", (m) => impostorMessages.push(m));
		const refusal = await impostor.connect().catch((err: unknown) => err);
		expect(refusal).toBeInstanceOf(SignalError);
		expect((refusal as SignalError).code).toBe(status.UNAUTHENTICATED);
		expect((refusal as SignalError).message).toMatch(/UNAUTHENTICATED: wrong challenge response/);

		// A raw client that simply guesses a secret fares no better.
		const raw = rawStream(srv);
		raw.sendFrame({ $case: "hello", value: { publicKey: victim.publicKey } });
		expect((await raw.nextFrame()).frame?.$case).toBe("challenge");
		raw.sendFrame({ $case: "challengeResponse", value: { secret: new Uint8Array(32).fill(0xaa) } });
		expect(statusOf(await raw.ended)).toMatch(/^UNAUTHENTICATED: wrong challenge response/);

		// The victim's stream was not displaced and still gets its mail.
		const atVictim = nextMessage(v);
		await s.send(victim.publicKey, text("for the victim only"));
		expect((await atVictim).body).toEqual(text("for the victim only"));
		expect(impostorMessages).toHaveLength(0);
		expect(srv.stats()).toMatchObject({ connectedPeers: 2, authFailures: 2 });
	});

	it("gives a newer stream for the same key the messages and ends the older with ABORTED", async () => {
		const srv = await server();
		const peer = generateKeyPair();
		const sender = client(srv, generateKeyPair());
		const older = client(srv, peer);
		await Promise.all([sender.connect(), older.connect()]);
		const olderMessages: unknown[] = [];
		older.on("message", (m) => olderMessages.push(m));
		const olderGone = new Promise<SignalError>((resolve) => older.once("disconnected", resolve));

		const newer = client(srv, peer);
		await newer.connect();
		const ending = await olderGone;
		expect(ending.code).toBe(status.ABORTED);
		expect(ending.details).toBe("replaced by a newer stream");
		// Fighting back would make two holders of one key evict each other forever.
		await waitFor(() => older.state === "closed", "the replaced client to stop");

		const atNewer = nextMessage(newer);
		await sender.send(peer.publicKey, text("hello again"));
		expect((await atNewer).body).toEqual(text("hello again"));
		expect(olderMessages).toHaveLength(0);
		expect(srv.stats().connectedPeers).toBe(2);
	});

	it("reconnects with backoff after the server restarts", async () => {
		const first = await startTestServer();
		const port = first.port;
		const peer = generateKeyPair();
		const c = client(first, peer, {
			reconnect: { initialDelayMs: 20, maxDelayMs: 100, jitter: 0 },
		});
		await c.connect();
		const lost = new Promise<SignalError>((resolve) => c.once("disconnected", resolve));
		await first.close();
		expect((await lost).code).toBe(status.UNAVAILABLE);
		expect(c.state).toBe("reconnecting");
		await expect(c.send(generateKeyPair().publicKey, text("x"))).rejects.toMatchObject({
			code: status.UNAVAILABLE,
		});

		// Let a few attempts fail against the closed port before the server returns.
		await new Promise((resolve) => setTimeout(resolve, 150));
		const second = await server({ port });
		const reconnected = new Promise<void>((resolve) => c.once("connected", resolve));
		await reconnected;
		expect(c.state).toBe("ready");

		const other = client(second, generateKeyPair());
		await other.connect();
		const atPeer = nextMessage(c);
		await other.send(peer.publicKey, text("after restart"));
		expect((await atPeer).from).toEqual(other.publicKey);
	});

	it("tells clients it is shutting down and refuses new work after close", async () => {
		const srv = await startTestServer();
		const c = client(srv, generateKeyPair());
		await c.connect();
		const closed = new Promise<SignalError | undefined>((resolve) => c.once("closed", resolve));
		await srv.close();
		const ending = await closed;
		expect(ending?.code).toBe(status.UNAVAILABLE);
		expect(ending?.details).toBe("signal server is shutting down");
		await srv.close();
	});

	it("answers client pings and validates sends before they leave the client", async () => {
		const srv = await server();
		const peer = generateKeyPair();
		const raw = rawStream(srv);
		await raw.authenticate(peer);
		raw.sendFrame({ $case: "ping", value: { id: 77 } });
		expect((await raw.nextFrame()).frame).toEqual({ $case: "pong", value: { id: 77 } });

		const c = client(srv, generateKeyPair());
		await expect(c.send(peer.publicKey, text("x"))).rejects.toMatchObject({
			code: status.UNAVAILABLE,
		});
		await c.connect();
		await expect(c.send(new Uint8Array(31), text("x"))).rejects.toMatchObject({
			code: status.INVALID_ARGUMENT,
		});
		await expect(c.send(peer.publicKey, new Uint8Array(65537))).rejects.toMatchObject({
			code: status.INVALID_ARGUMENT,
		});
		await expect(c.send(generateKeyPair().publicKey, text("x"))).rejects.toMatchObject({
			code: status.NOT_FOUND,
		});
		await c.send(peer.publicKey, new Uint8Array(65536).fill(1));
		const delivered = (await raw.nextFrame()).frame;
		expect(delivered?.$case === "deliver" && delivered.value.body.length).toBe(65536);
	});
});
