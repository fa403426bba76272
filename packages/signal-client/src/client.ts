import { EventEmitter } from "node:events";
import { createSecureContext } from "node:tls";
import {
	type ChannelOptions,
	type ClientDuplexStream,
	credentials,
	type StatusObject,
	status,
} from "@grpc/grpc-js";
import { type BackoffOptions, backoffDelay, resolveBackoff } from "@starling/backoff";
import { encodeKey, type KeyPair } from "@starling/crypto";
import { createLogger, type Logger } from "@starling/log";
import {
	type SignalClientFrame,
	type SignalServerFrame,
	SignalServiceClient,
} from "@starling/proto";
import { SignalError, toSignalError } from "./errors.js";
import { answerChallenge } from "./handshake.js";
import { PendingSends } from "./pending-sends.js";
import { parseSignalUrl } from "./target.js";

/** Largest body the protocol carries (SignalSend.body). */
export const MAX_BODY_BYTES = 64 * 1024;
const PUBLIC_KEY_BYTES = 32;

/** A message another peer sent us; `from` is attested by the server. */
export interface SignalMessage {
	from: Uint8Array;
	body: Uint8Array;
}

export type SignalClientState = "idle" | "connecting" | "ready" | "reconnecting" | "closed";

export type SignalClientEvents = {
	/** A message from another peer. */
	message: [SignalMessage];
	/** The stream is authenticated and ready, after connect() and after each reconnect. */
	connected: [];
	/** An authenticated stream ended; a reconnect follows unless the client is closed. */
	disconnected: [SignalError];
	/** The client stopped for good: after close() (no error) or a terminal error. */
	closed: [SignalError | undefined];
};

export interface SignalClientOptions {
	/** "host:port", "http://host:port" or "https://host:port". */
	url: string;
	/** The WireGuard key pair whose public key is our address. */
	keyPair: KeyPair;
	/** Silent when omitted. Never given bodies or private keys. */
	logger?: Logger;
	/** Backoff for reconnecting after a stream is lost, or false to stay down. */
	reconnect?: Partial<BackoffOptions> | false;
	/** Time allowed for hello → ready. Default 10 s. */
	handshakeTimeoutMs?: number;
	/** Time a send waits for its result. Default 10 s. */
	sendTimeoutMs?: number;
	/**
	 * The server pings every 15 s by default; hearing nothing for this long
	 * means the connection is dead and is replaced. Default 60 s; 0 disables.
	 */
	serverSilenceTimeoutMs?: number;
	/** Extra grpc-js channel options. */
	channelOptions?: ChannelOptions;
}

type SignalStream = ClientDuplexStream<SignalClientFrame, SignalServerFrame>;

/** One ConnectStream call and what belongs to it. */
interface Connection {
	readonly call: SignalStream;
	phase: "awaiting-challenge" | "awaiting-ready" | "ready" | "ended";
	readonly pending: PendingSends;
	lastHeardAt: number;
	/** Why we ended the call ourselves, which beats grpc's "Cancelled on client". */
	failure: SignalError | undefined;
	silenceTimer: NodeJS.Timeout | undefined;
}

/**
 * A peer's connection to the signal server: proves ownership of its key,
 * sends opaque bodies to other peers by public key and receives theirs,
 * answers heartbeats and reconnects with backoff when the stream is lost.
 */
export class SignalClient extends EventEmitter<SignalClientEvents> {
	readonly publicKey: Uint8Array;
	private readonly keyPair: KeyPair;
	private readonly logger: Logger;
	private readonly grpc: SignalServiceClient;
	private readonly backoff: BackoffOptions | undefined;
	private readonly handshakeTimeoutMs: number;
	private readonly sendTimeoutMs: number;
	private readonly serverSilenceTimeoutMs: number;
	private currentState: SignalClientState = "idle";
	private connection: Connection | undefined;
	private connecting: Promise<void> | undefined;
	private reconnectAttempt = 0;
	private reconnectTimer: NodeJS.Timeout | undefined;
	private closing: Promise<void> | undefined;

