import { EventEmitter } from "node:events";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { SecureContextOptions } from "node:tls";
import { type BackoffOptions, backoffDelay, resolveBackoff } from "@starling/backoff";
import { createLogger, type Logger } from "@starling/log";
import {
	CloseCode,
	DATA_HEADER_BYTES,
	encodeData,
	encodeFrame,
	FrameType,
	MAX_FRAME_BYTES,
	MAX_PAYLOAD_BYTES,
	needsNewToken,
	PEER_ID_BYTES,
	PROTOCOL_VERSION,
	parseFrame,
	peerIdHex,
	peerIdOf,
} from "@starling/relay-protocol";
import { type RawData, WebSocket } from "ws";
import { ABNORMAL_CLOSURE, RelayError } from "./errors.js";

export type RelayClientState = "idle" | "connecting" | "ready" | "waiting" | "closed";

export interface RelayWelcome {
	/** Our own peer id, as the relay knows us. */
	peerId: Uint8Array;
	/** When the relay will close the connection unless setToken() refreshes it. */
	expiresAtMs: number;
}

export type RelayClientEvents = {
	/** A packet from another peer: its peer id (attested by the relay) and the payload. */
	packet: [from: Uint8Array, payload: Buffer];
	/** Admitted by the relay, after connect() and after each reconnect. */
	ready: [RelayWelcome];
	/** The relay accepted a token given to setToken() on the open connection. */
	tokenRefreshed: [expiresAtMs: number];
	/**
	 * The relay refused our token: at admission (the client then waits for
	 * setToken() before trying again) or on refresh (the old token stays in force).
	 */
	tokenRefused: [RelayError];
	/** An admitted connection ended; a reconnect follows unless the client is closed. */
	disconnected: [RelayError];
	/** An attempt failed before admission (relay unreachable, refused); another follows with backoff. */
	attemptFailed: [RelayError];
	/** The client stopped for good: after close() (no error) or a terminal error. */
	closed: [RelayError | undefined];
};

export interface RelayClientOptions {
	/** ws://host:port[/path] or wss://host:port[/path]. */
	url: string;
	/** Token from management (RelayConfig.token). */
	token: string;
	/** Silent when omitted. Tokens and payloads are never logged. */
	logger?: Logger;
	/** Backoff between reconnect attempts, or false to stay down after a loss. */
	reconnect?: Partial<BackoffOptions> | false;
	/** Time from dialling to WELCOME. Default 10 s. */
	helloTimeoutMs?: number;
	/**
	 * The relay pings every 25 s by default; hearing nothing for this long
	 * means the connection is dead and is replaced. Default 60 s; 0 disables.
	 */
	silenceTimeoutMs?: number;
	/** Bytes queued on our socket beyond which send() drops packets. Default 1 MiB. */
	maxBufferedBytes?: number;
	/** TLS settings for wss:// (a private CA, or a server name). */
	tls?: Pick<SecureContextOptions, "ca"> & { servername?: string; rejectUnauthorized?: boolean };
}

export interface RelayClientStats {
	packetsSent: number;
	bytesSent: number;
	packetsReceived: number;
	bytesReceived: number;
	/** send() calls that returned false, by reason. */
	sendDrops: { notReady: number; bufferFull: number; invalid: number };
	/** Connections admitted so far (1 + reconnects). */
	connects: number;
}

/** One WebSocket attempt and what belongs to it. */
interface Attempt {
	readonly ws: WebSocket;
	/** The token last presented on this connection (HELLO or TOKEN). */
	presentedToken: string;
	admitted: boolean;
	/** Why we ended it ourselves, which beats ws's own close code. */
	failure: RelayError | undefined;
	helloTimer: NodeJS.Timeout | undefined;
	silenceTimer: NodeJS.Timeout | undefined;
	heard: boolean;
	silentChecks: number;
	/** The TCP (or TLS) socket under ws, once upgraded; corked until the end of a tick. */
	socket: Duplex | undefined;
	corked: boolean;
}

function uncork(attempt: Attempt): void {
	attempt.corked = false;
	attempt.socket?.uncork();
}

