import { status } from "@grpc/grpc-js";
import { generateKeyPair } from "@starling/crypto";
import type { SignalClient, SignalError } from "@starling/signal-client";
import { describe, expect, it } from "vitest";
import type { SignalServer } from "../src/server.js";
import { closedAfterEach, statusOf } from "./helpers.js";

describe("liveness and backpressure", () => {
	const resources = closedAfterEach();
	const { server, raw } = resources;
	const client = (srv: SignalServer): SignalClient => resources.client(srv, generateKeyPair());

	it("evicts a stream that stops answering pings, while a live client stays", async () => {
		const srv = await server({ heartbeatIntervalMs: 100 });
		const silentKeys = generateKeyPair();
		const silent = raw(srv);
		await silent.authenticate(silentKeys);
		const live = client(srv);
		await live.connect();
		let liveDropped = false;
		live.on("disconnected", () => {
			liveDropped = true;
		});

		expect((await silent.nextFrame(1_000, false)).frame?.$case).toBe("ping");
		const started = Date.now();
		expect(statusOf(await silent.ended)).toMatch(/^UNAVAILABLE: heartbeat timeout/);
		// Three silent intervals, detected on the next tick: roughly 300 to 400 ms after the last frame.
		expect(Date.now() - started).toBeLessThan(1_500);

		await expect(live.send(silentKeys.publicKey, new Uint8Array([1]))).rejects.toMatchObject({
			code: status.NOT_FOUND,
		});
		expect(liveDropped).toBe(false);
		expect(live.state).toBe("ready");
		expect(srv.stats()).toMatchObject({ heartbeatTimeouts: 1, connectedPeers: 1 });
	});

	it("ends a handshake that never completes", async () => {
		const srv = await server({ handshakeTimeoutMs: 150 });
		const mute = raw(srv);
		mute.sendFrame({ $case: "hello", value: { publicKey: generateKeyPair().publicKey } });
		expect(statusOf(await mute.ended)).toBe(
			"UNAUTHENTICATED: handshake not completed within 150 ms",
		);
		expect(srv.stats()).toMatchObject({ openStreams: 0, handshaking: 0 });
	});

	it("drops deliveries to a recipient that stops reading instead of buffering them", async () => {
		const srv = await server({ maxQueuedDeliveryBytes: 256 * 1024, maxQueuedDeliveryFrames: 64 });
		const stuckKeys = generateKeyPair();
		const stuck = raw(srv);
		await stuck.authenticate(stuckKeys);
		stuck.call.pause();

		const sender = client(srv);
		await sender.connect();
		const body = new Uint8Array(60 * 1024).fill(7);
		let delivered = 0;
		let refusal: SignalError | undefined;
		// Flow control and socket buffers absorb a few MiB first; the bound must hold after that.
		for (let i = 0; i < 2_000 && !refusal; i++) {
			await sender.send(stuckKeys.publicKey, body).then(
				() => {
					delivered += 1;
				},
				(err: SignalError) => {
					refusal = err;
				},
			);
		}
		expect(refusal?.code).toBe(status.RESOURCE_EXHAUSTED);
		expect(refusal?.details).toMatch(/is not reading fast enough; message dropped/);
		expect(delivered).toBeGreaterThan(0);
		expect(delivered).toBeLessThan(2_000);
		expect(srv.stats().sendsRefused).toEqual({
			invalid: 0,
			not_connected: 0,
			recipient_slow: 1,
			cross_instance_unavailable: 0,
		});
		expect(srv.stats().messagesDelivered).toBe(delivered);

		// The sender is unharmed and the rest of the server unaffected.
		const otherKeys = generateKeyPair();
		const other = raw(srv);
		await other.authenticate(otherKeys);
		await sender.send(otherKeys.publicKey, new Uint8Array([1]));
		expect((await other.nextFrame()).frame?.$case).toBe("deliver");
		expect(sender.state).toBe("ready");
	});
});
