// The gRPC-over-HTTP/2 wire rules the CLI's small daemon client needs, as
// pure functions: message framing, the deadline header, and reading the
// status a call ended with. See https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md.

/** gRPC status OK; any other code is a failed call. */
export const GRPC_OK = 0;

/** One uncompressed message: 1 byte compressed flag (0), 4 bytes big-endian length, the bytes. */
export function frameMessage(message: Uint8Array): Buffer {
	const frame = Buffer.allocUnsafe(5 + message.length);
	frame[0] = 0;
	frame.writeUInt32BE(message.length, 1);
	frame.set(message, 5);
	return frame;
}

/**
 * Splits length-prefixed messages off the front of `buffered`: the complete
 * ones, and the bytes of an incomplete one to keep for the next chunk.
 * Throws on a compressed message (the CLI never asks for compression).
 */
export function takeMessages(buffered: Buffer): { messages: Buffer[]; rest: Buffer } {
	const messages: Buffer[] = [];
	let offset = 0;
	while (buffered.length - offset >= 5) {
		if (buffered[offset] !== 0) throw new Error("the daemon sent a compressed gRPC message");
		const length = buffered.readUInt32BE(offset + 1);
		if (buffered.length - offset - 5 < length) break;
		messages.push(buffered.subarray(offset + 5, offset + 5 + length));
		offset += 5 + length;
	}
	return { messages, rest: buffered.subarray(offset) };
}

/** The grpc-timeout header for a deadline `ms` from now (milliseconds, at most 8 digits). */
export function timeoutHeader(ms: number): string {
	const whole = Math.max(0, Math.ceil(ms));
	return whole < 100_000_000 ? `${whole}m` : `${Math.ceil(whole / 1000)}S`;
}

/** How a call ended, from the grpc-status and grpc-message headers (or trailers). */
export interface CallStatus {
	code: number;
	message: string;
}

/**
 * The status of a call from its header block, or undefined when the block
 * has none (the response headers of a call whose status comes in trailers).
 * grpc-message is percent-encoded UTF-8.
 */
export function statusOf(headers: Record<string, unknown>): CallStatus | undefined {
	const raw = headers["grpc-status"];
	if (raw === undefined) return undefined;
	const code = Number(raw);
	const encoded = typeof headers["grpc-message"] === "string" ? headers["grpc-message"] : "";
	let message: string;
	try {
		message = decodeURIComponent(encoded);
	} catch {
		message = encoded;
	}
	return { code: Number.isInteger(code) ? code : 2 /* UNKNOWN */, message };
}

const STATUS_NAMES = [
	"OK",
	"CANCELLED",
	"UNKNOWN",
	"INVALID_ARGUMENT",
	"DEADLINE_EXCEEDED",
	"NOT_FOUND",
	"ALREADY_EXISTS",
	"PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION",
	"ABORTED",
	"OUT_OF_RANGE",
	"UNIMPLEMENTED",
	"INTERNAL",
	"UNAVAILABLE",
	"DATA_LOSS",
	"UNAUTHENTICATED",
];

/** The one line a failed call reports: the daemon's message, else the status name. */
export function failureLine(status: CallStatus): string {
	if (status.message) return status.message;
	return `the daemon call failed: ${STATUS_NAMES[status.code] ?? `status ${status.code}`}`;
}
