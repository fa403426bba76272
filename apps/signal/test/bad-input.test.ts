import { status } from "@grpc/grpc-js";
import { encodeKey, generateKeyPair } from "@starling/crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SignalServer } from "../src/server.js";
import { nextMessage, RawStream, signalClient, startTestServer, statusOf } from "./helpers.js";

describe("bad input", () => {
	let srv: SignalServer;
	const raws: RawStream[] = [];
	beforeAll(async () => {
		srv = await startTestServer();
	});
	afterAll(async () => {
		for (const raw of raws) raw.close();
		await srv.close();
	});

	function raw(): RawStream {
		const stream = new RawStream(srv.port);
		raws.push(stream);
		return stream;
	}

	/** Sends bytes as the first frame of a fresh stream and returns how it ended. */
	async function firstFrameEndsWith(bytes: Uint8Array): Promise<string> {
		const stream = raw();
		stream.sendBytes(bytes);
		return statusOf(await stream.ended);
	}

	it("ends a stream whose first frame is garbage with a status saying why", async () => {
		const cases: [string, Uint8Array, RegExp][] = [
			[
				"random bytes",
				Buffer.from("ffffffffffffffffffff", "hex"),
				/^INVALID_ARGUMENT: malformed frame/,
			],
			["an invalid wire type", Buffer.from([0x0f, 0x01]), /^INVALID_ARGUMENT: malformed frame/],
			["a truncated field", Buffer.from([0x0a, 0x50, 0x01]), /^INVALID_ARGUMENT: malformed frame/],
			[
				"an empty frame",
				new Uint8Array(0),
				/^UNAUTHENTICATED: expected hello .* got an empty frame/,
			],
			// Field 1 as a varint instead of a message: decodes to nothing known.
			["a wrongly typed field", Buffer.from([0x08, 0x05]), /^UNAUTHENTICATED: expected hello/],
			["300 KiB of junk", new Uint8Array(300 * 1024).fill(0x41), /^RESOURCE_EXHAUSTED/],
		];
		for (const [what, bytes, expected] of cases) {
			expect(await firstFrameEndsWith(bytes), what).toMatch(expected);
		}
	});

	it("refuses malformed hellos and frames out of order", async () => {
		const hello = (publicKey: Uint8Array) => {
			const stream = raw();
			stream.sendFrame({ $case: "hello", value: { publicKey } });
			return stream.ended.then(statusOf);
		};
		expect(await hello(new Uint8Array(0))).toMatch(
			/^INVALID_ARGUMENT: hello.public_key must be 32 bytes, got 0/,
		);
		expect(await hello(new Uint8Array(33))).toMatch(/got 33/);
		expect(await hello(new Uint8Array(32))).toMatch(/^INVALID_ARGUMENT: .*small-order point/);

		const sendFirst = raw();
		sendFirst.sendFrame({
			$case: "send",
			value: { id: 1, to: generateKeyPair().publicKey, body: new Uint8Array([1]) },
		});
		expect(statusOf(await sendFirst.ended)).toBe(
			"UNAUTHENTICATED: expected hello as the first frame, got send",
		);

		const pingBeforeReady = raw();
		pingBeforeReady.sendFrame({
			$case: "hello",
			value: { publicKey: generateKeyPair().publicKey },
		});
		await pingBeforeReady.nextFrame();
		pingBeforeReady.sendFrame({ $case: "ping", value: { id: 1 } });
		expect(statusOf(await pingBeforeReady.ended)).toBe(
			"UNAUTHENTICATED: expected challenge_response, got ping",
		);

		const helloTwice = raw();
		await helloTwice.authenticate(generateKeyPair());
		helloTwice.sendFrame({ $case: "hello", value: { publicKey: generateKeyPair().publicKey } });
		expect(statusOf(await helloTwice.ended)).toBe(
			"INVALID_ARGUMENT: unexpected hello after the stream is ready",
		);
	});

	it("answers bad sends with a result code and keeps the sender's stream open", async () => {
		const sender = raw();
		await sender.authenticate(generateKeyPair());
		const offline = generateKeyPair().publicKey;
		const body = new Uint8Array([1, 2, 3]);

		expect(await sender.send(1, offline, body)).toEqual({
			id: 1,
			code: status.NOT_FOUND,
			message: `peer ${encodeKey(offline)} is not connected`,
		});
		expect(await sender.send(2, offline, new Uint8Array(65537))).toMatchObject({
			code: status.INVALID_ARGUMENT,
			message: "body is 65537 bytes; the limit is 65536",
		});
		expect(await sender.send(3, new Uint8Array(31), body)).toMatchObject({
			code: status.INVALID_ARGUMENT,
			message: "to must be a 32-byte public key, got 31 bytes",
		});
		expect(await sender.send(4, new Uint8Array(0), body)).toMatchObject({
			code: status.INVALID_ARGUMENT,
		});
		expect(await sender.send(5, offline, new Uint8Array(0))).toMatchObject({
			code: status.INVALID_ARGUMENT,
			message: "body is empty",
		});

		const recipient = raw();
		const recipientKeys = generateKeyPair();
		await recipient.authenticate(recipientKeys);
		expect(await sender.send(6, recipientKeys.publicKey, body)).toEqual({
			id: 6,
			code: 0,
			message: "",
		});
		const delivered = (await recipient.nextFrame()).frame;
		expect(delivered?.$case).toBe("deliver");
		expect(delivered?.$case === "deliver" && new Uint8Array(delivered.value.body)).toEqual(body);
	});

	it("ends a ready stream that sends garbage, without touching anyone else", async () => {
		const bystander = raw();
		await bystander.authenticate(generateKeyPair());

		const junk = raw();
		await junk.authenticate(generateKeyPair());
		junk.sendBytes(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]));
		expect(statusOf(await junk.ended)).toMatch(/^INVALID_ARGUMENT: malformed frame/);

		// An id beyond 2^53 cannot be echoed faithfully, so the frame is refused as malformed.
		const hugeId = raw();
		await hugeId.authenticate(generateKeyPair());
		hugeId.sendBytes(Buffer.from("1a0b08ffffffffffffffff7f", "hex"));
		expect(statusOf(await hugeId.ended)).toMatch(/^INVALID_ARGUMENT: malformed frame/);

		const empty = raw();
		await empty.authenticate(generateKeyPair());
		empty.sendBytes(new Uint8Array(0));
		expect(statusOf(await empty.ended)).toBe("INVALID_ARGUMENT: frame has no known content");

		bystander.sendFrame({ $case: "ping", value: { id: 5 } });
		expect((await bystander.nextFrame()).frame).toEqual({ $case: "pong", value: { id: 5 } });
	});

	it("still serves a fresh pair of clients after all of that", async () => {
		const alice = generateKeyPair();
		const bob = generateKeyPair();
		const a = signalClient(srv, alice);
		const b = signalClient(srv, bob);
		try {
			await Promise.all([a.connect(), b.connect()]);
			const atBob = nextMessage(b);
			await a.send(bob.publicKey, new Uint8Array([42]));
			expect(await atBob).toEqual({ from: alice.publicKey, body: new Uint8Array([42]) });
		} finally {
			await Promise.all([a.close(), b.close()]);
		}
	});
});
