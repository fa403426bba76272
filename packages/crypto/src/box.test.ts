import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BoxChannel, OpenError, openFrom, sealTo } from "./box.js";
import { decodeKey, encodeKey, generateKeyPair, isValidKey, KeyFormatError } from "./keys.js";

describe("keys", () => {
	it("round-trips base64 like wg prints it", () => {
		const pair = generateKeyPair();
		const text = encodeKey(pair.publicKey);
		expect(text).toHaveLength(44);
		expect(isValidKey(text)).toBe(true);
		expect(decodeKey(text)).toEqual(pair.publicKey);
	});

	it("clamps private keys like wg genkey", () => {
		const { privateKey } = generateKeyPair();
		expect(privateKey[0]! & 7).toBe(0);
		expect(privateKey[31]! & 128).toBe(0);
		expect(privateKey[31]! & 64).toBe(64);
	});

	it("rejects malformed keys with a reason", () => {
		for (const bad of ["", "abc", "A".repeat(44), `${"A".repeat(43)}=`.replace(/A=$/, "B=")]) {
			expect(() => decodeKey(bad)).toThrow(KeyFormatError);
		}
	});
});

describe("box", () => {
	it("seals and opens between two key pairs, both directions", () => {
		fc.assert(
			fc.property(fc.uint8Array({ maxLength: 2048 }), (plain) => {
				const a = generateKeyPair();
				const b = generateKeyPair();
				const sealed = sealTo(plain, b.publicKey, a.privateKey);
				expect(openFrom(sealed, a.publicKey, b.privateKey)).toEqual(plain);
				const back = new BoxChannel(b.privateKey, a.publicKey).sealToBytes(plain);
				expect(new BoxChannel(a.privateKey, b.publicKey).openFromBytes(back)).toEqual(plain);
			}),
			{ numRuns: 50 },
		);
	});

	it("uses a fresh nonce every time", () => {
		const a = generateKeyPair();
		const b = generateKeyPair();
		const ch = new BoxChannel(a.privateKey, b.publicKey);
		const x = ch.seal(new Uint8Array([1, 2, 3]));
		const y = ch.seal(new Uint8Array([1, 2, 3]));
		expect(x.nonce).not.toEqual(y.nonce);
	});

	it("rejects any flipped bit", () => {
		const a = generateKeyPair();
		const b = generateKeyPair();
		const sealed = sealTo(new TextEncoder().encode("offer"), b.publicKey, a.privateKey);
		fc.assert(
			fc.property(fc.nat(sealed.length * 8 - 1), (bit) => {
				const copy = Uint8Array.from(sealed);
				copy[bit >> 3]! ^= 1 << (bit & 7);
				expect(() => openFrom(copy, a.publicKey, b.privateKey)).toThrow(OpenError);
			}),
		);
	});

	it("rejects a body sealed for someone else", () => {
		const a = generateKeyPair();
		const b = generateKeyPair();
		const c = generateKeyPair();
		const sealed = sealTo(new Uint8Array([9]), b.publicKey, a.privateKey);
		expect(() => openFrom(sealed, a.publicKey, c.privateKey)).toThrow(OpenError);
		expect(() => openFrom(sealed.subarray(0, 10), a.publicKey, b.privateKey)).toThrow(OpenError);
	});
});
