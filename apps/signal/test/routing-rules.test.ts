import { status } from "@grpc/grpc-js";
import {
	BusClosedError,
	BusNoResponderError,
	BusTimeoutError,
	BusUnavailableError,
	isPublishSubject,
} from "@starling/bus";
import { encodeKey, generateKeyPair } from "@starling/crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseNatsServers } from "../src/config.js";
import { answerForBusFailure, checkForward, peerSubject, yieldsTo } from "../src/routing-rules.js";

const key = (fill: number) => new Uint8Array(32).fill(fill);
const keyBytes = fc.uint8Array({ minLength: 32, maxLength: 32 });

describe("peerSubject", () => {
	it("is a valid NATS subject that never contains the key, one per key", () => {
		fc.assert(
			fc.property(keyBytes, keyBytes, (a, b) => {
				const subject = peerSubject(a);
				expect(isPublishSubject(subject)).toBe(true);
				expect(subject).toMatch(/^starling\.signal\.peer\.[0-9a-f]{64}$/);
				expect(subject).not.toContain(encodeKey(a));
				expect(subject).not.toContain(Buffer.from(a).toString("hex"));
				expect(peerSubject(Uint8Array.from(a))).toBe(subject);
				if (Buffer.compare(a, b) !== 0) expect(peerSubject(b)).not.toBe(subject);
			}),
		);
	});
});

describe("checkForward", () => {
	const from = key(1);
	const to = generateKeyPair().publicKey;

	it("accepts a forward on its recipient's subject and copies what it keeps", () => {
		const body = new Uint8Array([1, 2, 3]);
		const checked = checkForward({ from, to, body }, peerSubject(to));
		expect(checked).toMatchObject({ from, to, toId: encodeKey(to), body });
		expect("toId" in checked && checked.body).not.toBe(body);
	});

	it("refuses what the local path refuses, a bad sender, and a recipient of another subject", () => {
		const cases = [
			{ forward: { from, to, body: new Uint8Array(0) }, reason: /body is empty/ },
			{ forward: { from, to, body: new Uint8Array(65537) }, reason: /limit is 65536/ },
			{ forward: { from, to: key(2).subarray(1), body: key(3) }, reason: /32-byte public key/ },
			{ forward: { from: new Uint8Array(3), to, body: key(3) }, reason: /forwarded sender/ },
		];
		for (const { forward, reason } of cases) {
			const refused = checkForward(forward, peerSubject(forward.to));
			expect(refused).toMatchObject({ code: status.INVALID_ARGUMENT });
			expect((refused as { message: string }).message).toMatch(reason);
		}
		const elsewhere = checkForward({ from, to, body: key(3) }, peerSubject(key(9)));
		expect(elsewhere).toMatchObject({
			code: status.INVALID_ARGUMENT,
			message: "forwarded recipient does not match the subject it was sent on",
		});
	});
});

describe("answerForBusFailure", () => {
	const peer = encodeKey(key(7));

	it("answers NOT_FOUND, word for word as one instance, when nobody holds the peer", () => {
		expect(answerForBusFailure(new BusNoResponderError(peerSubject(key(7))), peer)).toEqual({
			code: status.NOT_FOUND,
			message: `peer ${peer} is not connected`,
		});
	});

	it("answers UNAVAILABLE when the bus is down or the holder is silent, never NOT_FOUND", () => {
		for (const err of [
			new BusUnavailableError("down"),
			new BusClosedError(),
			new BusTimeoutError("s", 2_000),
		]) {
			const answer = answerForBusFailure(err, peer);
			expect(answer.code).toBe(status.UNAVAILABLE);
			expect(answer.message).toContain(peer);
		}
		expect(answerForBusFailure(new Error("surprise"), peer).code).toBe(status.INTERNAL);
	});
});

describe("yieldsTo", () => {
	it("ends a local stream only for a strictly later handshake elsewhere", () => {
		expect(yieldsTo(1_000, 1_001)).toBe(true);
		expect(yieldsTo(1_000, 1_000)).toBe(false);
		expect(yieldsTo(1_001, 1_000)).toBe(false);
	});
});

describe("parseNatsServers (STARLING_NATS_URL)", () => {
	it("takes a comma-separated list of nats:// URLs", () => {
		expect(parseNatsServers("nats://10.0.0.1:4222, nats://10.0.0.2:4222,")).toEqual([
			"nats://10.0.0.1:4222",
			"nats://10.0.0.2:4222",
		]);
		expect(parseNatsServers("nats://user:pw@nats.example:4222")).toEqual([
			"nats://user:pw@nats.example:4222",
		]);
	});

	it("refuses other schemes, paths and empty lists, naming the variable without secrets", () => {
		for (const bad of [
			"10.0.0.1:4222",
			"http://nats:4222",
			"tls://nats:4222",
			" , ",
			"nats://u:pw@h:4222/x",
		]) {
			expect(() => parseNatsServers(bad)).toThrow(/^STARLING_NATS_URL[: ]/);
		}
		expect(() => parseNatsServers("http://u:hunter2@h:4222")).toThrow(/\*\*\*@h:4222/);
		expect(() => parseNatsServers("http://u:hunter2@h:4222")).not.toThrow(/hunter2/);
	});
});