const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
const PEER_ID_CACHE_LIMIT = 4096;
/** Masking is for browsers; WireGuard packets are ciphertext already (RFC 6455 §10.3). */
const zeroMask = (mask: Buffer): void => {
	mask.fill(0);
};

/**
 * A peer's connection to the relay: admitted by a management token, sends
 * WireGuard packets to other peers by peer id (a hash of their public key),
 * emits theirs, refreshes its token, and reconnects with backoff.
 */
export class RelayClient extends EventEmitter<RelayClientEvents> {
	readonly url: string;
	private token: string;
	private readonly logger: Logger;
	private readonly backoff: BackoffOptions | undefined;
	private readonly helloTimeoutMs: number;
	private readonly silenceTimeoutMs: number;
	private readonly maxBufferedBytes: number;
	private readonly tls: RelayClientOptions["tls"];
	private currentState: RelayClientState = "idle";
	private attempt: Attempt | undefined;
	/** Keep trying after failures (set by start(), or once admitted). */
	private persistent = false;
	private reconnectAttempt = 0;
	private reconnectTimer: NodeJS.Timeout | undefined;
	private needsToken = false;
	private welcome: RelayWelcome | undefined;
	private readonly peerIds = new Map<string, Uint8Array>();
	/** connect() calls waiting for admission or a failure. */
	private waiters: { resolve: () => void; reject: (err: RelayError) => void }[] = [];
	private readonly counters: RelayClientStats = {
		packetsSent: 0,
		bytesSent: 0,
		packetsReceived: 0,
		bytesReceived: 0,
		sendDrops: { notReady: 0, bufferFull: 0, invalid: 0 },
		connects: 0,
	};

	constructor(options: RelayClientOptions) {
		super();
		const url = new URL(options.url);
		if (url.protocol !== "ws:" && url.protocol !== "wss:") {
			throw new RangeError(`relay URL must be ws:// or wss://, got ${options.url}`);
		}
		if (encodeFrame({ type: "token", token: options.token }).ok !== true) {
			throw new RangeError("relay token must be 1 to 1024 printable ASCII characters");
		}
		this.url = options.url;
		this.token = options.token;
		this.logger = (options.logger ?? createLogger("relay-client", { level: "silent" })).child({
			relay: url.host,
		});
		this.backoff = options.reconnect === false ? undefined : resolveBackoff(options.reconnect);
		this.helloTimeoutMs = options.helloTimeoutMs ?? 10_000;
		this.silenceTimeoutMs = options.silenceTimeoutMs ?? 60_000;
		this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
		this.tls = options.tls;
	}

	get state(): RelayClientState {
		return this.currentState;
	}

	/** Our peer id and token expiry while admitted; undefined otherwise. */
	get admission(): RelayWelcome | undefined {
		return this.currentState === "ready" ? this.welcome : undefined;
	}

	/**
	 * Bytes queued on the socket but not yet sent. A caller with its own
	 * flow control (a bulk sender) can wait for this to fall.
	 */
	get bufferedAmount(): number {
		return this.attempt?.ws.bufferedAmount ?? 0;
	}

	stats(): RelayClientStats {
		return { ...this.counters, sendDrops: { ...this.counters.sendDrops } };
	}

	/**
	 * Starts connecting and keeps trying with backoff until admitted, and
	 * again after every loss, until close(). Does not wait; see "ready".
	 */
	start(): void {
		this.persistent = true;
		if (this.currentState === "idle") this.dial();
	}

	/**
	 * Connects once and resolves when admitted. Rejects with the RelayError
	 * of a failed first attempt (the client is then idle again). Once
	 * admitted, the client reconnects by itself after losses.
	 */
	connect(): Promise<void> {
		switch (this.currentState) {
			case "ready":
				return Promise.resolve();
			case "closed":
				return Promise.reject(new RelayError(CloseCode.Normal, "client is closed"));
			case "idle":
				this.dial();
				break;
			case "waiting":
				if (this.needsToken) {
					return Promise.reject(
						new RelayError(CloseCode.TokenInvalid, "waiting for a new token (setToken)"),
					);
				}
				break;
			default:
				break;
		}
		return new Promise<void>((resolve, reject) => {
			this.waiters.push({ resolve, reject });
		});
	}

