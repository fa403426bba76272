import { PUBLIC_KEY_BYTES } from "./limits.js";

/**
 * Curve25519 u-coordinates of small order (and their non-canonical encodings),
 * as listed by libsodium. X25519 with any of them yields an all-zero shared
 * secret whatever the other private key is, so a challenge sealed to one of
 * them can be opened by anyone: such a key cannot prove possession.
 */
const SMALL_ORDER_POINTS: readonly Uint8Array[] = [
	// 0 (order 4)
	hex("0000000000000000000000000000000000000000000000000000000000000000"),
	// 1 (order 1)
	hex("0100000000000000000000000000000000000000000000000000000000000000"),
	// 325606250916557431795983626356110631294008115727848805560023387167927233504 (order 8)
	hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
	// 39382357235489614581723060781553021112529911719440698176882885853963445705823 (order 8)
	hex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
	// p - 1 (order 2)
	hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
	// p (= 0, order 4)
	hex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
	// p + 1 (= 1, order 1)
	hex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
];

/** True if the key is one of the small-order points above; X25519 ignores the top bit. */
export function isSmallOrderPublicKey(publicKey: Uint8Array): boolean {
	if (publicKey.length !== PUBLIC_KEY_BYTES) return false;
	for (const point of SMALL_ORDER_POINTS) {
		let diff = 0;
		for (let i = 0; i < PUBLIC_KEY_BYTES - 1; i++) diff |= (publicKey[i] ?? 0) ^ (point[i] ?? 0);
		diff |= ((publicKey[31] ?? 0) & 0x7f) ^ (point[31] ?? 0);
		if (diff === 0) return true;
	}
	return false;
}

function hex(text: string): Uint8Array {
	return new Uint8Array(Buffer.from(text, "hex"));
}
