import { status } from "@grpc/grpc-js";
import { encodeKey, generateKeyPair, type KeyPair, openFrom, sealTo } from "@starling/crypto";
import { type NatsServer, startNatsServer } from "@starling/lab";
import {
	SignalClient,
	type SignalClientOptions,
	SignalError,
	type SignalMessage,
} from "@starling/signal-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { nextMessage, waitFor } from "./helpers.js";
import { type SignalProcess, startSignalProcess, startTcpFront } from "./instances.js";

// Two real signal processes on one real nats-server, agents as real
// SignalClients over gRPC on loopback.

const text = (s: string) => new TextEncoder().encode(s);

let nats: NatsServer;
beforeAll(async () => {
	nats = await startNatsServer();
});
afterAll(async () => {
	await nats?.stop();
});

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
	for (const step of cleanup.splice(0).reverse()) await step();
});

async function instance(natsUrl = nats.url): Promise<SignalProcess> {
	const started = await startSignalProcess({ STARLING_NATS_URL: natsUrl });
	cleanup.push(() => started.kill("SIGKILL"));
	return started;
}

function client(
	url: string,
	keyPair: KeyPair = generateKeyPair(),
	reconnect: SignalClientOptions["reconnect"] = false,
): SignalClient {
	const created = new SignalClient({
		url,
		keyPair,
		reconnect,
		// Its own connection, as a separate agent would have.
		channelOptions: { "grpc.use_local_subchannel_pool": 1 },
	});
	cleanup.push(() => created.close());
	return created;
}

async function sendError(from: SignalClient, to: Uint8Array): Promise<SignalError> {
	const err = await from.send(to, text("hello?")).then(
		() => undefined,
		(e: unknown) => e,
	);
	expect(err).toBeInstanceOf(SignalError);
	return err as SignalError;
}