	/**
	 * Uses `token` from now on. While admitted it is sent as a TOKEN frame
	 * ("tokenRefreshed" or "tokenRefused" follows); while waiting for a token
	 * after a refusal, it triggers an immediate reconnect.
	 */
	setToken(token: string): void {
		if (encodeFrame({ type: "token", token }).ok !== true) {
			throw new RangeError("relay token must be 1 to 1024 printable ASCII characters");
		}
		this.token = token;
		if (this.currentState === "ready") {
			this.sendTokenFrame();
		} else if (this.currentState === "waiting" && this.needsToken) {
			this.needsToken = false;
			this.reconnectAttempt = 0;
			this.dial();
		}
		// connecting: the WELCOME handler sends the new token if it differs.
	}

	/**
	 * Sends a WireGuard packet to the peer with this peer id (see peerIdOf).
	 * Returns false, and counts the drop, when not admitted, when the socket
	 * has more than maxBufferedBytes queued (like a full link), or for a
	 * payload of 0 or over 65535 bytes. Never throws.
	 */
	send(peerId: Uint8Array, payload: Uint8Array): boolean {
		const attempt = this.attempt;
		if (this.currentState !== "ready" || attempt === undefined) {
			this.counters.sendDrops.notReady++;
			return false;
		}
		if (
			peerId.length !== PEER_ID_BYTES ||
			payload.length < 1 ||
			payload.length > MAX_PAYLOAD_BYTES
		) {
			this.counters.sendDrops.invalid++;
			return false;
		}
		const ws = attempt.ws;
		if (ws.bufferedAmount + payload.length > this.maxBufferedBytes) {
			this.counters.sendDrops.bufferFull++;
			return false;
		}
		// Packets sent in one event-loop turn leave in one write(v) instead of
		// one system call each: libuv reads up to 32 datagrams from a UDP socket
		// per turn (each its own "message" callback), so the uncork waits for
		// the check phase (setImmediate), not just the end of this callback.
		if (!attempt.corked && attempt.socket !== undefined) {
			attempt.corked = true;
			attempt.socket.cork();
			setImmediate(uncork, attempt);
		}
		ws.send(encodeData(peerId, payload), { binary: true });
		this.counters.packetsSent++;
		this.counters.bytesSent += payload.length;
		return true;
	}

	/** send() to a peer named by its WireGuard public key (peer ids are cached). */
	sendTo(publicKey: Uint8Array, payload: Uint8Array): boolean {
		return this.send(this.peerIdFor(publicKey), payload);
	}

	/** The relay peer id of a WireGuard public key (cached). */
	peerIdFor(publicKey: Uint8Array): Uint8Array {
		const cacheKey = Buffer.from(publicKey).toString("latin1");
		let id = this.peerIds.get(cacheKey);
		if (id === undefined) {
			id = peerIdOf(publicKey);
			if (this.peerIds.size >= PEER_ID_CACHE_LIMIT) this.peerIds.clear();
			this.peerIds.set(cacheKey, id);
		}
		return id;
	}

	/** Closes the connection (1000) and stops reconnecting. Safe to call twice. */
	async close(): Promise<void> {
		if (this.currentState === "closed") return;
		this.finish(undefined);
		const attempt = this.attempt;
		this.attempt = undefined;
		if (attempt) await closeSocket(attempt.ws);
	}

