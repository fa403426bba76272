/**
 * The relay's frame format. Every WebSocket binary message is exactly one
 * frame; text messages are a protocol error. Integers are big-endian.
 *
 *   type  name     direction  layout after the type byte
 *   0x01  HELLO    c → s      version (1 byte, = 1) ‖ token (1..1024 bytes, ASCII 0x21..0x7e)
 *   0x02  WELCOME  s → c      peer id (32) ‖ token expires_at_ms (u64)
 *   0x03  DATA     both       peer id (32) ‖ payload (1..65535 bytes)
 *   0x04  TOKEN    c → s      token (1..1024 bytes, ASCII 0x21..0x7e)
 *   0x05  ERROR    s → c      code (u16) ‖ message (0..1024 bytes of UTF-8)
 *
 * - HELLO is the first message of a connection and nothing else may come
 *   before the relay answers WELCOME (the caller's own peer id and the
 *   token's expiry). A bad token closes the connection (see CloseCode).
 * - DATA from a client names the destination peer id; the relay rewrites it
 *   to the sender's peer id before forwarding, so DATA to a client names the
 *   source. The payload is an opaque WireGuard packet.
 * - TOKEN replaces the token of an open connection (same peer id). The relay
 *   answers WELCOME with the new expiry, or ERROR (code 4001 or 4002) and
 *   keeps the old token, which still ends the connection when it expires.
 * - ERROR is informational; fatal conditions are WebSocket close codes.
 *
 * parseFrame and encodeFrame never throw: malformed input yields a FrameError.
 */
import { PEER_ID_BYTES } from "./peer-id.js";

export const PROTOCOL_VERSION = 1;

export const FrameType = {
	Hello: 0x01,
	Welcome: 0x02,
	Data: 0x03,
	Token: 0x04,
	Error: 0x05,
} as const;

/** Largest WireGuard packet a DATA frame carries (a UDP payload fits in 65535). */
export const MAX_PAYLOAD_BYTES = 65_535;
/** Longest token carried in HELLO or TOKEN. */
export const MAX_TOKEN_FRAME_BYTES = 1024;
/** Longest ERROR message, in bytes of UTF-8. */
export const MAX_ERROR_MESSAGE_BYTES = 1024;
/** Bytes before the payload of a DATA frame. */
export const DATA_HEADER_BYTES = 1 + PEER_ID_BYTES;
/** The largest valid frame (a full DATA frame); the relay refuses bigger messages. */
export const MAX_FRAME_BYTES = DATA_HEADER_BYTES + MAX_PAYLOAD_BYTES;

const WELCOME_BYTES = 1 + PEER_ID_BYTES + 8;

export type Frame =
	| { type: "hello"; version: number; token: string }
	| { type: "welcome"; peerId: Uint8Array; expiresAtMs: number }
	| { type: "data"; peerId: Uint8Array; payload: Uint8Array }
	| { type: "token"; token: string }
	| { type: "error"; code: number; message: string };

export type FrameErrorCode =
	| "empty"
	| "unknown-type"
	| "bad-length"
	| "bad-version"
	| "bad-token"
	| "bad-payload"
	| "bad-peer-id"
	| "bad-code"
	| "bad-message"
	| "bad-expiry";

export interface FrameError {
	code: FrameErrorCode;
	message: string;
}

export type ParseResult = { ok: true; frame: Frame } | { ok: false; error: FrameError };
export type EncodeResult = { ok: true; bytes: Uint8Array } | { ok: false; error: FrameError };

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/**
 * Parses one WebSocket message. Byte fields (peer id, payload) are views into
 * `bytes`, not copies. Never throws.
 */
