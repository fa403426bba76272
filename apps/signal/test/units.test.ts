import { createPublicKey, diffieHellman, generateKeyPairSync } from "node:crypto";
import { status } from "@grpc/grpc-js";
import { BoxChannel, generateKeyPair } from "@starling/crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isCorrectAnswer, issueChallenge } from "../src/challenge.js";
import { ConfigError, loadConfig, parseListen } from "../src/config.js";
import { isSmallOrderPublicKey } from "../src/low-order.js";
import { OutboundBudget } from "../src/outbound-budget.js";
import { validateSend } from "../src/validation.js";

const key = (fill: number) => new Uint8Array(32).fill(fill);

describe("validateSend", () => {
	it("accepts a 32-byte recipient with 1 to 65536 bytes of body", () => {
		expect(validateSend({ id: 1, to: key(1), body: new Uint8Array(1) })).toBeUndefined();
		expect(validateSend({ id: 1, to: key(1), body: new Uint8Array(65536) })).toBeUndefined();
	});

	it("refuses bad recipients and bodies with INVALID_ARGUMENT and a reason", () => {
		const cases = [
			{ to: new Uint8Array(31), body: new Uint8Array(1), reason: /32-byte public key, got 31/ },
			{ to: new Uint8Array(0), body: new Uint8Array(1), reason: /got 0 bytes/ },
			{ to: key(1), body: new Uint8Array(0), reason: /body is empty/ },
			{ to: key(1), body: new Uint8Array(65537), reason: /65537 bytes; the limit is 65536/ },
		];
		for (const { to, body, reason } of cases) {
			const rejection = validateSend({ id: 9, to, body });
			expect(rejection?.code).toBe(status.INVALID_ARGUMENT);
			expect(rejection?.message).toMatch(reason);
		}
	});
});

describe("challenge", () => {
	it("can be answered only with the claimed key's private half", () => {
		const peer = generateKeyPair();
		const issued = issueChallenge(peer.publicKey);
		const { ephemeralPublicKey, nonce, sealedSecret } = issued.challenge;
		const opened = new BoxChannel(peer.privateKey, ephemeralPublicKey).open(nonce, sealedSecret);
		expect(isCorrectAnswer(issued, opened)).toBe(true);
		const other = generateKeyPair();
		expect(() =>
			new BoxChannel(other.privateKey, ephemeralPublicKey).open(nonce, sealedSecret),
		).toThrow();
	});

	it("rejects any other answer", () => {
		const issued = issueChallenge(generateKeyPair().publicKey);
		expect(isCorrectAnswer(issued, new Uint8Array(0))).toBe(false);
		expect(isCorrectAnswer(issued, issued.secret.subarray(0, 31))).toBe(false);
		fc.assert(
			fc.property(fc.nat(255), (bit) => {
				const flipped = Uint8Array.from(issued.secret);
				flipped[bit >> 3]! ^= 1 << (bit & 7);
				expect(isCorrectAnswer(issued, flipped)).toBe(false);
			}),
		);
	});

	it("uses a fresh ephemeral key and secret every time", () => {
		const peer = generateKeyPair().publicKey;
		const a = issueChallenge(peer);
		const b = issueChallenge(peer);
		expect(a.secret).not.toEqual(b.secret);
		expect(a.challenge.ephemeralPublicKey).not.toEqual(b.challenge.ephemeralPublicKey);
	});
});

describe("isSmallOrderPublicKey", () => {
	const listed = [
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	].map((hex) => new Uint8Array(Buffer.from(hex, "hex")));

	it("flags every point OpenSSL's X25519 refuses, with or without the top bit", () => {
		const { privateKey } = generateKeyPairSync("x25519");
		for (const point of listed) {
			for (const topBit of [0, 0x80]) {
				const encoded = Uint8Array.from(point);
				encoded[31]! |= topBit;
				expect(isSmallOrderPublicKey(encoded)).toBe(true);
				const publicKey = createPublicKey({
					key: { kty: "OKP", crv: "X25519", x: Buffer.from(encoded).toString("base64url") },
					format: "jwk",
				});
				expect(() => diffieHellman({ privateKey, publicKey })).toThrow();
			}
		}
	});

	it("accepts real keys", () => {
		for (let i = 0; i < 200; i++)
			expect(isSmallOrderPublicKey(generateKeyPair().publicKey)).toBe(false);
	});
});

