// The status socket's wire: one request frame, one answer frame, each a
// 1-byte kind, a 4-byte big-endian length and that many bytes. The request
// is a StatusRequest; the answer a DaemonStatus (kind STATUS) or a one-line
// UTF-8 error (kind ERROR). Both are protobuf messages of proto/starling/v1/daemon.proto.
// It exists so that `starling status` need not load node:http2 (with TLS and
// crypto, ~60 ms of start-up) to ask the daemon for its status.

export const FRAME_REQUEST = 0;
export const FRAME_STATUS = 0;
export const FRAME_ERROR = 1;
/** A status request is a few bytes; anything larger is not one. */
export const MAX_REQUEST_BYTES = 1024;

export function encodeFrame(kind: number, body: Uint8Array): Buffer {
	const frame = Buffer.allocUnsafe(5 + body.length);
	frame[0] = kind;
	frame.writeUInt32BE(body.length, 1);
	frame.set(body, 5);
	return frame;
}

/** The first complete frame of `buffered`, or undefined while it is incomplete. */
export function takeFrame(buffered: Buffer): { kind: number; body: Buffer } | undefined {
	if (buffered.length < 5) return undefined;
	const length = buffered.readUInt32BE(1);
	if (buffered.length < 5 + length) return undefined;
	return { kind: buffered[0] as number, body: buffered.subarray(5, 5 + length) };
}

/** The frame's announced body length, once its header is in (to refuse oversized requests early). */
export function announcedLength(buffered: Buffer): number | undefined {
	return buffered.length < 5 ? undefined : buffered.readUInt32BE(1);
}

/** The status socket beside the daemon's gRPC socket: /var/run/starling.sock -> /var/run/starling-status.sock. */
export function statusSocketPath(grpcSocket: string): string {
	return grpcSocket.endsWith(".sock")
		? `${grpcSocket.slice(0, -".sock".length)}-status.sock`
		: `${grpcSocket}-status.sock`;
}
