import { randomBytes } from "node:crypto";
import { BoxChannel, equalBytes, generateKeyPair } from "@starling/crypto";
import type { SignalChallenge } from "@starling/proto";
import { CHALLENGE_SECRET_BYTES } from "./limits.js";

/** A challenge to send and the secret that answers it. */
export interface IssuedChallenge {
	challenge: SignalChallenge;
	secret: Uint8Array;
}

/**
 * Seals a fresh random secret to the claimed public key from a one-time
 * ephemeral key pair. Only the holder of the matching private key can open
 * it; the ephemeral key means no long-term server key is involved or exposed.
 */
export function issueChallenge(claimedPublicKey: Uint8Array): IssuedChallenge {
	const ephemeral = generateKeyPair();
	const secret = new Uint8Array(randomBytes(CHALLENGE_SECRET_BYTES));
	const { nonce, ciphertext } = new BoxChannel(ephemeral.privateKey, claimedPublicKey).seal(secret);
	return {
		challenge: { ephemeralPublicKey: ephemeral.publicKey, nonce, sealedSecret: ciphertext },
		secret,
	};
}

/** Constant-time comparison of the answer with the issued secret. */
export function isCorrectAnswer(issued: IssuedChallenge, answer: Uint8Array): boolean {
	return answer.length === issued.secret.length && equalBytes(answer, issued.secret);
}