describe("OutboundBudget", () => {
	it("admits deliveries until the byte or frame bound, and again once flushed", () => {
		const budget = new OutboundBudget({ maxQueuedBytes: 1_000, maxQueuedFrames: 3 });
		expect(budget.fits(1_000)).toBe(true);
		expect(budget.fits(1_001)).toBe(false);
		budget.add(600);
		expect(budget.fits(400)).toBe(true);
		expect(budget.fits(401)).toBe(false);
		budget.add(100);
		budget.add(100);
		expect(budget.fits(1)).toBe(false);
		budget.release(600);
		expect(budget.fits(800)).toBe(true);
		expect(budget.queuedFrames).toBe(2);
		expect(budget.queuedBytes).toBe(200);
	});

	it("reports a stream overwhelmed at twice the bound", () => {
		const budget = new OutboundBudget({ maxQueuedBytes: 10_000, maxQueuedFrames: 2 });
		budget.add(1);
		budget.add(1);
		budget.add(1);
		expect(budget.overwhelmed()).toBe(false);
		budget.add(1);
		expect(budget.overwhelmed()).toBe(true);
	});

	it("never goes negative on stray releases", () => {
		const budget = new OutboundBudget({ maxQueuedBytes: 10, maxQueuedFrames: 1 });
		budget.release(5);
		expect(budget.queuedBytes).toBe(0);
		expect(budget.queuedFrames).toBe(0);
	});
});

describe("config", () => {
	it("defaults to 127.0.0.1:10000, metrics on 127.0.0.1:9091, info, 15 s heartbeats", () => {
		expect(loadConfig({})).toEqual({
			host: "127.0.0.1",
			port: 10000,
			metricsListen: { host: "127.0.0.1", port: 9091 },
			heartbeatIntervalMs: 15_000,
			logLevel: "info",
		});
	});

	it("reads the environment", () => {
		expect(
			loadConfig({
				STARLING_SIGNAL_LISTEN: "[::]:10001",
				STARLING_LOG_LEVEL: "debug",
				STARLING_SIGNAL_HEARTBEAT_MS: "500",
				STARLING_SIGNAL_METRICS_LISTEN: "[::]:9191",
			}),
		).toEqual({
			host: "::",
			port: 10001,
			metricsListen: { host: "::", port: 9191 },
			heartbeatIntervalMs: 500,
			logLevel: "debug",
		});
		expect(loadConfig({ STARLING_SIGNAL_METRICS_LISTEN: "off" }).metricsListen).toBeUndefined();
		expect(parseListen("0.0.0.0:0")).toEqual({ host: "0.0.0.0", port: 0 });
		expect(parseListen("signal.internal:10000")).toEqual({ host: "signal.internal", port: 10000 });
	});

	it("names the variable in every complaint", () => {
		const bad: Record<string, string>[] = [
			{ STARLING_SIGNAL_LISTEN: "10000" },
			{ STARLING_SIGNAL_LISTEN: "127.0.0.1:70000" },
			{ STARLING_SIGNAL_LISTEN: "127.0.0.1:" },
			{ STARLING_SIGNAL_LISTEN: "[not-v6]:10000" },
			{ STARLING_SIGNAL_LISTEN: "bad_host!:10000" },
			{ STARLING_LOG_LEVEL: "loud" },
			{ STARLING_SIGNAL_HEARTBEAT_MS: "fast" },
			{ STARLING_SIGNAL_HEARTBEAT_MS: "5" },
			{ STARLING_SIGNAL_METRICS_LISTEN: "9091" },
			{ STARLING_SIGNAL_METRICS_LISTEN: "on" },
		];
		for (const env of bad) {
			const name = Object.keys(env)[0]!;
			expect(() => loadConfig(env)).toThrow(ConfigError);
			expect(() => loadConfig(env)).toThrow(name);
		}
	});
});