	private dial(): void {
		clearTimeout(this.reconnectTimer);
		this.reconnectTimer = undefined;
		this.currentState = "connecting";
		const ws = new WebSocket(this.url, {
			perMessageDeflate: false,
			maxPayload: MAX_FRAME_BYTES,
			skipUTF8Validation: true,
			handshakeTimeout: this.helloTimeoutMs,
			generateMask: zeroMask,
			...(this.tls ?? {}),
		});
		ws.binaryType = "nodebuffer";
		const attempt: Attempt = {
			ws,
			presentedToken: this.token,
			admitted: false,
			failure: undefined,
			helloTimer: undefined,
			silenceTimer: undefined,
			heard: true,
			silentChecks: 0,
			socket: undefined,
			corked: false,
		};
		this.attempt = attempt;
		attempt.helloTimer = setTimeout(() => {
			this.fail(
				attempt,
				new RelayError(ABNORMAL_CLOSURE, `not admitted within ${this.helloTimeoutMs} ms`),
			);
		}, this.helloTimeoutMs);
		ws.on("upgrade", (response: IncomingMessage) => {
			attempt.socket = response.socket;
		});
		ws.on("open", () => {
			const hello = encodeFrame({
				type: "hello",
				version: PROTOCOL_VERSION,
				token: attempt.presentedToken,
			});
			if (hello.ok) ws.send(hello.bytes, { binary: true });
		});
		ws.on("message", (data: RawData, isBinary: boolean) => {
			try {
				this.onMessage(attempt, data as Buffer, isBinary);
			} catch (err) {
				// A throwing "packet" listener must not take the connection's state with it.
				this.logger.error(
					{ err: err instanceof Error ? err.message : String(err) },
					"error in a relay client listener",
				);
			}
		});
		ws.on("ping", () => {
			attempt.heard = true;
		});
		ws.on("error", (err) => {
			attempt.failure ??= new RelayError(ABNORMAL_CLOSURE, err.message);
		});
		ws.on("close", (code: number, reason: Buffer) => {
			this.onClose(attempt, code, reason.toString());
		});
	}

	private onMessage(attempt: Attempt, data: Buffer, isBinary: boolean): void {
		attempt.heard = true;
		if (this.attempt !== attempt) return;
		if (
			attempt.admitted &&
			isBinary &&
			data.length > DATA_HEADER_BYTES &&
			data[0] === FrameType.Data
		) {
			this.counters.packetsReceived++;
			this.counters.bytesReceived += data.length - DATA_HEADER_BYTES;
			this.emit("packet", data.subarray(1, DATA_HEADER_BYTES), data.subarray(DATA_HEADER_BYTES));
			return;
		}
		const parsed = isBinary ? parseFrame(data) : undefined;
		if (parsed === undefined || !parsed.ok) {
			const why = parsed?.ok === false ? parsed.error.message : "text message";
			this.fail(attempt, new RelayError(CloseCode.ProtocolError, `bad frame from relay: ${why}`));
			return;
		}
		const frame = parsed.frame;
		if (frame.type === "welcome") {
			if (attempt.admitted) {
				this.welcome = {
					peerId: this.welcome?.peerId ?? Uint8Array.from(frame.peerId),
					expiresAtMs: frame.expiresAtMs,
				};
				this.emit("tokenRefreshed", frame.expiresAtMs);
				return;
			}
			this.onAdmitted(attempt, {
				peerId: Uint8Array.from(frame.peerId),
				expiresAtMs: frame.expiresAtMs,
			});
			return;
		}
		if (frame.type === "error") {
			const err = new RelayError(frame.code, frame.message);
			this.logger.warn({ code: frame.code, reason: frame.message }, "relay refused a request");
			if (needsNewToken(frame.code)) this.emit("tokenRefused", err);
			return;
		}
		if (frame.type === "data" && !attempt.admitted) {
			this.fail(attempt, new RelayError(CloseCode.ProtocolError, "DATA before WELCOME"));
			return;
		}
		this.fail(
			attempt,
			new RelayError(CloseCode.ProtocolError, `unexpected ${frame.type.toUpperCase()} from relay`),
		);
	}

	private onAdmitted(attempt: Attempt, welcome: RelayWelcome): void {
		clearTimeout(attempt.helloTimer);
		attempt.helloTimer = undefined;
		attempt.admitted = true;
		this.persistent = true;
		this.reconnectAttempt = 0;
		this.needsToken = false;
		this.welcome = welcome;
		this.currentState = "ready";
		this.counters.connects++;
		if (this.silenceTimeoutMs > 0) {
			// Checked a few times per timeout with a flag, so packets cost no timer work.
			const checks = 3;
			attempt.silenceTimer = setInterval(
				() => {
					if (attempt.heard) {
						attempt.heard = false;
						attempt.silentChecks = 0;
					} else if (++attempt.silentChecks >= checks) {
						this.fail(
							attempt,
							new RelayError(ABNORMAL_CLOSURE, `relay silent for ${this.silenceTimeoutMs} ms`),
						);
					}
				},
				Math.max(1, Math.floor(this.silenceTimeoutMs / checks)),
			);
			attempt.silenceTimer.unref();
		}
		this.logger.info(
			{ peer: peerIdHex(welcome.peerId).slice(0, 16), expiresAt: welcome.expiresAtMs },
			"admitted by relay",
		);
		this.settleWaiters(undefined);
		this.emit("ready", welcome);
		if (this.token !== attempt.presentedToken && this.attempt === attempt) this.sendTokenFrame();
	}