describe("signal instances on one NATS", () => {
	it("carries sealed messages both ways between peers on different instances", async () => {
		const [a, b] = await Promise.all([instance(), instance()]);
		const alice = generateKeyPair();
		const bob = generateKeyPair();
		const atA = client(a.url, alice);
		const atB = client(b.url, bob);
		await Promise.all([atA.connect(), atB.connect()]);

		const offer = text("offer: ufrag=abc candidates=198.18.0.1:51820");
		const sealed = sealTo(offer, bob.publicKey, alice.privateKey);
		const toBob = nextMessage(atB);
		await atA.send(bob.publicKey, sealed);
		const received = await toBob;
		expect(received.from).toEqual(alice.publicKey);
		expect(received.body).toEqual(sealed);
		expect(openFrom(received.body, alice.publicKey, bob.privateKey)).toEqual(offer);

		const answer = text("answer: ufrag=def");
		const sealedBack = sealTo(answer, alice.publicKey, bob.privateKey);
		const toAlice = nextMessage(atA);
		await atB.send(alice.publicKey, sealedBack);
		const back = await toAlice;
		expect(back.from).toEqual(bob.publicKey);
		expect(openFrom(back.body, bob.publicKey, alice.privateKey)).toEqual(answer);
	});

	it("answers NOT_FOUND at once for a peer connected nowhere, as one instance does", async () => {
		const [a, b] = await Promise.all([instance(), instance()]);
		const sender = client(a.url);
		await sender.connect();

		const nobody = generateKeyPair().publicKey;
		const startedAt = performance.now();
		const err = await sendError(sender, nobody);
		const elapsedMs = performance.now() - startedAt;
		expect(err.code).toBe(status.NOT_FOUND);
		expect(err.message).toContain(`peer ${encodeKey(nobody)} is not connected`);
		// NATS says "no responders" at once; the 2 s forward timeout never ran.
		expect(elapsedMs).toBeLessThan(1_000);

		// A peer that was on B and left is nowhere too.
		const leaver = generateKeyPair();
		const onB = client(b.url, leaver);
		await onB.connect();
		await sender.send(leaver.publicKey, text("still there?"));
		await onB.close();
		expect((await sendError(sender, leaver.publicKey)).code).toBe(status.NOT_FOUND);
	});

	it("delivers to a peer that moved from instance A to instance B, once", async () => {
		const [a, b] = await Promise.all([instance(), instance()]);
		const sender = client(a.url);
		const mover = generateKeyPair();
		const first = client(a.url, mover);
		await Promise.all([sender.connect(), first.connect()]);
		const atFirst = nextMessage(first);
		await sender.send(mover.publicKey, text("on A"));
		expect((await atFirst).body).toEqual(text("on A"));

		// The peer opens a stream on B while its stream on A is still up: A's
		// older stream gives way, so no message is swallowed by a stale stream.
		const firstClosed = new Promise<SignalError | undefined>((resolve, reject) => {
			const timer = setTimeout(() => reject(new Error("A did not end the older stream")), 5_000);
			first.once("closed", (err) => {
				clearTimeout(timer);
				resolve(err);
			});
		});
		const second = client(b.url, mover);
		await second.connect();
		const ending = await firstClosed;
		expect(ending?.code).toBe(status.ABORTED);
		expect(ending?.message).toContain("replaced by a newer stream on another signal instance");

		const got: SignalMessage[] = [];
		second.on("message", (m) => got.push(m));
		for (let i = 0; i < 20; i++) await sender.send(mover.publicKey, text(`on B ${i}`));
		await waitFor(() => got.length >= 20, "20 messages on B");
		await new Promise((resolve) => setTimeout(resolve, 200));
		expect(got.map((m) => new TextDecoder().decode(m.body))).toEqual(
			Array.from({ length: 20 }, (_, i) => `on B ${i}`),
		);
	});

	it("reconnects the peers of a killed instance to the other, and messages flow again", async () => {
		const [a, b] = await Promise.all([instance(), instance()]);
		// The front stands in for the load balancer: A first, B when A is gone.
		const front = await startTcpFront([a.port, b.port]);
		cleanup.push(() => front.close());
		const alice = generateKeyPair();
		const bob = generateKeyPair();
		const aliceOnB = client(b.url, alice);
		const bobViaFront = client(`127.0.0.1:${front.port}`, bob, {
			initialDelayMs: 50,
			maxDelayMs: 500,
		});
		await Promise.all([aliceOnB.connect(), bobViaFront.connect()]);
		const first = nextMessage(bobViaFront);
		await aliceOnB.send(bob.publicKey, text("offer 1"));
		expect((await first).body).toEqual(text("offer 1"));

		const reconnected = new Promise<void>((resolve) => bobViaFront.once("connected", resolve));
		await a.kill("SIGKILL");
		await reconnected;

		// Negotiation resumes through B, both ways.
		const toBob = nextMessage(bobViaFront);
		await aliceOnB.send(bob.publicKey, text("offer 2"));
		expect((await toBob).body).toEqual(text("offer 2"));
		const toAlice = nextMessage(aliceOnB);
		await bobViaFront.send(alice.publicKey, text("answer 2"));
		expect((await toAlice).from).toEqual(bob.publicKey);
	});

	it("keeps local delivery while NATS is down and routes across again once it returns", async () => {
		const own = await startNatsServer();
		cleanup.push(() => own.stop());
		const [a, b] = await Promise.all([instance(own.url), instance(own.url)]);
		const alice = client(a.url);
		const carol = client(a.url);
		const bob = client(b.url);
		await Promise.all([alice.connect(), carol.connect(), bob.connect()]);
		const before = nextMessage(bob);
		await alice.send(bob.publicKey, text("before"));
		await before;

		await own.kill("SIGKILL");
		await waitFor(() => a.messages().some((m) => m.startsWith("bus lost")), "A notices", 15_000);

		// Local: unchanged. Across: UNAVAILABLE, not a false NOT_FOUND, and not after a timeout.
		const local = nextMessage(carol);
		await alice.send(carol.publicKey, text("local"));
		expect((await local).body).toEqual(text("local"));
		const across = await sendError(alice, bob.publicKey);
		expect(across.code).toBe(status.UNAVAILABLE);
		expect(across.message).toContain("bus to the other instances is unavailable");

		await own.restart();
		await waitFor(
			() =>
				a.messages().some((m) => m.startsWith("bus back")) &&
				b.messages().some((m) => m.startsWith("bus back")),
			"both instances reconnect to NATS",
			15_000,
		);
		const after = nextMessage(bob);
		await alice.send(bob.publicKey, text("after"));
		expect((await after).body).toEqual(text("after"));

		// One line per change of state, not per reconnect attempt.
		for (const signal of [a, b]) {
			expect(signal.messages().filter((m) => m.startsWith("bus lost"))).toHaveLength(1);
			expect(signal.messages().filter((m) => m.startsWith("bus back"))).toHaveLength(1);
		}
	});

	it("shuts down cleanly on SIGTERM while NATS is down", async () => {
		const own = await startNatsServer();
		cleanup.push(() => own.stop());
		const a = await instance(own.url);
		await own.kill("SIGKILL");
		await waitFor(() => a.messages().some((m) => m.startsWith("bus lost")), "A notices", 15_000);
		expect(await a.kill("SIGTERM")).toBe(0);
		expect(a.messages()).toContain("signal server stopped");
	});
});
