import {
	createServer as createHttpServer,
	type IncomingMessage,
	type Server,
	type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Duplex } from "node:stream";
import { createLogger, type Logger } from "@starling/log";
import {
	CloseCode,
	DATA_HEADER_BYTES,
	encodeFrame,
	type Frame,
	FrameType,
	MAX_FRAME_BYTES,
	MIN_SECRET_BYTES,
	parseFrame,
	peerIdHex,
	type RelaySecret,
	verifyRelayToken,
} from "@starling/relay-protocol";
import { errorJson, respond } from "@starling/service-runtime";
import { type RawData, type WebSocket, WebSocketServer } from "ws";
import {
	BUFFERED_SAMPLE_INTERVAL_MS,
	DEFAULT_HELLO_TIMEOUT_MS,
	DEFAULT_MAX_BUFFERED_BYTES,
	DEFAULT_MAX_CONNECTIONS,
	DEFAULT_MAX_TOTAL_BUFFERED_BYTES,
	DEFAULT_PING_INTERVAL_MS,
	DEFAULT_SHUTDOWN_GRACE_MS,
	MAX_TIMER_MS,
} from "./limits.js";
import {
	createRelayMetrics,
	type DisconnectReason,
	emptyStats,
	type RefusalReason,
	type RelayStats,
} from "./metrics.js";

export { DEFAULT_LISTEN } from "./config.js";
export * from "./limits.js";
export type { DisconnectReason, DropReason, RefusalReason, RelayStats } from "./metrics.js";

export interface RelayServerOptions {
	/** Secret shared with management; tokens are HMACs under it. */
	secret: RelaySecret;
	/** Address to bind; default 127.0.0.1. IPv6 literals without brackets. */
	host?: string;
	/** Port to bind; 0 picks a free one (see the returned port). Default 33080. */
	port?: number;
	/** PEM certificate chain and key: serve wss:// (and https:// for /healthz, /readyz, /metrics). */
	tls?: { cert: string | Buffer; key: string | Buffer };
	/** Open connections (admitted or not) before new ones are closed with 1013. */
	maxConnections?: number;
	/** Bytes queued towards one receiver beyond which frames to it are dropped. */
	maxBufferedBytes?: number;
	/** Bytes queued towards all receivers beyond which every frame is dropped. */
	maxTotalBufferedBytes?: number;
	/** Time allowed from upgrade to a valid HELLO. */
	helloTimeoutMs?: number;
	/** WebSocket ping interval; a connection that misses one is terminated. */
	pingIntervalMs?: number;
	/** How long close() waits for clients to leave before cutting them off. */
	shutdownGraceMs?: number;
	logger?: Logger;
	/** Clock for token checks (tests). Default Date.now. */
	now?: () => number;
}

export interface RelayServer {
	/** The bound port (the ephemeral one when 0 was asked for). */
	readonly port: number;
	/** ws://host:port or wss://host:port, for clients. */
	readonly url: string;
	/** Counters as they are now (a copy). */
	stats(): RelayStats;
	/** The Prometheus text served at /metrics. */
	metrics(): Promise<string>;
	/** Closes every connection with 1001 and stops listening. Safe to call twice. */
	close(): Promise<void>;
}

type Phase = "pending" | "ready" | "refused" | "disconnecting" | "closed";

/** One WebSocket and what the relay knows about it. */
class Connection {
	phase: Phase = "pending";
	/** The authenticated peer id (set when ready). */
	peerId: Buffer = Buffer.alloc(0);
	/** peerId as a latin1 string: the key of the peer table. */
	peerKey = "";
	expiresAtMs = 0;
	helloTimer: NodeJS.Timeout | undefined;
	expiryTimer: NodeJS.Timeout | undefined;
	killTimer: NodeJS.Timeout | undefined;
	/** Answered the last ping (or sent anything since). */
	alive = true;
	/** The socket is corked until the end of this tick (see forward). */
	corked = false;
	disconnectReason: DisconnectReason = "client";

	constructor(
		readonly ws: WebSocket,
		/** The TCP (or TLS) socket under ws, for corking. */
		readonly socket: Duplex,
		readonly remote: string,
	) {}
}

function uncork(conn: Connection): void {
	conn.corked = false;
	conn.socket.uncork();
}

/** Time a closing connection gets to finish the close handshake. */
const CLOSE_HANDSHAKE_MS = 2_000;
/** Sockets allowed beyond maxConnections (health checks, scrapes, upgrades in flight). */
const EXTRA_SOCKETS = 1024;
/** Longest close reason a WebSocket close frame carries. */
const MAX_CLOSE_REASON_BYTES = 123;

