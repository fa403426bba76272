import { randomBytes, randomInt } from "node:crypto";
import type { RandomInt } from "./ipam.js";

export const cryptoRandomInt: RandomInt = (maxExclusive) =>
	maxExclusive <= 1
		? 0
		: maxExclusive <= 2 ** 48
			? randomInt(maxExclusive)
			: Math.floor(Math.random() * maxExclusive);

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** Uniform random base62 string (rejection sampling, no modulo bias). */
export function randomBase62(length: number): string {
	let out = "";
	while (out.length < length) {
		for (const byte of randomBytes(length * 2)) {
			if (byte < 248) out += ALPHABET[byte % 62];
			if (out.length === length) break;
		}
	}
	return out;
}

export function newId(): string {
	return randomBase62(20);
}
