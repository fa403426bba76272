import { randomBytes } from "node:crypto";
import nacl from "tweetnacl";

/** A Curve25519 key pair. WireGuard keys and the management server key are both this. */
export interface KeyPair {
	readonly privateKey: Uint8Array;
	readonly publicKey: Uint8Array;
}

export const KEY_LENGTH = 32;

export class KeyFormatError extends Error {
	override name = "KeyFormatError";
}

/** Generates a key pair the way `wg genkey` does: 32 random bytes, clamped. */
export function generateKeyPair(): KeyPair {
	const privateKey = new Uint8Array(randomBytes(KEY_LENGTH));
	clampPrivateKey(privateKey);
	return keyPairFromPrivateKey(privateKey);
}

export function keyPairFromPrivateKey(privateKey: Uint8Array): KeyPair {
	assertKeyLength(privateKey, "private key");
	const pair = nacl.box.keyPair.fromSecretKey(privateKey);
	return { privateKey: Uint8Array.from(privateKey), publicKey: pair.publicKey };
}

function clampPrivateKey(key: Uint8Array): void {
	key[0] = (key[0] ?? 0) & 248;
	key[31] = ((key[31] ?? 0) & 127) | 64;
}

function assertKeyLength(key: Uint8Array, what: string): void {
	if (key.length !== KEY_LENGTH) {
		throw new KeyFormatError(`${what} must be ${KEY_LENGTH} bytes, got ${key.length}`);
	}
}

/** Standard base64, as `wg` prints keys. */
export function encodeKey(key: Uint8Array): string {
	assertKeyLength(key, "key");
	return Buffer.from(key).toString("base64");
}

const BASE64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** Parses a base64 WireGuard key; throws KeyFormatError with a readable reason. */
export function decodeKey(text: string): Uint8Array {
	if (typeof text !== "string" || !BASE64_KEY.test(text)) {
		throw new KeyFormatError("key must be 44 characters of base64 encoding 32 bytes");
	}
	return new Uint8Array(Buffer.from(text, "base64"));
}

export function isValidKey(text: string): boolean {
	return typeof text === "string" && BASE64_KEY.test(text);
}
