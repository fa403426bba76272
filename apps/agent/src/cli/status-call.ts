// `starling status` asks the daemon's status socket (daemon/status-wire.ts):
// node:net and one protobuf message, nothing else to load.
import { connect } from "node:net";
import { DaemonStatus, StatusRequest } from "@starling/proto";
import {
	encodeFrame,
	FRAME_ERROR,
	FRAME_REQUEST,
	FRAME_STATUS,
	statusSocketPath,
	takeFrame,
} from "../daemon/status-wire.js";

/** The status socket answered with an error, or with something that is not a status. */
export class StatusCallError extends Error {}

/**
 * The daemon's status, from the status socket beside the gRPC socket
 * `grpcSocket`; undefined when nothing listens there (no daemon, or a daemon
 * without a status socket: the caller then asks over gRPC, which says which).
 */
export function fetchStatus(
	grpcSocket: string,
	detail: boolean,
	timeoutMs = 30_000,
): Promise<DaemonStatus | undefined> {
	return new Promise((resolve, reject) => {
		const conn = connect(statusSocketPath(grpcSocket));
		let buffered: Buffer = Buffer.alloc(0);
		let settled = false;
		const finish = (err: Error | undefined, status?: DaemonStatus) => {
			if (settled) return;
			settled = true;
			conn.destroy();
			if (err) reject(err);
			else resolve(status);
		};
		conn.setTimeout(timeoutMs, () =>
			finish(new StatusCallError(`the daemon did not answer within ${timeoutMs} ms`)),
		);
		conn.on("error", (err: NodeJS.ErrnoException) => {
			if (err.code === "ENOENT" || err.code === "ECONNREFUSED") finish(undefined, undefined);
			else finish(new StatusCallError(`cannot ask the daemon for its status: ${err.message}`));
		});
		conn.on("connect", () => {
			conn.write(encodeFrame(FRAME_REQUEST, StatusRequest.encode({ detail }).finish()));
		});
		conn.on("data", (chunk: Buffer) => {
			buffered = Buffer.concat([buffered, chunk]);
			const frame = takeFrame(buffered);
			if (frame === undefined) return;
			if (frame.kind === FRAME_ERROR) {
				finish(new StatusCallError(frame.body.toString("utf8")));
			} else if (frame.kind !== FRAME_STATUS) {
				finish(new StatusCallError(`the daemon answered with an unknown frame kind ${frame.kind}`));
			} else {
				try {
					finish(undefined, DaemonStatus.decode(frame.body));
				} catch (err) {
					finish(
						new StatusCallError(`cannot decode the daemon's status: ${(err as Error).message}`),
					);
				}
			}
		});
		conn.on("end", () =>
			finish(new StatusCallError("the daemon closed the status socket without an answer")),
		);
	});
}