export function parseFrame(bytes: Uint8Array): ParseResult {
	if (!(bytes instanceof Uint8Array)) return fail("empty", "frame is not bytes");
	if (bytes.length === 0) return fail("empty", "empty frame");
	const type = bytes[0];
	switch (type) {
		case FrameType.Data: {
			if (bytes.length <= DATA_HEADER_BYTES) {
				return fail("bad-length", `DATA frame of ${bytes.length} bytes has no payload`);
			}
			if (bytes.length > MAX_FRAME_BYTES) {
				return fail("bad-length", `DATA payload over ${MAX_PAYLOAD_BYTES} bytes`);
			}
			return ok({
				type: "data",
				peerId: bytes.subarray(1, DATA_HEADER_BYTES),
				payload: bytes.subarray(DATA_HEADER_BYTES),
			});
		}
		case FrameType.Hello: {
			if (bytes.length < 3) return fail("bad-length", "HELLO frame too short");
			if (bytes[1] !== PROTOCOL_VERSION) {
				return fail("bad-version", `unsupported protocol version ${bytes[1]}`);
			}
			const token = readToken(bytes.subarray(2));
			if (typeof token !== "string") return { ok: false, error: token };
			return ok({ type: "hello", version: PROTOCOL_VERSION, token });
		}
		case FrameType.Token: {
			const token = readToken(bytes.subarray(1));
			if (typeof token !== "string") return { ok: false, error: token };
			return ok({ type: "token", token });
		}
		case FrameType.Welcome: {
			if (bytes.length !== WELCOME_BYTES) {
				return fail("bad-length", `WELCOME frame must be ${WELCOME_BYTES} bytes`);
			}
			const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
			const expiry = view.getBigUint64(1 + PEER_ID_BYTES);
			if (expiry > BigInt(Number.MAX_SAFE_INTEGER)) {
				return fail("bad-expiry", "WELCOME expiry out of range");
			}
			return ok({
				type: "welcome",
				peerId: bytes.subarray(1, 1 + PEER_ID_BYTES),
				expiresAtMs: Number(expiry),
			});
		}
		case FrameType.Error: {
			if (bytes.length < 3) return fail("bad-length", "ERROR frame too short");
			if (bytes.length - 3 > MAX_ERROR_MESSAGE_BYTES) {
				return fail("bad-length", `ERROR message over ${MAX_ERROR_MESSAGE_BYTES} bytes`);
			}
			const code = ((bytes[1] ?? 0) << 8) | (bytes[2] ?? 0);
			let message: string;
			try {
				message = utf8.decode(bytes.subarray(3));
			} catch {
				return fail("bad-message", "ERROR message is not UTF-8");
			}
			return ok({ type: "error", code, message });
		}
		default:
			return fail("unknown-type", `unknown frame type ${type}`);
	}
}

