import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { peerIdOf } from "./peer-id.js";
import {
	issueRelayCredential,
	issueRelayToken,
	TOKEN_BYTES,
	TOKEN_LENGTH,
	verifyRelayToken,
} from "./token.js";

const secret = "correct horse battery staple 0123";
const key = new Uint8Array(randomBytes(32));
const now = 1_800_000_000_000;

describe("relay tokens", () => {
	it("admits a valid token and names the peer by the hash of its key", () => {
		const token = issueRelayToken(secret, key, now + 60_000);
		expect(token).toHaveLength(TOKEN_LENGTH);
		expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
		const result = verifyRelayToken(secret, token, now);
		expect(result).toEqual({ ok: true, peerId: peerIdOf(key), expiresAtMs: now + 60_000 });
		// The key itself is not in the token.
		const raw = Buffer.from(token, "base64url");
		expect(raw.length).toBe(TOKEN_BYTES);
		expect(raw.includes(Buffer.from(key))).toBe(false);
	});

	it("accepts a Uint8Array secret equal to the string's UTF-8", () => {
		const token = issueRelayToken(Buffer.from(secret, "utf8"), key, now + 1);
		expect(verifyRelayToken(secret, token, now).ok).toBe(true);
	});

	it("refuses an expired token, at and after its expiry", () => {
		const token = issueRelayToken(secret, key, now);
		for (const at of [now, now + 1, now + 86_400_000]) {
			const result = verifyRelayToken(secret, token, at);
			expect(result).toMatchObject({ ok: false, reason: "expired" });
		}
		expect(verifyRelayToken(secret, token, now - 1).ok).toBe(true);
	});

	it("refuses a token signed with another secret", () => {
		const token = issueRelayToken("another secret of enough length", key, now + 60_000);
		expect(verifyRelayToken(secret, token, now)).toMatchObject({ ok: false, reason: "forged" });
	});

	it("refuses a token whose peer id, expiry or MAC was changed (forged)", () => {
		const token = issueRelayToken(secret, key, now + 60_000);
		const raw = Buffer.from(token, "base64url");
		for (const offset of [1, 20, 33, 40, 41, 72]) {
			const bad = Buffer.from(raw);
			bad[offset] = (bad[offset] ?? 0) ^ 0x01;
			const result = verifyRelayToken(secret, bad.toString("base64url"), now);
			expect(result).toMatchObject({ ok: false, reason: "forged" });
		}
		// Extending the expiry without the secret does not work either.
		const later = Buffer.from(raw);
		later.writeBigUInt64BE(BigInt(now + 10 ** 9), 33);
		expect(verifyRelayToken(secret, later.toString("base64url"), now)).toMatchObject({
			ok: false,
			reason: "forged",
		});
	});

	it("refuses malformed tokens", () => {
		const token = issueRelayToken(secret, key, now + 60_000);
		const raw = Buffer.from(token, "base64url");
		const otherVersion = Buffer.from(raw);
		otherVersion[0] = 2;
		const cases: unknown[] = [
			undefined,
			null,
			42,
			"",
			"x",
			token.slice(1),
			`${token}A`,
			`${token.slice(0, -1)}=`,
			token.replace(/.$/, "+"),
			Buffer.from(raw).toString("base64"), // padded/standard alphabet
			otherVersion.toString("base64url"),
			"é".repeat(TOKEN_LENGTH),
		];
		for (const bad of cases) {
			const result = verifyRelayToken(secret, bad, now);
			expect(result.ok, String(bad)).toBe(false);
			if (!result.ok) expect(result.reason).toBe("malformed");
		}
	});

	it("refuses a non-canonical spelling of a valid token", () => {
		const token = issueRelayToken(secret, key, now + 60_000);
		// 73 bytes leave 2 spare bits in the last character; set one of them.
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		const last = alphabet.indexOf(token.at(-1) ?? "A");
		const variant = token.slice(0, -1) + alphabet[last ^ 1];
		expect(Buffer.from(variant, "base64url").equals(Buffer.from(token, "base64url"))).toBe(true);
		expect(verifyRelayToken(secret, variant, now)).toMatchObject({
			ok: false,
			reason: "malformed",
		});
	});

	it("never throws and never admits random strings", () => {
		fc.assert(
			fc.property(fc.string({ maxLength: 200 }), (text) => {
				const result = verifyRelayToken(secret, text, now);
				expect(result.ok).toBe(false);
			}),
			{ numRuns: 2000 },
		);
		fc.assert(
			fc.property(fc.uint8Array({ minLength: TOKEN_BYTES, maxLength: TOKEN_BYTES }), (bytes) => {
				const result = verifyRelayToken(secret, Buffer.from(bytes).toString("base64url"), now);
				expect(result.ok).toBe(false);
			}),
			{ numRuns: 2000 },
		);
	});

	it("round-trips any key and expiry", () => {
		fc.assert(
			fc.property(
				fc.uint8Array({ minLength: 32, maxLength: 32 }),
				fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
				(publicKey, expiresAtMs) => {
					const token = issueRelayToken(secret, publicKey, expiresAtMs);
					expect(verifyRelayToken(secret, token, expiresAtMs - 1)).toEqual({
						ok: true,
						peerId: peerIdOf(publicKey),
						expiresAtMs,
					});
				},
			),
			{ numRuns: 300 },
		);
	});

	it("rejects bad arguments when issuing", () => {
		expect(() => issueRelayToken("short", key, now)).toThrow(/at least 16 bytes/);
		expect(() => verifyRelayToken("short", "x", now)).toThrow(/at least 16 bytes/);
		expect(() => issueRelayToken(secret, key.subarray(1), now)).toThrow(/32 bytes/);
		expect(() => issueRelayToken(secret, key, -1)).toThrow(/expiresAtMs/);
		expect(() => issueRelayToken(secret, key, 1.5)).toThrow(/expiresAtMs/);
		expect(() => issueRelayToken(secret, key, Number.MAX_SAFE_INTEGER + 2)).toThrow(/expiresAtMs/);
	});

	it("issues a credential for a base64 WireGuard key", () => {
		const base64 = Buffer.from(key).toString("base64");
		const credential = issueRelayCredential(secret, base64, 3_600_000, now);
		expect(credential.tokenExpiresUnixMs).toBe(now + 3_600_000);
		expect(verifyRelayToken(secret, credential.token, now + 3_599_999)).toEqual({
			ok: true,
			peerId: peerIdOf(key),
			expiresAtMs: now + 3_600_000,
		});
		expect(() => issueRelayCredential(secret, "key-0001", 1000, now)).toThrow(/WireGuard/);
		expect(() => issueRelayCredential(secret, base64, 0, now)).toThrow(/ttlMs/);
	});
});

describe("peerIdOf", () => {
	it("is a 32-byte domain-separated hash, distinct per key", () => {
		const a = peerIdOf(key);
		expect(a).toHaveLength(32);
		expect(Buffer.from(a).equals(Buffer.from(key))).toBe(false);
		const other = Uint8Array.from(key);
		other[0] = (other[0] ?? 0) ^ 1;
		expect(Buffer.from(peerIdOf(other)).equals(Buffer.from(a))).toBe(false);
		expect(peerIdOf(Uint8Array.from(key))).toEqual(a);
		expect(() => peerIdOf(new Uint8Array(31))).toThrow(RangeError);
	});
});