	constructor(options: SignalClientOptions) {
		super();
		const target = parseSignalUrl(options.url);
		this.keyPair = options.keyPair;
		this.publicKey = options.keyPair.publicKey;
		this.logger = (options.logger ?? createLogger("signal-client", { level: "silent" })).child({
			self: encodeKey(options.keyPair.publicKey),
		});
		this.backoff = options.reconnect === false ? undefined : resolveBackoff(options.reconnect);
		this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
		this.sendTimeoutMs = options.sendTimeoutMs ?? 10_000;
		this.serverSilenceTimeoutMs = options.serverSilenceTimeoutMs ?? 60_000;
		// grpc-js retries a lost connection on its own schedule (1 s and up) and fails
		// calls fast meanwhile; matching it to ours keeps our backoff the one in force.
		const channelBackoff: ChannelOptions = this.backoff
			? {
					"grpc.initial_reconnect_backoff_ms": Math.max(1, this.backoff.initialDelayMs),
					"grpc.max_reconnect_backoff_ms": Math.max(1, this.backoff.maxDelayMs),
				}
			: {};
		this.grpc = new SignalServiceClient(
			target.address,
			target.secure
				? // This process's default CAs, also those added by tls.setDefaultCACertificates
					// (which grpc-js's createSsl() does not follow).
					credentials.createFromSecureContext(createSecureContext())
				: credentials.createInsecure(),
			{ ...channelBackoff, ...options.channelOptions },
		);
	}

	get state(): SignalClientState {
		return this.currentState;
	}

	/**
	 * Opens the stream and completes the challenge handshake. Rejects with a
	 * SignalError (UNAUTHENTICATED when the server refuses our key) and
	 * leaves the client idle, so the caller decides whether to try again.
	 * While a reconnect is under way it waits for that instead.
	 */
	connect(): Promise<void> {
		switch (this.currentState) {
			case "ready":
				return Promise.resolve();
			case "closed":
				return Promise.reject(new SignalError(status.CANCELLED, "client is closed"));
			case "reconnecting":
				return this.nextConnected();
			case "connecting":
				return this.connecting ?? this.nextConnected();
			case "idle":
				break;
		}
		this.currentState = "connecting";
		this.connecting = this.openConnection()
			.then(
				() => {
					this.currentState = "ready";
					this.logger.info("connected to signal server");
					this.emit("connected");
				},
				(err: unknown) => {
					if (this.currentState === "connecting") this.currentState = "idle";
					throw err;
				},
			)
			.finally(() => {
				this.connecting = undefined;
			});
		return this.connecting;
	}

	/**
	 * Sends an opaque body to the peer with this public key. Resolves when
	 * the server has queued it for that peer; rejects with a SignalError whose
	 * code says why not (NOT_FOUND: peer offline, INVALID_ARGUMENT,
	 * RESOURCE_EXHAUSTED: peer not keeping up, UNAVAILABLE: we are offline).
	 */
	send(to: Uint8Array, body: Uint8Array): Promise<void> {
		// Checked here too so a hopeless frame never costs us the stream.
		if (to.length !== PUBLIC_KEY_BYTES) {
			return Promise.reject(
				new SignalError(
					status.INVALID_ARGUMENT,
					`to must be a ${PUBLIC_KEY_BYTES}-byte public key, got ${to.length} bytes`,
				),
			);
		}
		if (body.length === 0 || body.length > MAX_BODY_BYTES) {
			return Promise.reject(
				new SignalError(
					status.INVALID_ARGUMENT,
					body.length === 0
						? "body is empty"
						: `body is ${body.length} bytes; the limit is ${MAX_BODY_BYTES}`,
				),
			);
		}
		const conn = this.connection;
		if (conn?.phase !== "ready" || this.currentState !== "ready") {
			return Promise.reject(
				new SignalError(
					status.UNAVAILABLE,
					`not connected to the signal server (${this.currentState})`,
				),
			);
		}
		const { id, result } = conn.pending.track();
		try {
			conn.call.write({ frame: { $case: "send", value: { id, to, body } } });
		} catch (err) {
			conn.pending.fail(id, toSignalError(err, "cannot write to the signal stream"));
		}
		return result;
	}

