import type { ConnRole } from "./types.js";

/**
 * Controlling = bytewise-larger public key (shorter wins ties on a common
 * prefix). Equal keys (talking to ourselves) give "controlled", so such a
 * pair never offers.
 */
export function roleFor(localPublicKey: Uint8Array, remotePublicKey: Uint8Array): ConnRole {
	return compareBytes(localPublicKey, remotePublicKey) > 0 ? "controlling" : "controlled";
}

export function compareBytes(left: Uint8Array, right: Uint8Array): number {
	const length = Math.min(left.length, right.length);
	for (let index = 0; index < length; index++) {
		const difference = (left[index] ?? 0) - (right[index] ?? 0);
		if (difference !== 0) return difference;
	}
	return left.length - right.length;
}

/**
 * Delay before retry number `attempt` (0 = first retry):
 * min(max, initial * 2^attempt), less a random part of up to `jitter` of it.
 */
export function backoffDelayMs(
	attempt: number,
	initialMs: number,
	maxMs: number,
	jitter: number,
	random: () => number,
): number {
	const exponent = Number.isFinite(attempt) ? Math.max(0, Math.floor(attempt)) : 64;
	const capped = Math.min(maxMs, initialMs * 2 ** Math.min(exponent, 64));
	const clampedJitter = Math.min(1, Math.max(0, jitter));
	return Math.max(0, Math.round(capped * (1 - clampedJitter * unitInterval(random()))));
}

const SESSION_ID_HIGH = 2 ** 21;
const SESSION_ID_LOW = 2 ** 32;

/**
 * A random session id in [1, 2^53 - 1] that is not in `avoid`. Two draws make
 * up 53 bits because one double from `random` carries only ~52. If `random`
 * is degenerate (constant), falls back to counting up from the largest id to
 * avoid, so ids still never repeat.
 */
export function newSessionId(random: () => number, avoid: readonly number[]): number {
	for (let draw = 0; draw < 8; draw++) {
		const high = Math.floor(unitInterval(random()) * SESSION_ID_HIGH);
		const low = Math.floor(unitInterval(random()) * SESSION_ID_LOW);
		const id = high * SESSION_ID_LOW + low;
		if (id !== 0 && !avoid.includes(id)) return id;
	}
	let id = (Math.max(0, ...avoid) % Number.MAX_SAFE_INTEGER) + 1;
	while (avoid.includes(id)) id = (id % Number.MAX_SAFE_INTEGER) + 1;
	return id;
}

export function isSessionId(value: unknown): value is number {
	return typeof value === "number" && Number.isSafeInteger(value) && value > 0;
}

/** Clamps an injected random value into [0, 1); NaN and garbage become 0. */
function unitInterval(value: number): number {
	if (!Number.isFinite(value) || value <= 0) return 0;
	return value >= 1 ? 1 - Number.EPSILON : value;
}
