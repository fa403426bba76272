import { BoxChannel, type KeyPair, OpenError } from "@starling/crypto";
import type { SignalChallenge } from "@starling/proto";

/**
 * Opens the server's challenge with our private key and returns the secret
 * to send back. Returns an empty secret when the challenge cannot be opened
 * (our key pair does not match the key we claimed): the server then refuses
 * with UNAUTHENTICATED, which is the answer the caller should see.
 */
export function answerChallenge(challenge: SignalChallenge, keyPair: KeyPair): Uint8Array {
	try {
		return new BoxChannel(keyPair.privateKey, challenge.ephemeralPublicKey).open(
			challenge.nonce,
			challenge.sealedSecret,
		);
	} catch (err) {
		if (err instanceof OpenError) return new Uint8Array(0);
		throw err;
	}
}