/** Starts the relay and resolves once it is listening. */
export async function startRelayServer(options: RelayServerOptions): Promise<RelayServer> {
	const secret = options.secret;
	const secretLength =
		typeof secret === "string" ? Buffer.byteLength(secret, "utf8") : secret.byteLength;
	if (secretLength < MIN_SECRET_BYTES) {
		throw new RangeError(`secret must be at least ${MIN_SECRET_BYTES} bytes`);
	}
	const host = options.host ?? "127.0.0.1";
	const requestedPort = options.port ?? 33080;
	if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
		throw new RangeError(`port must be an integer from 0 to 65535, got ${requestedPort}`);
	}
	const maxConnections = positive(
		"maxConnections",
		options.maxConnections,
		DEFAULT_MAX_CONNECTIONS,
	);
	const maxBufferedBytes = positive(
		"maxBufferedBytes",
		options.maxBufferedBytes,
		DEFAULT_MAX_BUFFERED_BYTES,
	);
	const maxTotalBufferedBytes = positive(
		"maxTotalBufferedBytes",
		options.maxTotalBufferedBytes,
		DEFAULT_MAX_TOTAL_BUFFERED_BYTES,
	);
	const helloTimeoutMs = positive(
		"helloTimeoutMs",
		options.helloTimeoutMs,
		DEFAULT_HELLO_TIMEOUT_MS,
	);
	const pingIntervalMs = positive(
		"pingIntervalMs",
		options.pingIntervalMs,
		DEFAULT_PING_INTERVAL_MS,
	);
	const shutdownGraceMs = positive(
		"shutdownGraceMs",
		options.shutdownGraceMs,
		DEFAULT_SHUTDOWN_GRACE_MS,
	);
	const logger = options.logger ?? createLogger("relay");
	const now = options.now ?? Date.now;
	const startedAtMs = Date.now();

	const stats = emptyStats();
	const registry = createRelayMetrics(() => stats);
	/** Every open WebSocket, admitted or not. */
	const connections = new Set<Connection>();
	/** Admitted connections by peer id (latin1 string of the 32 bytes). */
	const peers = new Map<string, Connection>();
	/** Bytes queued towards receivers: sampled, and raised by each frame queued since. */
	let bufferedEstimate = 0;
	let closing: Promise<void> | undefined;

	const wss = new WebSocketServer({
		noServer: true,
		perMessageDeflate: false,
		maxPayload: MAX_FRAME_BYTES,
		clientTracking: false,
		skipUTF8Validation: true,
	});

	const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
		const path = (req.url ?? "/").split("?")[0];
		if (req.method !== "GET" && req.method !== "HEAD") {
			respond(res, 405, "application/json", errorJson(405, "only GET"), { Allow: "GET, HEAD" });
		} else if (path === "/healthz" || path === "/readyz") {
			// One answer for both: the relay has no dependency to be ready for, it
			// is ready while it accepts connections.
			if (closing) {
				respond(res, 503, "application/json", '{"status":"shutting down"}\n');
			} else {
				const body = {
					status: "ok",
					connections: connections.size,
					peers: peers.size,
					uptimeSeconds: Math.floor((Date.now() - startedAtMs) / 1000),
				};
				respond(res, 200, "application/json", `${JSON.stringify(body)}\n`);
			}
		} else if (path === "/metrics") {
			registry.metrics().then(
				(body) => respond(res, 200, registry.contentType, body),
				(err: unknown) => {
					logger.error({ err: err instanceof Error ? err.message : String(err) }, "metrics failed");
					respond(res, 500, "application/json", errorJson(500, "internal error"));
				},
			);
		} else {
			respond(res, 404, "application/json", errorJson(404, "not found"));
		}
	};

	const http: Server = options.tls
		? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, onRequest)
		: createHttpServer(onRequest);
	http.maxConnections = maxConnections + EXTRA_SOCKETS;
	http.headersTimeout = 10_000;
	http.requestTimeout = 15_000;
	http.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
		if (closing) {
			socket.end("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n");
			return;
		}
		wss.handleUpgrade(req, socket, head, (ws) => accept(ws, req));
	});
	http.on("clientError", (_err, socket: Duplex) => {
		if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
		else socket.destroy();
	});

	function accept(ws: WebSocket, req: IncomingMessage): void {
		const remote = `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? 0}`;
		stats.connectionsAccepted++;
		const conn = new Connection(ws, req.socket, remote);
		connections.add(conn);
		stats.pendingConnections++;
		ws.on("message", (data: RawData, isBinary: boolean) => {
			try {
				// binaryType is "nodebuffer": data is one Buffer.
				onMessage(conn, data as Buffer, isBinary);
			} catch (err) {
				// A bug must cost one connection, not the relay.
				logger.error(
					{ remote, err: err instanceof Error ? err.stack : String(err) },
					"internal error",
				);
				conn.ws.terminate();
			}
		});
		ws.on("pong", () => {
			conn.alive = true;
		});
		ws.on("error", (err) => {
			logger.debug({ remote, err: err.message }, "connection error");
		});
		ws.on("close", (code, reason) => onClose(conn, code, reason.toString()));
		if (closing) {
			refuse(conn, CloseCode.GoingAway, "relay is shutting down", "shutting_down");
			return;
		}
		if (connections.size > maxConnections) {
			refuse(conn, CloseCode.TryAgainLater, "relay is at its connection limit", "capacity");
			return;
		}
		conn.helloTimer = setTimeout(() => {
			refuse(conn, CloseCode.HelloTimeout, `no HELLO within ${helloTimeoutMs} ms`, "hello_timeout");
		}, helloTimeoutMs);
	}

	function onMessage(conn: Connection, data: Buffer, isBinary: boolean): void {
		stats.bytesReceived += data.length;
		stats.framesReceived++;
		conn.alive = true;
		if (conn.phase === "ready") {
			// The hot path: a DATA frame. ws's maxPayload caps its length.
			if (isBinary && data.length > DATA_HEADER_BYTES && data[0] === FrameType.Data) {
				forward(conn, data);
			} else {
				onControl(conn, data, isBinary);
			}
		} else if (conn.phase === "pending") {
			onHello(conn, data, isBinary);
		}
		// refused / disconnecting / closed: whatever still arrives is ignored.
	}

	function forward(from: Connection, data: Buffer): void {
		const to = peers.get(data.toString("latin1", 1, DATA_HEADER_BYTES));
		if (to === undefined) {
			stats.dropped.peer_offline++;
			return;
		}
		if (to === from) {
			stats.dropped.loopback++;
			return;
		}
		const ws = to.ws;
		if (ws.bufferedAmount + data.length > maxBufferedBytes) {
			stats.dropped.receiver_slow++;
			return;
		}
		if (bufferedEstimate + data.length > maxTotalBufferedBytes) {
			stats.dropped.relay_full++;
			return;
		}
		// Rewrite destination to source in place: the buffer is ours alone.
		from.peerId.copy(data, 1);
		// One TCP read holds dozens of frames; corking the receiver's socket
		// until the end of this tick sends the ones for it in one write(v)
		// instead of one system call each.
		if (!to.corked) {
			to.corked = true;
			to.socket.cork();
			process.nextTick(uncork, to);
		}
		ws.send(data, { binary: true });
		stats.framesForwarded++;
		stats.bytesForwarded += data.length;
		stats.bytesSent += data.length;
		if (ws.bufferedAmount > 0) bufferedEstimate += data.length;
	}

	function onHello(conn: Connection, data: Buffer, isBinary: boolean): void {
		if (!isBinary) {
			refuse(conn, CloseCode.ProtocolError, "text messages are not allowed", "protocol_error");
			return;
		}
		const parsed = parseFrame(data);
		if (!parsed.ok) {
			refuse(
				conn,
				CloseCode.ProtocolError,
				`malformed frame: ${parsed.error.message}`,
				"protocol_error",
			);
			return;
		}
		if (parsed.frame.type !== "hello") {
			refuse(conn, CloseCode.ProtocolError, "the first frame must be HELLO", "protocol_error");
			return;
		}
		const verdict = verifyRelayToken(secret, parsed.frame.token, now());
		if (!verdict.ok) {
			const expired = verdict.reason === "expired";
			refuse(
				conn,
				expired ? CloseCode.TokenExpired : CloseCode.TokenInvalid,
				verdict.message,
				expired ? "token_expired" : "token_invalid",
				verdict.reason,
			);
			return;
		}
		admit(conn, verdict.peerId, verdict.expiresAtMs);
	}

	function admit(conn: Connection, peerId: Uint8Array, expiresAtMs: number): void {
		clearTimeout(conn.helloTimer);
		conn.helloTimer = undefined;
		const key = Buffer.from(peerId).toString("latin1");
		const previous = peers.get(key);
		if (previous) {
			disconnect(previous, CloseCode.Replaced, "replaced by a newer connection", "replaced");
		}
		conn.phase = "ready";
		conn.peerId = Buffer.from(peerId);
		conn.peerKey = key;
		conn.expiresAtMs = expiresAtMs;
		peers.set(key, conn);
		stats.pendingConnections--;
		stats.readyConnections++;
		sendControl(conn, { type: "welcome", peerId: conn.peerId, expiresAtMs });
		armExpiry(conn);
		logger.info(
			{ peer: shortId(conn.peerId), remote: conn.remote, expiresAt: iso(expiresAtMs) },
			"peer connected",
		);
	}

	function onControl(conn: Connection, data: Buffer, isBinary: boolean): void {
		if (!isBinary) {
			disconnect(conn, CloseCode.ProtocolError, "text messages are not allowed", "protocol_error");
			return;
		}
		const parsed = parseFrame(data);
		if (!parsed.ok) {
			disconnect(
				conn,
				CloseCode.ProtocolError,
				`malformed frame: ${parsed.error.message}`,
				"protocol_error",
			);
			return;
		}
		if (parsed.frame.type === "token") {
			refreshToken(conn, parsed.frame.token);
			return;
		}
		disconnect(
			conn,
			CloseCode.ProtocolError,
			`unexpected ${parsed.frame.type.toUpperCase()} frame`,
			"protocol_error",
		);
	}

	function refreshToken(conn: Connection, token: string): void {
		const verdict = verifyRelayToken(secret, token, now());
		if (!verdict.ok) {
			stats.tokenRefreshes.refused++;
			const code = verdict.reason === "expired" ? CloseCode.TokenExpired : CloseCode.TokenInvalid;
			sendControl(conn, { type: "error", code, message: verdict.message });
			logger.info(
				{ peer: shortId(conn.peerId), reason: verdict.reason },
				"token refresh refused; the current token stays in force",
			);
			return;
		}
		if (!conn.peerId.equals(verdict.peerId)) {
			stats.tokenRefreshes.refused++;
			sendControl(conn, {
				type: "error",
				code: CloseCode.TokenInvalid,
				message: "the token names another peer",
			});
			logger.info({ peer: shortId(conn.peerId) }, "token refresh for another peer refused");
			return;
		}
		stats.tokenRefreshes.accepted++;
		conn.expiresAtMs = verdict.expiresAtMs;
		armExpiry(conn);
		sendControl(conn, { type: "welcome", peerId: conn.peerId, expiresAtMs: verdict.expiresAtMs });
		logger.debug(
			{ peer: shortId(conn.peerId), expiresAt: iso(verdict.expiresAtMs) },
			"token refreshed",
		);
	}

	function armExpiry(conn: Connection): void {
		clearTimeout(conn.expiryTimer);
		const delay = Math.min(Math.max(0, conn.expiresAtMs - now()), MAX_TIMER_MS);
		conn.expiryTimer = setTimeout(() => {
			conn.expiryTimer = undefined;
			if (conn.phase !== "ready") return;
			if (now() >= conn.expiresAtMs) {
				disconnect(conn, CloseCode.TokenExpired, "token expired", "token_expired");
			} else {
				armExpiry(conn);
			}
		}, delay);
		conn.expiryTimer.unref();
	}

	function sendControl(conn: Connection, frame: Frame): void {
		const encoded = encodeFrame(frame);
		if (!encoded.ok) {
			logger.error({ error: encoded.error.message }, "cannot encode a control frame");
			return;
		}
		stats.bytesSent += encoded.bytes.length;
		conn.ws.send(encoded.bytes, { binary: true });
	}

	/** Closes a connection that was never admitted. */
	function refuse(
		conn: Connection,
		code: number,
		reason: string,
		why: RefusalReason,
		detail?: string,
	): void {
		if (conn.phase !== "pending") return;
		clearTimeout(conn.helloTimer);
		conn.helloTimer = undefined;
		conn.phase = "refused";
		stats.pendingConnections--;
		stats.refused[why]++;
		logger.info({ remote: conn.remote, code, reason: detail ?? why }, "connection refused");
		closeSocket(conn, code, reason);
	}

	/** Unregisters an admitted connection at once and closes it. */
	function disconnect(conn: Connection, code: number, reason: string, why: DisconnectReason): void {
		if (conn.phase !== "ready") return;
		unregister(conn);
		conn.phase = "disconnecting";
		conn.disconnectReason = why;
		closeSocket(conn, code, reason);
	}

	function unregister(conn: Connection): void {
		clearTimeout(conn.expiryTimer);
		conn.expiryTimer = undefined;
		if (peers.get(conn.peerKey) === conn) peers.delete(conn.peerKey);
		stats.readyConnections--;
	}

	function closeSocket(conn: Connection, code: number, reason: string): void {
		try {
			conn.ws.close(code, truncateReason(reason));
		} catch {
			conn.ws.terminate();
		}
		// ws would wait 30 s for the peer's close frame; 2 s is plenty.
		conn.killTimer = setTimeout(() => conn.ws.terminate(), CLOSE_HANDSHAKE_MS);
		conn.killTimer.unref();
	}

	function onClose(conn: Connection, code: number, reason: string): void {
		clearTimeout(conn.helloTimer);
		clearTimeout(conn.killTimer);
		connections.delete(conn);
		const phase = conn.phase;
		conn.phase = "closed";
		if (phase === "pending") {
			stats.pendingConnections--;
		} else if (phase === "ready" || phase === "disconnecting") {
			if (phase === "ready") unregister(conn);
			stats.disconnects[conn.disconnectReason]++;
			logger.info(
				{
					peer: shortId(conn.peerId),
					remote: conn.remote,
					code,
					reason: reason || conn.disconnectReason,
				},
				"peer disconnected",
			);
		}
	}

	const pingTimer = setInterval(() => {
		for (const conn of connections) {
			if (conn.phase !== "ready") continue;
			if (!conn.alive) {
				// No pong or message for a whole interval: the peer is gone.
				unregister(conn);
				conn.phase = "disconnecting";
				conn.disconnectReason = "ping_timeout";
				conn.ws.terminate();
				continue;
			}
			conn.alive = false;
			try {
				conn.ws.ping();
			} catch {
				// not open any more; its close event follows
			}
		}
	}, pingIntervalMs);
	pingTimer.unref();

	const sampleTimer = setInterval(() => {
		let total = 0;
		for (const conn of peers.values()) total += conn.ws.bufferedAmount;
		bufferedEstimate = total;
		stats.bufferedBytes = total;
	}, BUFFERED_SAMPLE_INTERVAL_MS);
	sampleTimer.unref();

	await new Promise<void>((resolve, reject) => {
		const onError = (err: Error): void =>
			reject(new Error(`cannot listen on ${host}:${requestedPort}: ${err.message}`));
		http.once("error", onError);
		http.listen(requestedPort, host, () => {
			http.off("error", onError);
			resolve();
		});
	}).catch((err: unknown) => {
		clearInterval(pingTimer);
		clearInterval(sampleTimer);
		throw err;
	});
	http.on("error", (err) => logger.error({ err: err.message }, "server error"));
	const address = http.address();
	const port = typeof address === "object" && address ? address.port : requestedPort;
	const scheme = options.tls ? "wss" : "ws";
	const url = `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}`;
	logger.info(
		{ host, port, tls: Boolean(options.tls), maxConnections, maxBufferedBytes },
		"relay listening",
	);

	function metrics(): Promise<string> {
		return registry.metrics();
	}

	function snapshot(): RelayStats {
		return structuredClone(stats);
	}

	const close = (): Promise<void> => {
		closing ??= (async () => {
			clearInterval(pingTimer);
			clearInterval(sampleTimer);
			http.close();
			http.closeIdleConnections();
			for (const conn of connections) {
				if (conn.phase === "ready") {
					disconnect(conn, CloseCode.GoingAway, "relay is shutting down", "shutdown");
				} else if (conn.phase === "pending") {
					refuse(conn, CloseCode.GoingAway, "relay is shutting down", "shutting_down");
				}
			}
			const deadline = Date.now() + shutdownGraceMs;
			while (connections.size > 0 && Date.now() < deadline) {
				await new Promise((resolve) => setTimeout(resolve, 20));
			}
			if (connections.size > 0) {
				logger.warn({ left: connections.size }, "clients did not leave in time; cutting them off");
				for (const conn of connections) conn.ws.terminate();
			}
			http.closeAllConnections();
			wss.close();
			logger.info({ port }, "relay stopped");
		})();
		return closing;
	};

	return { port, url, stats: snapshot, metrics, close };
}

function positive(name: string, value: number | undefined, fallback: number): number {
	const v = value ?? fallback;
	if (!Number.isFinite(v) || v <= 0) {
		throw new RangeError(`${name} must be a positive number, got ${v}`);
	}
	return v;
}

function truncateReason(reason: string): string {
	let text = reason;
	while (Buffer.byteLength(text, "utf8") > MAX_CLOSE_REASON_BYTES) text = text.slice(0, -1);
	return text;
}

function shortId(peerId: Uint8Array): string {
	return peerIdHex(peerId).slice(0, 16);
}

function iso(ms: number): string {
	const date = new Date(ms);
	return Number.isNaN(date.getTime()) ? String(ms) : date.toISOString();
}
