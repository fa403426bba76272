import type { SecureContextOptions } from "node:tls";
import { MAX_FRAME_BYTES } from "@starling/relay-protocol";
import { WebSocket } from "ws";

export interface RelayProbeResult {
	url: string;
	reachable: boolean;
	/** TCP (and TLS) connect plus the WebSocket upgrade, in ms. */
	connectMs?: number;
	/** One WebSocket ping/pong round trip on the open connection, in ms. */
	rttMs?: number;
	/** Why it is not reachable, one line. */
	error?: string;
}

export interface RelayProbeOptions {
	/** Whole probe. Default 5 s. */
	timeoutMs?: number;
	tls?: Pick<SecureContextOptions, "ca"> & { servername?: string; rejectUnauthorized?: boolean };
}

/**
 * Measures whether a relay answers and how far away it is, WITHOUT joining
 * it: no HELLO and no token is sent. (Presenting the peer's token on a
 * second connection would make the relay replace the peer's real one.)
 * The relay's WebSocket layer answers pings before admission.
 */
export function probeRelay(
	url: string,
	options: RelayProbeOptions = {},
): Promise<RelayProbeResult> {
	const timeoutMs = options.timeoutMs ?? 5_000;
	return new Promise((resolve) => {
		let ws: WebSocket;
		const startedAt = performance.now();
		try {
			const parsed = new URL(url);
			if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
				resolve({ url, reachable: false, error: "relay URL must be ws:// or wss://" });
				return;
			}
			ws = new WebSocket(url, {
				perMessageDeflate: false,
				maxPayload: MAX_FRAME_BYTES,
				handshakeTimeout: timeoutMs,
				...(options.tls ?? {}),
			});
		} catch (err) {
			resolve({ url, reachable: false, error: oneLine(err) });
			return;
		}
		const result: RelayProbeResult = { url, reachable: false };
		let settled = false;
		const done = (error?: string) => {
			if (settled) return;
			settled = true;
			clearTimeout(timer);
			if (error !== undefined) result.error = error;
			if (ws.readyState === WebSocket.OPEN) ws.close(1000, "probe done");
			else ws.terminate();
			resolve(result);
		};
		const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timeoutMs);
		let pingAt = 0;
		ws.on("open", () => {
			result.reachable = true;
			result.connectMs = round(performance.now() - startedAt);
			pingAt = performance.now();
			ws.ping();
		});
		ws.on("pong", () => {
			result.rttMs = round(performance.now() - pingAt);
			done();
		});
		ws.on("error", (err) => done(oneLine(err)));
		ws.on("close", (code, reason) =>
			done(`closed by the relay (${code}${reason.length ? ` ${reason.toString()}` : ""})`),
		);
	});
}

function round(ms: number): number {
	return Math.round(ms * 100) / 100;
}

function oneLine(err: unknown): string {
	return (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
}
