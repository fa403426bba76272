import { BoxChannel, generateKeyPair } from "@starling/crypto";
import { describe, expect, it } from "vitest";
import { answerChallenge } from "./handshake.js";

function challengeFor(publicKey: Uint8Array, secret: Uint8Array) {
	const ephemeral = generateKeyPair();
	const { nonce, ciphertext } = new BoxChannel(ephemeral.privateKey, publicKey).seal(secret);
	return { ephemeralPublicKey: ephemeral.publicKey, nonce, sealedSecret: ciphertext };
}

describe("answerChallenge", () => {
	it("recovers the secret sealed to our public key", () => {
		const own = generateKeyPair();
		const secret = new Uint8Array(32).fill(7);
		expect(answerChallenge(challengeFor(own.publicKey, secret), own)).toEqual(secret);
	});

	it("answers empty when the private key does not match the claimed public key", () => {
		const victim = generateKeyPair();
		const attacker = generateKeyPair();
		const challenge = challengeFor(victim.publicKey, new Uint8Array(32).fill(1));
		const forged = { publicKey: victim.publicKey, privateKey: attacker.privateKey };
		expect(answerChallenge(challenge, forged)).toHaveLength(0);
	});

	it("answers empty to a malformed challenge", () => {
		const own = generateKeyPair();
		const empty = {
			ephemeralPublicKey: new Uint8Array(0),
			nonce: new Uint8Array(0),
			sealedSecret: new Uint8Array(0),
		};
		expect(answerChallenge(empty, own)).toHaveLength(0);
	});
});