	/** Ends the stream and stops reconnecting. Pending sends reject with CANCELLED. */
	close(): Promise<void> {
		this.closing ??= this.shutDown();
		return this.closing;
	}

	private async shutDown(): Promise<void> {
		const wasClosed = this.currentState === "closed";
		this.currentState = "closed";
		if (this.reconnectTimer) {
			clearTimeout(this.reconnectTimer);
			this.reconnectTimer = undefined;
		}
		const conn = this.connection;
		if (conn) {
			conn.pending.failAll(new SignalError(status.CANCELLED, "client closed"));
			await endGracefully(conn.call);
		}
		this.grpc.close();
		if (!wasClosed) {
			this.logger.info("signal client closed");
			this.emit("closed", undefined);
		}
	}

	private nextConnected(): Promise<void> {
		return new Promise<void>((resolve, reject) => {
			const onConnected = (): void => {
				this.off("closed", onClosed);
				resolve();
			};
			const onClosed = (err: SignalError | undefined): void => {
				this.off("connected", onConnected);
				reject(err ?? new SignalError(status.CANCELLED, "client is closed"));
			};
			this.once("connected", onConnected);
			this.once("closed", onClosed);
		});
	}

	/** Opens a stream and resolves once the server says ready. */
	private openConnection(): Promise<void> {
		return new Promise<void>((resolve, reject) => {
			const call = this.grpc.connectStream();
			const conn: Connection = {
				call,
				phase: "awaiting-challenge",
				pending: new PendingSends(this.sendTimeoutMs),
				lastHeardAt: Date.now(),
				failure: undefined,
				silenceTimer: undefined,
			};
			this.connection = conn;
			let handshakeDone = false;

			const handshakeTimer = setTimeout(() => {
				conn.failure = new SignalError(
					status.DEADLINE_EXCEEDED,
					`handshake did not complete within ${this.handshakeTimeoutMs} ms`,
				);
				call.cancel();
			}, this.handshakeTimeoutMs);

			const abort = (failure: SignalError): void => {
				conn.failure ??= failure;
				call.cancel();
			};

			call.on("data", (frame: SignalServerFrame) => {
				if (conn.phase === "ended") return;
				conn.lastHeardAt = Date.now();
				try {
					if (conn.phase === "ready") {
						this.onReadyFrame(conn, frame);
						return;
					}
					const content = frame.frame;
					if (conn.phase === "awaiting-challenge" && content?.$case === "challenge") {
						const secret = answerChallenge(content.value, this.keyPair);
						conn.phase = "awaiting-ready";
						call.write({ frame: { $case: "challengeResponse", value: { secret } } });
						return;
					}
					if (conn.phase === "awaiting-ready" && content?.$case === "ready") {
						clearTimeout(handshakeTimer);
						conn.phase = "ready";
						handshakeDone = true;
						this.watchForSilence(conn);
						resolve();
						return;
					}
					abort(
						new SignalError(
							status.INTERNAL,
							`protocol error: got ${content?.$case ?? "an empty frame"} while ${conn.phase}`,
						),
					);
				} catch (err) {
					abort(toSignalError(err, "cannot handle a frame from the signal server"));
				}
			});
			// grpc-js emits "error" for every non-OK status; "status" below handles all endings.
			call.on("error", () => {});
			call.on("status", (ending: StatusObject) => {
				clearTimeout(handshakeTimer);
				const error = this.describeEnding(conn, ending);
				if (!handshakeDone) {
					conn.phase = "ended";
					if (this.connection === conn) this.connection = undefined;
					reject(new SignalError(error.code, error.details, "signal handshake failed"));
					return;
				}
				this.onConnectionLost(conn, error);
			});

			call.write({ frame: { $case: "hello", value: { publicKey: this.keyPair.publicKey } } });
		});
	}

	private describeEnding(conn: Connection, ending: StatusObject): SignalError {
		if (this.currentState === "closed") return new SignalError(status.CANCELLED, "client closed");
		if (conn.failure) return conn.failure;
		if (ending.code === status.OK) {
			return new SignalError(status.UNAVAILABLE, "the signal server ended the stream");
		}
		return new SignalError(ending.code, ending.details || "stream ended");
	}