/** Encodes a frame, checking every field. Never throws. */
export function encodeFrame(frame: Frame): EncodeResult {
	if (typeof frame !== "object" || frame === null) return fail("unknown-type", "not a frame");
	switch (frame.type) {
		case "data": {
			const peerId = checkPeerId(frame.peerId);
			if (peerId) return { ok: false, error: peerId };
			const payload = frame.payload;
			if (!(payload instanceof Uint8Array) || payload.length < 1) {
				return fail("bad-payload", "DATA payload must be 1 or more bytes");
			}
			if (payload.length > MAX_PAYLOAD_BYTES) {
				return fail("bad-payload", `DATA payload over ${MAX_PAYLOAD_BYTES} bytes`);
			}
			return { ok: true, bytes: encodeData(frame.peerId, payload) };
		}
		case "hello": {
			if (frame.version !== PROTOCOL_VERSION) {
				return fail("bad-version", `unsupported protocol version ${describe(frame.version)}`);
			}
			const token = tokenBytes(frame.token);
			if (!(token instanceof Uint8Array)) return { ok: false, error: token };
			const bytes = new Uint8Array(2 + token.length);
			bytes[0] = FrameType.Hello;
			bytes[1] = PROTOCOL_VERSION;
			bytes.set(token, 2);
			return { ok: true, bytes };
		}
		case "token": {
			const token = tokenBytes(frame.token);
			if (!(token instanceof Uint8Array)) return { ok: false, error: token };
			const bytes = new Uint8Array(1 + token.length);
			bytes[0] = FrameType.Token;
			bytes.set(token, 1);
			return { ok: true, bytes };
		}
		case "welcome": {
			const peerId = checkPeerId(frame.peerId);
			if (peerId) return { ok: false, error: peerId };
			if (!Number.isSafeInteger(frame.expiresAtMs) || frame.expiresAtMs < 0) {
				return fail("bad-expiry", "WELCOME expiry must be a non-negative safe integer");
			}
			const bytes = new Uint8Array(WELCOME_BYTES);
			bytes[0] = FrameType.Welcome;
			bytes.set(frame.peerId, 1);
			new DataView(bytes.buffer).setBigUint64(1 + PEER_ID_BYTES, BigInt(frame.expiresAtMs));
			return { ok: true, bytes };
		}
		case "error": {
			if (!Number.isInteger(frame.code) || frame.code < 0 || frame.code > 0xffff) {
				return fail("bad-code", "ERROR code must be an integer from 0 to 65535");
			}
			if (typeof frame.message !== "string") {
				return fail("bad-message", "ERROR message must be a string");
			}
			const message = utf8Encoder.encode(frame.message);
			if (message.length > MAX_ERROR_MESSAGE_BYTES) {
				return fail("bad-message", `ERROR message over ${MAX_ERROR_MESSAGE_BYTES} bytes`);
			}
			const bytes = new Uint8Array(3 + message.length);
			bytes[0] = FrameType.Error;
			bytes[1] = frame.code >> 8;
			bytes[2] = frame.code & 0xff;
			bytes.set(message, 3);
			return { ok: true, bytes };
		}
		default:
			return fail(
				"unknown-type",
				`unknown frame type ${describe((frame as { type: unknown }).type)}`,
			);
	}
}

/**
 * DATA frame without checks, for hot paths whose caller has already checked
 * the peer id (32 bytes) and the payload length (1..MAX_PAYLOAD_BYTES).
 */
export function encodeData(peerId: Uint8Array, payload: Uint8Array): Uint8Array {
	const bytes = Buffer.allocUnsafe(DATA_HEADER_BYTES + payload.length);
	bytes[0] = FrameType.Data;
	bytes.set(peerId, 1);
	bytes.set(payload, DATA_HEADER_BYTES);
	return bytes;
}

function readToken(bytes: Uint8Array): string | FrameError {
	if (bytes.length < 1 || bytes.length > MAX_TOKEN_FRAME_BYTES) {
		return { code: "bad-token", message: `token must be 1 to ${MAX_TOKEN_FRAME_BYTES} bytes` };
	}
	for (const byte of bytes) {
		if (byte < 0x21 || byte > 0x7e) {
			return { code: "bad-token", message: "token must be printable ASCII" };
		}
	}
	return String.fromCharCode(...bytes);
}

function tokenBytes(token: unknown): Uint8Array | FrameError {
	if (typeof token !== "string" || token.length < 1 || token.length > MAX_TOKEN_FRAME_BYTES) {
		return { code: "bad-token", message: `token must be 1 to ${MAX_TOKEN_FRAME_BYTES} characters` };
	}
	const bytes = new Uint8Array(token.length);
	for (let i = 0; i < token.length; i++) {
		const c = token.charCodeAt(i);
		if (c < 0x21 || c > 0x7e)
			return { code: "bad-token", message: "token must be printable ASCII" };
		bytes[i] = c;
	}
	return bytes;
}

function checkPeerId(peerId: unknown): FrameError | undefined {
	if (!(peerId instanceof Uint8Array) || peerId.length !== PEER_ID_BYTES) {
		return { code: "bad-peer-id", message: `peer id must be ${PEER_ID_BYTES} bytes` };
	}
	return undefined;
}

function describe(value: unknown): string {
	return typeof value === "number" || typeof value === "string"
		? JSON.stringify(value)
		: typeof value;
}

function ok(frame: Frame): ParseResult {
	return { ok: true, frame };
}

function fail(code: FrameErrorCode, message: string): { ok: false; error: FrameError } {
	return { ok: false, error: { code, message } };
}