	private sendTokenFrame(): void {
		const attempt = this.attempt;
		const frame = encodeFrame({ type: "token", token: this.token });
		if (frame.ok && attempt && attempt.ws.readyState === WebSocket.OPEN) {
			attempt.presentedToken = this.token;
			attempt.ws.send(frame.bytes, { binary: true });
		}
	}

	/** Ends an attempt from our side with a reason; its close event does the rest. */
	private fail(attempt: Attempt, err: RelayError): void {
		attempt.failure ??= err;
		attempt.ws.terminate();
	}

	private onClose(attempt: Attempt, code: number, reason: string): void {
		clearTimeout(attempt.helloTimer);
		clearInterval(attempt.silenceTimer);
		if (this.attempt !== attempt) return;
		this.attempt = undefined;
		if (this.currentState === "closed") return;
		// A close frame from the relay says why; otherwise our own reason or ws's error.
		const err =
			code !== ABNORMAL_CLOSURE && code !== 1005
				? new RelayError(code, reason)
				: (attempt.failure ?? new RelayError(code, reason || "connection closed"));
		const wasAdmitted = attempt.admitted;
		if (wasAdmitted) {
			this.logger.info({ code: err.code, reason: err.reason }, "relay connection lost");
			this.emit("disconnected", err);
		} else {
			this.logger.debug({ code: err.code, reason: err.reason }, "relay connection attempt failed");
			this.emit("attemptFailed", err);
		}
		if (err.code === CloseCode.Replaced) {
			this.finish(err);
			return;
		}
		if (needsNewToken(err.code)) {
			this.currentState = "waiting";
			this.needsToken = true;
			this.logger.warn({ code: err.code, reason: err.reason }, "relay refused the token");
			this.settleWaiters(err);
			this.emit("tokenRefused", err);
			// A token given meanwhile is worth a try at once.
			if (this.token !== attempt.presentedToken && this.currentState === "waiting") {
				this.needsToken = false;
				this.dial();
			} else if (!this.persistent) {
				this.currentState = "idle";
				this.needsToken = false;
			}
			return;
		}
		if (!this.persistent) {
			this.currentState = "idle";
			this.settleWaiters(err);
			return;
		}
		if (this.backoff === undefined) {
			this.finish(err);
			return;
		}
		const delay = backoffDelay(this.reconnectAttempt++, this.backoff);
		this.currentState = "waiting";
		this.logger.debug({ delayMs: delay }, "reconnecting to relay");
		this.reconnectTimer = setTimeout(() => {
			this.reconnectTimer = undefined;
			if (this.currentState === "waiting" && !this.needsToken) this.dial();
		}, delay);
	}

	private finish(err: RelayError | undefined): void {
		clearTimeout(this.reconnectTimer);
		this.reconnectTimer = undefined;
		this.currentState = "closed";
		this.settleWaiters(err ?? new RelayError(CloseCode.Normal, "client is closed"));
		this.emit("closed", err);
	}

	private settleWaiters(err: RelayError | undefined): void {
		const waiters = this.waiters;
		this.waiters = [];
		for (const waiter of waiters) {
			if (err) waiter.reject(err);
			else waiter.resolve();
		}
	}
}

/** Closes a socket with 1000 and resolves once it is closed (at most 1 s). */
function closeSocket(ws: WebSocket): Promise<void> {
	if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
	return new Promise((resolve) => {
		const timer = setTimeout(() => {
			ws.terminate();
			resolve();
		}, 1_000);
		timer.unref();
		ws.once("close", () => {
			clearTimeout(timer);
			resolve();
		});
		if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
		else ws.close(CloseCode.Normal, "client closing");
	});
}
