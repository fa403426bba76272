import { randomBytes } from "node:crypto";
import nacl from "tweetnacl";
import { KEY_LENGTH } from "./keys.js";

export const NONCE_LENGTH = nacl.box.nonceLength;
export const BOX_OVERHEAD = nacl.secretbox.overheadLength;

export class OpenError extends Error {
	override name = "OpenError";
}

/**
 * NaCl box (X25519 + XSalsa20-Poly1305) between two Curve25519 key pairs,
 * with the shared key computed once. Both directions use the same shared key;
 * each message gets a fresh random 24-byte nonce.
 */
export class BoxChannel {
	private readonly sharedKey: Uint8Array;

	constructor(ownPrivateKey: Uint8Array, peerPublicKey: Uint8Array) {
		if (ownPrivateKey.length !== KEY_LENGTH || peerPublicKey.length !== KEY_LENGTH) {
			throw new OpenError("keys must be 32 bytes");
		}
		this.sharedKey = nacl.box.before(peerPublicKey, ownPrivateKey);
	}

	seal(plaintext: Uint8Array): { nonce: Uint8Array; ciphertext: Uint8Array } {
		const nonce = new Uint8Array(randomBytes(NONCE_LENGTH));
		return { nonce, ciphertext: nacl.box.after(plaintext, nonce, this.sharedKey) };
	}

	open(nonce: Uint8Array, ciphertext: Uint8Array): Uint8Array {
		if (nonce.length !== NONCE_LENGTH) {
			throw new OpenError(`nonce must be ${NONCE_LENGTH} bytes, got ${nonce.length}`);
		}
		if (ciphertext.length < BOX_OVERHEAD) {
			throw new OpenError("ciphertext is shorter than the authenticator");
		}
		const plain = nacl.box.open.after(ciphertext, nonce, this.sharedKey);
		if (!plain) {
			throw new OpenError(
				"authentication failed: body was tampered with or sealed for another key",
			);
		}
		return plain;
	}

	/** Seals into one buffer: nonce || ciphertext. Used for peer-to-peer signal bodies. */
	sealToBytes(plaintext: Uint8Array): Uint8Array {
		const { nonce, ciphertext } = this.seal(plaintext);
		const out = new Uint8Array(nonce.length + ciphertext.length);
		out.set(nonce, 0);
		out.set(ciphertext, nonce.length);
		return out;
	}

	openFromBytes(sealed: Uint8Array): Uint8Array {
		if (sealed.length < NONCE_LENGTH + BOX_OVERHEAD) {
			throw new OpenError("sealed body is too short");
		}
		return this.open(sealed.subarray(0, NONCE_LENGTH), sealed.subarray(NONCE_LENGTH));
	}
}

/** One-shot seal for a recipient, nonce prepended. */
export function sealTo(
	plaintext: Uint8Array,
	recipientPublicKey: Uint8Array,
	senderPrivateKey: Uint8Array,
): Uint8Array {
	return new BoxChannel(senderPrivateKey, recipientPublicKey).sealToBytes(plaintext);
}

/** One-shot open of a sealTo() result. Throws OpenError. */
export function openFrom(
	sealed: Uint8Array,
	senderPublicKey: Uint8Array,
	recipientPrivateKey: Uint8Array,
): Uint8Array {
	return new BoxChannel(recipientPrivateKey, senderPublicKey).openFromBytes(sealed);
}
