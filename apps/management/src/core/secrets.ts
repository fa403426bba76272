import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import { crc32 } from "@starling/crypto";
import { randomBase62 } from "./random.js";

// Setup keys and personal access tokens are shown once and stored only as
// SHA-256 hashes. They carry 122+ bits of randomness, so a fast hash is the
// right tool (a password KDF would only slow every API call).

export function hashSecret(plain: string): string {
	return createHash("sha256").update(plain, "utf8").digest("hex");
}

/** Constant-time comparison of a presented secret with a stored hash. */
export function secretMatches(plain: string, storedHash: string): boolean {
	const a = Buffer.from(hashSecret(plain), "hex");
	const b = Buffer.from(storedHash, "hex");
	return a.length === b.length && timingSafeEqual(a, b);
}

/** A setup key in NetBird's format: an upper-case UUID. */
export function newSetupKeySecret(): string {
	return randomUUID().toUpperCase();
}

export const TOKEN_PREFIX = "stp_";
const TOKEN_BODY = 30;
const TOKEN_CHECKSUM = 6;

/**
 * A personal access token: "stp_" + 30 base62 characters + a 6-character
 * base62 CRC32 checksum, so typos and truncated pastes are caught before any
 * lookup (the same shape as NetBird's "nbp_" tokens).
 */
export function newPersonalAccessToken(): string {
	const body = randomBase62(TOKEN_BODY);
	return `${TOKEN_PREFIX}${body}${checksum(body)}`;
}

export function isWellFormedToken(token: string): boolean {
	if (
		!token.startsWith(TOKEN_PREFIX) ||
		token.length !== TOKEN_PREFIX.length + TOKEN_BODY + TOKEN_CHECKSUM
	) {
		return false;
	}
	const body = token.slice(TOKEN_PREFIX.length, TOKEN_PREFIX.length + TOKEN_BODY);
	return /^[0-9A-Za-z]+$/.test(body) && checksum(body) === token.slice(-TOKEN_CHECKSUM);
}

const B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function checksum(body: string): string {
	let n = crc32(Buffer.from(body, "utf8"));
	let out = "";
	for (let i = 0; i < TOKEN_CHECKSUM; i++) {
		out = B62[n % 62] + out;
		n = Math.floor(n / 62);
	}
	return out;
}
