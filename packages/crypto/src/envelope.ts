import type { SealedEnvelope } from "@starling/proto";
import { BoxChannel, OpenError } from "./box.js";
import { KEY_LENGTH } from "./keys.js";

/** Encodes and decodes one message type; generated proto codecs fit this. */
export interface MessageCodec<T> {
	encode(message: T): { finish(): Uint8Array };
	decode(bytes: Uint8Array): T;
}

/**
 * Seals management bodies between one agent key and the server key. The same
 * channel serves both directions: the agent seals requests and opens
 * responses, the server the reverse.
 */
export class EnvelopeChannel {
	private readonly box: BoxChannel;

	constructor(
		private readonly ownPublicKey: Uint8Array,
		ownPrivateKey: Uint8Array,
		readonly peerPublicKey: Uint8Array,
	) {
		this.box = new BoxChannel(ownPrivateKey, peerPublicKey);
	}

	seal<T>(codec: MessageCodec<T>, message: T): SealedEnvelope {
		const { nonce, ciphertext } = this.box.seal(codec.encode(message).finish());
		return { senderPublicKey: this.ownPublicKey, nonce, ciphertext };
	}

	/** Opens an envelope sent by the peer; throws OpenError if it was not. */
	open<T>(codec: MessageCodec<T>, envelope: SealedEnvelope): T {
		if (!equalBytes(envelope.senderPublicKey, this.peerPublicKey)) {
			throw new OpenError("envelope was sealed by a different key");
		}
		const plain = this.box.open(envelope.nonce, envelope.ciphertext);
		try {
			return codec.decode(plain);
		} catch (err) {
			throw new OpenError(`sealed body is not a valid message: ${(err as Error).message}`);
		}
	}
}

export function assertEnvelopeShape(envelope: SealedEnvelope): void {
	if (envelope.senderPublicKey.length !== KEY_LENGTH) {
		throw new OpenError("sender_public_key must be 32 bytes");
	}
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
	if (a.length !== b.length) return false;
	let diff = 0;
	for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
	return diff === 0;
}
