// The daemon's status socket (see status-wire.ts): answers one StatusRequest
// per connection with the agent's status, for `starling status`.
import { chmodSync, existsSync, unlinkSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "@starling/log";
import { DaemonStatus, StatusRequest } from "@starling/proto";
import {
	announcedLength,
	encodeFrame,
	FRAME_ERROR,
	FRAME_REQUEST,
	FRAME_STATUS,
	MAX_REQUEST_BYTES,
	takeFrame,
} from "./status-wire.js";

export interface StatusSocket {
	close(): Promise<void>;
}

/** Listens on `path` (mode 0600, like the gRPC socket) and answers with `status(detail)`. */
export async function startStatusSocket(
	path: string,
	status: (detail: boolean) => Promise<DaemonStatus>,
	logger: Logger,
): Promise<StatusSocket> {
	if (existsSync(path)) unlinkSync(path);
	// Open connections, so that close() need not wait for a client that sent
	// nothing yet (up to its 10 s timeout) or for a status still being computed.
	const connections = new Set<Socket>();
	const server: Server = createServer((conn) => {
		connections.add(conn);
		conn.on("close", () => connections.delete(conn));
		let buffered: Buffer = Buffer.alloc(0);
		let answered = false;
		// A client that never sends its request is dropped; once it has, the answer
		// takes as long as the status does (seconds on a loaded machine).
		conn.setTimeout(10_000, () => conn.destroy());
		conn.on("error", () => undefined);
		conn.on("data", (chunk: Buffer) => {
			if (answered) return;
			buffered = Buffer.concat([buffered, chunk]);
			const length = announcedLength(buffered);
			if (length !== undefined && length > MAX_REQUEST_BYTES) {
				conn.destroy();
				return;
			}
			const frame = takeFrame(buffered);
			if (frame === undefined) return; // the rest of the request is still to come
			answered = true;
			conn.setTimeout(0);
			const reply = (kind: number, body: Uint8Array) => conn.end(encodeFrame(kind, body));
			let detail: boolean;
			try {
				if (frame.kind !== FRAME_REQUEST) throw new Error(`unknown request kind ${frame.kind}`);
				detail = StatusRequest.decode(frame.body).detail;
			} catch (err) {
				reply(FRAME_ERROR, Buffer.from(`bad status request: ${(err as Error).message}`));
				return;
			}
			status(detail).then(
				(s) => reply(FRAME_STATUS, DaemonStatus.encode(s).finish()),
				(err) => {
					const message = err instanceof Error ? err.message.split("\n")[0] : String(err);
					logger.error({ error: message }, "status request failed");
					reply(FRAME_ERROR, Buffer.from(message ?? ""));
				},
			);
		});
	});
	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(path, () => {
			server.off("error", reject);
			resolve();
		});
	});
	chmodSync(path, 0o600);
	return {
		async close() {
			const closed = new Promise<void>((resolve) => server.close(() => resolve()));
			for (const conn of connections) conn.destroy();
			await closed;
			if (existsSync(path)) unlinkSync(path);
		},
	};
}
