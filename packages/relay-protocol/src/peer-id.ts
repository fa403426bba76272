import { createHash } from "node:crypto";

/** Length of a WireGuard (Curve25519) public key. */
export const PUBLIC_KEY_BYTES = 32;
/** Length of a relay peer id. */
export const PEER_ID_BYTES = 32;

/** Domain separation, so a peer id is never the SHA-256 of a bare key used elsewhere. */
const PEER_ID_DOMAIN = Buffer.from("starling-relay-peer-id-v1\0", "ascii");

const BASE64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/**
 * The relay address of a peer: SHA-256("starling-relay-peer-id-v1\0" ‖ public key),
 * 32 bytes. The relay only ever sees this hash, never the WireGuard key.
 * Throws RangeError when the key is not 32 bytes (a programming error).
 */
export function peerIdOf(publicKey: Uint8Array): Uint8Array {
	if (publicKey.length !== PUBLIC_KEY_BYTES) {
		throw new RangeError(
			`a WireGuard public key is ${PUBLIC_KEY_BYTES} bytes, got ${publicKey.length}`,
		);
	}
	const digest = createHash("sha256").update(PEER_ID_DOMAIN).update(publicKey).digest();
	return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
}

/**
 * Decodes a base64 WireGuard key as `wg` prints it (44 characters). Returns
 * undefined for anything else.
 */
export function decodeBase64Key(text: string): Uint8Array | undefined {
	if (typeof text !== "string" || !BASE64_KEY.test(text)) return undefined;
	return new Uint8Array(Buffer.from(text, "base64"));
}

/** Lower-case hex of a peer id, for logs and maps. */
export function peerIdHex(peerId: Uint8Array): string {
	return Buffer.from(peerId.buffer, peerId.byteOffset, peerId.byteLength).toString("hex");
}
