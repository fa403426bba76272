// A small gRPC client for the CLI's unary calls to the daemon, over node:http2
// on the daemon's unix socket. The CLI's common commands (status, down, login,
// logout) use it instead of @grpc/grpc-js, whose loading alone took longer
// than a whole `starling status` may. The paths and codecs are the generated
// DaemonServiceService's, so the wire is the same one grpc-js speaks.
import type * as Http2 from "node:http2";
import { connect as connectUnix } from "node:net";
import {
	type CallStatus,
	failureLine,
	frameMessage,
	GRPC_OK,
	statusOf,
	takeMessages,
	timeoutHeader,
} from "./grpc-frame.js";

// The service's generated paths and codecs, for the commands that load this module.
export { DaemonServiceService } from "@starling/proto";

/** What a unary method of a generated grpc-js service definition carries. */
export interface UnaryMethod<Req, Res> {
	path: string;
	requestSerialize(value: Req): Buffer;
	responseDeserialize(bytes: Buffer): Res;
}

/** A call that failed: the daemon is not there, or it answered with a non-OK status. */
export class DaemonCallError extends Error {}

export function daemonNotRunning(socket: string): DaemonCallError {
	return new DaemonCallError(
		`the starling daemon is not running (nothing listens on ${socket}); start it with 'starling service start' or 'starling service run'`,
	);
}

/** Calls one unary method of the daemon on `socket` and resolves with its response. */
export async function callDaemon<Req, Res>(
	socket: string,
	method: UnaryMethod<Req, Res>,
	request: Req,
	timeoutMs = 30_000,
): Promise<Res> {
	// Imported here, not at the top: a bundler hoists top-level imports of
	// built-ins, and node:http2 (with TLS and crypto) costs ~60 ms to load,
	// which `starling status` and `version` must not pay.
	const { connect: connectHttp2, constants }: typeof Http2 = await import("node:http2");
	return new Promise<Res>((resolve, reject) => {
		let settled = false;
		const session = connectHttp2("http://localhost", {
			createConnection: () => connectUnix(socket),
		});
		const finish = (err: Error | undefined, response?: Res) => {
			if (settled) return;
			settled = true;
			session.close();
			if (err) reject(err);
			else resolve(response as Res);
		};
		// A socket nobody listens on fails the session, or the pending call with the
		// connect error as its cause, depending on which Node notices first.
		const failed = (err: Error) => {
			const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
			const code = cause?.code ?? (err as NodeJS.ErrnoException).code;
			finish(
				code === "ENOENT" || code === "ECONNREFUSED"
					? daemonNotRunning(socket)
					: new DaemonCallError(`cannot reach the daemon on ${socket}: ${err.message}`),
			);
		};
		session.on("error", failed);

		const stream = session.request({
			[constants.HTTP2_HEADER_METHOD]: "POST",
			[constants.HTTP2_HEADER_PATH]: method.path,
			[constants.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc",
			te: "trailers",
			"grpc-timeout": timeoutHeader(timeoutMs),
		});
		stream.setTimeout(timeoutMs, () => {
			stream.close(constants.NGHTTP2_CANCEL);
			finish(new DaemonCallError(`the daemon did not answer within ${timeoutMs} ms`));
		});

		let buffered: Buffer = Buffer.alloc(0);
		const messages: Buffer[] = [];
		let status: CallStatus | undefined;
		stream.on("response", (headers) => {
			// A call that fails at once ends with its status in the response headers.
			status = statusOf(headers) ?? status;
		});
		stream.on("trailers", (trailers) => {
			status = statusOf(trailers) ?? status;
		});
		stream.on("data", (chunk: Buffer) => {
			try {
				const taken = takeMessages(Buffer.concat([buffered, chunk]));
				messages.push(...taken.messages);
				buffered = taken.rest;
			} catch (err) {
				stream.close(constants.NGHTTP2_PROTOCOL_ERROR);
				finish(new DaemonCallError((err as Error).message));
			}
		});
		stream.on("error", failed);
		stream.on("close", () => {
			if (settled) return;
			if (status === undefined) {
				finish(new DaemonCallError("the daemon closed the call without a gRPC status"));
			} else if (status.code !== GRPC_OK) {
				finish(new DaemonCallError(failureLine(status)));
			} else if (messages.length !== 1 || buffered.length > 0) {
				finish(
					new DaemonCallError(`the daemon answered with ${messages.length} messages, expected 1`),
				);
			} else {
				try {
					finish(undefined, method.responseDeserialize(messages[0] as Buffer));
				} catch (err) {
					finish(
						new DaemonCallError(`cannot decode the daemon's answer: ${(err as Error).message}`),
					);
				}
			}
		});
		stream.end(frameMessage(method.requestSerialize(request)));
	});
}
