import { createHash } from "node:crypto";
import { status } from "@grpc/grpc-js";
import {
	BusClosedError,
	BusNoResponderError,
	BusTimeoutError,
	BusUnavailableError,
} from "@starling/bus";
import { encodeKey } from "@starling/crypto";
import type { SignalBusForward } from "@starling/proto";
import { PUBLIC_KEY_BYTES } from "./limits.js";
import { validateSend } from "./validation.js";

/**
 * The rules of routing between signal instances, without any I/O: which
 * subject reaches a peer, what a forwarded message must look like, and what
 * the sender hears when the bus cannot deliver.
 */

/** Requests for a peer go to `starling.signal.peer.<hex SHA-256 of its key>`. */
export const PEER_SUBJECT_PREFIX = "starling.signal.peer.";
/** Every instance announces the keys that complete a handshake on it here. */
export const STREAM_OPENED_SUBJECT = "starling.signal.stream-opened";
/**
 * The queue group of the per-peer subscriptions: while a peer briefly has
 * streams on two instances, each forwarded message reaches one of them only.
 */
export const DELIVERY_QUEUE = "starling-signal-delivery";

/**
 * The subject of a peer's key. Hashed so that no key appears in a subject
 * (subjects show up in NATS monitoring and permissions, and base64 has `/`
 * and `+`); SHA-256 keeps two keys from ever sharing one.
 */
export function peerSubject(publicKey: Uint8Array): string {
	return PEER_SUBJECT_PREFIX + createHash("sha256").update(publicKey).digest("hex");
}

/** Why a send ended without delivery: a refusal reason for the counters, a code and a message. */
export interface SendAnswer {
	code: status;
	message: string;
}

export function notConnected(peerId: string): SendAnswer {
	return { code: status.NOT_FOUND, message: `peer ${peerId} is not connected` };
}

export function recipientSlow(peerId: string): SendAnswer {
	return {
		code: status.RESOURCE_EXHAUSTED,
		message: `peer ${peerId} is not reading fast enough; message dropped`,
	};
}

export const DELIVERED: SendAnswer = { code: status.OK, message: "" };

/**
 * What the sender hears when a forward over the bus fails.
 * - Nobody subscribes to the peer's subject: no instance holds it, so the
 *   same NOT_FOUND as a single instance gives (NATS says so at once).
 * - The bus is down, or the instance holding the peer does not answer in
 *   time: UNAVAILABLE. NOT_FOUND would claim the peer is offline, which
 *   nobody knows; the agent backs off and retries either way.
 */
export function answerForBusFailure(err: unknown, peerId: string): SendAnswer {
	if (err instanceof BusNoResponderError) return notConnected(peerId);
	if (err instanceof BusUnavailableError || err instanceof BusClosedError) {
		return {
			code: status.UNAVAILABLE,
			message: `peer ${peerId} is not connected to this signal instance, and the bus to the other instances is unavailable`,
		};
	}
	if (err instanceof BusTimeoutError) {
		return {
			code: status.UNAVAILABLE,
			message: `peer ${peerId} is connected to another signal instance that did not answer in time`,
		};
	}
	return {
		code: status.INTERNAL,
		message: `cannot route to peer ${peerId} through another signal instance`,
	};
}

/** A forwarded message that passed the checks, with the recipient's registry id. */
export interface CheckedForward {
	from: Uint8Array;
	to: Uint8Array;
	toId: string;
	body: Uint8Array;
}

/**
 * Checks a forward that arrived on `subject` with the same rules the local
 * path applies to a send (recipient length, body size), plus: the sender key
 * is a key, and the recipient hashes to the subject it came on (a message
 * for one peer must never be delivered to another). The sender's identity
 * itself cannot be checked again here: the sending instance proved it.
 */
export function checkForward(
	forward: SignalBusForward,
	subject: string,
): CheckedForward | SendAnswer {
	const rejection = validateSend({ id: 0, to: forward.to, body: forward.body });
	if (rejection) return rejection;
	if (forward.from.length !== PUBLIC_KEY_BYTES) {
		return {
			code: status.INVALID_ARGUMENT,
			message: `forwarded sender must be a ${PUBLIC_KEY_BYTES}-byte public key, got ${forward.from.length} bytes`,
		};
	}
	if (peerSubject(forward.to) !== subject) {
		return {
			code: status.INVALID_ARGUMENT,
			message: "forwarded recipient does not match the subject it was sent on",
		};
	}
	return {
		from: Uint8Array.from(forward.from),
		to: forward.to,
		toId: encodeKey(forward.to),
		body: Uint8Array.from(forward.body),
	};
}

/**
 * Whether a local stream that authenticated at `localAuthenticatedAtMs`
 * should give way to a newer stream for the same key on another instance.
 * Only an announcement of a strictly later handshake ends it, so one that
 * arrives late (NATS buffers while reconnecting) never ends a newer stream.
 * Instances compare wall clocks: skew between them (NTP: milliseconds) only
 * matters for a peer that moves back and forth faster than that.
 */
export function yieldsTo(localAuthenticatedAtMs: number, announcedAtMs: number): boolean {
	return localAuthenticatedAtMs < announcedAtMs;
}