	private onReadyFrame(conn: Connection, frame: SignalServerFrame): void {
		const content = frame.frame;
		switch (content?.$case) {
			case "deliver":
				this.deliverToListeners({
					from: plainBytes(content.value.from),
					body: plainBytes(content.value.body),
				});
				return;
			case "sendResult":
				conn.pending.settle(content.value);
				return;
			case "ping":
				conn.call.write({ frame: { $case: "pong", value: { id: content.value.id } } });
				return;
			case "pong":
				return;
			default:
				conn.failure ??= new SignalError(
					status.INTERNAL,
					`protocol error: unexpected ${content?.$case ?? "empty frame"} on a ready stream`,
				);
				conn.call.cancel();
		}
	}

	private deliverToListeners(message: SignalMessage): void {
		try {
			this.emit("message", message);
		} catch (err) {
			// A listener's bug must not cost every other message on the stream.
			this.logger.error(
				{ err: err instanceof Error ? err.message : String(err) },
				"message listener threw",
			);
		}
	}

	private watchForSilence(conn: Connection): void {
		const limit = this.serverSilenceTimeoutMs;
		if (!(limit > 0)) return;
		conn.silenceTimer = setInterval(
			() => {
				if (Date.now() - conn.lastHeardAt < limit) return;
				conn.failure ??= new SignalError(
					status.UNAVAILABLE,
					`nothing heard from the signal server for ${limit} ms`,
				);
				conn.call.cancel();
			},
			Math.max(10, Math.floor(limit / 4)),
		);
	}

	private onConnectionLost(conn: Connection, error: SignalError): void {
		if (conn.phase === "ended") return;
		conn.phase = "ended";
		if (conn.silenceTimer) clearInterval(conn.silenceTimer);
		if (this.connection === conn) this.connection = undefined;
		conn.pending.failAll(
			new SignalError(error.code, `stream ended before the server answered: ${error.details}`),
		);
		if (this.currentState === "closed") return;
		this.logger.warn({ code: status[error.code], reason: error.details }, "signal stream lost");
		this.emit("disconnected", error);
		// ABORTED means another client with our key took over; fighting it back would never end.
		if (!this.backoff || error.code === status.ABORTED) {
			this.currentState = "closed";
			this.grpc.close();
			this.emit("closed", error);
			return;
		}
		this.currentState = "reconnecting";
		this.scheduleReconnect(this.backoff);
	}

	private scheduleReconnect(backoff: BackoffOptions): void {
		const delayMs = backoffDelay(this.reconnectAttempt, backoff);
		this.reconnectAttempt += 1;
		this.logger.info({ delayMs, attempt: this.reconnectAttempt }, "reconnecting to signal server");
		this.reconnectTimer = setTimeout(() => {
			this.reconnectTimer = undefined;
			if (this.currentState !== "reconnecting") return;
			this.openConnection().then(
				() => {
					if (this.currentState !== "reconnecting") return;
					this.reconnectAttempt = 0;
					this.currentState = "ready";
					this.logger.info("reconnected to signal server");
					this.emit("connected");
				},
				(err: unknown) => {
					if (this.currentState !== "reconnecting") return;
					const error = toSignalError(err);
					this.logger.warn(
						{ code: status[error.code], reason: error.details },
						"reconnect attempt failed",
					);
					this.scheduleReconnect(backoff);
				},
			);
		}, delayMs);
	}
}

/** The protobuf reader hands out Buffer views; callers get plain Uint8Arrays over the same bytes. */
function plainBytes(bytes: Uint8Array): Uint8Array {
	return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Half-closes so the server ends the call cleanly; cancels if it does not within a second. */
function endGracefully(call: SignalStream): Promise<void> {
	return new Promise<void>((resolve) => {
		const cutOff = setTimeout(() => {
			call.cancel();
			resolve();
		}, 1_000);
		call.once("status", () => {
			clearTimeout(cutOff);
			resolve();
		});
		try {
			call.end();
		} catch {
			clearTimeout(cutOff);
			call.cancel();
			resolve();
		}
	});
}
