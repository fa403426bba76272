/**
 * Relay tokens: management issues them, the relay verifies them; both hold
 * the same secret (STARLING_RELAY_SECRET).
 *
 * A token is 73 bytes written as unpadded base64url (98 characters):
 *
 *   offset  size  field
 *   0       1     version, 1
 *   1       32    peer id = peerIdOf(WireGuard public key)
 *   33      8     expires_at_ms, unsigned big-endian, Unix milliseconds
 *   41      32    HMAC-SHA256(secret, "starling-relay-token-v1\0" ‖ bytes 0..40)
 *
 * The relay learns the peer id (a hash of the key) and the expiry, nothing else.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { decodeBase64Key, PEER_ID_BYTES, PUBLIC_KEY_BYTES, peerIdOf } from "./peer-id.js";

export const TOKEN_VERSION = 1;
/** Bytes of a decoded token. */
export const TOKEN_BYTES = 1 + PEER_ID_BYTES + 8 + 32;
/** Characters of an encoded token (unpadded base64url of TOKEN_BYTES). */
export const TOKEN_LENGTH = Math.ceil((TOKEN_BYTES * 4) / 3);
/** Shortest secret either side accepts, in bytes of its UTF-8 encoding. */
export const MIN_SECRET_BYTES = 16;

const SIGNED_BYTES = 1 + PEER_ID_BYTES + 8;
const MAC_DOMAIN = Buffer.from("starling-relay-token-v1\0", "ascii");
const TOKEN_PATTERN = /^[A-Za-z0-9_-]+$/;

export type RelaySecret = string | Uint8Array;

export type TokenRefusal = "malformed" | "forged" | "expired";

export type TokenVerification =
	| { ok: true; peerId: Uint8Array; expiresAtMs: number }
	| { ok: false; reason: TokenRefusal; message: string };

/**
 * Issues a token admitting the holder of `publicKey` until `expiresAtMs`.
 * Throws RangeError for a key that is not 32 bytes, an expiry that is not a
 * non-negative safe integer, or a secret shorter than MIN_SECRET_BYTES.
 */
export function issueRelayToken(
	secret: RelaySecret,
	publicKey: Uint8Array,
	expiresAtMs: number,
): string {
	const key = secretBytes(secret);
	if (publicKey.length !== PUBLIC_KEY_BYTES) {
		throw new RangeError(
			`a WireGuard public key is ${PUBLIC_KEY_BYTES} bytes, got ${publicKey.length}`,
		);
	}
	if (!Number.isSafeInteger(expiresAtMs) || expiresAtMs < 0) {
		throw new RangeError(`expiresAtMs must be a non-negative safe integer, got ${expiresAtMs}`);
	}
	const bytes = Buffer.alloc(TOKEN_BYTES);
	bytes[0] = TOKEN_VERSION;
	bytes.set(peerIdOf(publicKey), 1);
	bytes.writeBigUInt64BE(BigInt(expiresAtMs), 1 + PEER_ID_BYTES);
	mac(key, bytes.subarray(0, SIGNED_BYTES)).copy(bytes, SIGNED_BYTES);
	return bytes.toString("base64url");
}

/**
 * Checks a token's shape, then its MAC (constant-time), then its expiry
 * (expired when nowMs >= expiresAtMs). Never throws for any token value;
 * throws RangeError only for a secret shorter than MIN_SECRET_BYTES.
 */
export function verifyRelayToken(
	secret: RelaySecret,
	token: unknown,
	nowMs: number,
): TokenVerification {
	const key = secretBytes(secret);
	if (typeof token !== "string") return refuse("malformed", "token is not a string");
	if (token.length !== TOKEN_LENGTH || !TOKEN_PATTERN.test(token)) {
		return refuse("malformed", `token must be ${TOKEN_LENGTH} characters of base64url`);
	}
	const bytes = Buffer.from(token, "base64url");
	// Non-canonical spellings (stray low bits in the last character) decode to
	// the same bytes; insist on the one spelling so a token has exactly one form.
	if (bytes.length !== TOKEN_BYTES || bytes.toString("base64url") !== token) {
		return refuse("malformed", "token is not canonical base64url");
	}
	if (bytes[0] !== TOKEN_VERSION) {
		return refuse("malformed", `unsupported token version ${bytes[0]}`);
	}
	const expected = mac(key, bytes.subarray(0, SIGNED_BYTES));
	if (!timingSafeEqual(expected, bytes.subarray(SIGNED_BYTES))) {
		return refuse("forged", "token signature does not match");
	}
	const expiry = bytes.readBigUInt64BE(1 + PEER_ID_BYTES);
	if (expiry > BigInt(Number.MAX_SAFE_INTEGER)) {
		return refuse("malformed", "token expiry is out of range");
	}
	const expiresAtMs = Number(expiry);
	if (!(nowMs < expiresAtMs)) {
		return refuse("expired", `token expired at ${new Date(expiresAtMs).toISOString()}`);
	}
	const peerId = new Uint8Array(PEER_ID_BYTES);
	peerId.set(bytes.subarray(1, 1 + PEER_ID_BYTES));
	return { ok: true, peerId, expiresAtMs };
}

/** What management puts into RelayConfig for one peer. */
export interface RelayCredential {
	token: string;
	tokenExpiresUnixMs: number;
}

/**
 * Issues the token for a peer known by its base64 WireGuard key, valid for
 * `ttlMs` from `nowMs`. Throws RangeError for a malformed key, a bad TTL or a
 * short secret.
 */
export function issueRelayCredential(
	secret: RelaySecret,
	wgPublicKeyBase64: string,
	ttlMs: number,
	nowMs: number = Date.now(),
): RelayCredential {
	const publicKey = decodeBase64Key(wgPublicKeyBase64);
	if (!publicKey) throw new RangeError("not a base64 WireGuard public key");
	if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
		throw new RangeError(`ttlMs must be a positive integer, got ${ttlMs}`);
	}
	const tokenExpiresUnixMs = Math.floor(nowMs) + ttlMs;
	return { token: issueRelayToken(secret, publicKey, tokenExpiresUnixMs), tokenExpiresUnixMs };
}

function secretBytes(secret: RelaySecret): Buffer {
	const bytes =
		typeof secret === "string"
			? Buffer.from(secret, "utf8")
			: Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength);
	if (bytes.length < MIN_SECRET_BYTES) {
		throw new RangeError(
			`the relay secret must be at least ${MIN_SECRET_BYTES} bytes, got ${bytes.length}`,
		);
	}
	return bytes;
}

function mac(key: Buffer, signed: Uint8Array): Buffer {
	return createHmac("sha256", key).update(MAC_DOMAIN).update(signed).digest();
}

function refuse(reason: TokenRefusal, message: string): TokenVerification {
	return { ok: false, reason, message };
}
