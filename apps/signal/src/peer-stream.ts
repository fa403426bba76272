import { type ServerDuplexStream, status } from "@grpc/grpc-js";
import { encodeKey } from "@starling/crypto";
import { SignalClientFrame, type SignalSend, type SignalServerFrame } from "@starling/proto";
import { type IssuedChallenge, isCorrectAnswer, issueChallenge } from "./challenge.js";
import { PUBLIC_KEY_BYTES } from "./limits.js";
import { isSmallOrderPublicKey } from "./low-order.js";
import { OutboundBudget, type OutboundLimits } from "./outbound-budget.js";

/** The call as the server sees it: raw request bytes (we decode them), typed responses. */
export type SignalCall = ServerDuplexStream<Buffer, SignalServerFrame>;

type ClientFrameContent = SignalClientFrame["frame"];

/**
 * Where a stream is in its life: hello → challenge → registering → ready →
 * closed. "registering": the key is proven and the host is making it
 * reachable (briefly, only with several instances) before "ready" is sent.
 */
export type StreamPhase =
	| "awaiting-hello"
	| "awaiting-response"
	| "registering"
	| "ready"
	| "closed";

/** How a stream ended, for the hub's bookkeeping and logs. */
export interface StreamEnding {
	code: status;
	details: string;
	/** True when the server chose to end it; false when the client or transport went away. */
	byServer: boolean;
}

/** What a stream needs from the server that owns it. */
export interface StreamHost {
	readonly handshakeTimeoutMs: number;
	readonly outboundLimits: OutboundLimits;
	/**
	 * The key is proven. The host may return a promise (which must not
	 * reject) to hold "ready" back until the peer is reachable; nothing is
	 * delivered to the stream before onAuthenticated.
	 */
	beforeReady(stream: PeerStream): Promise<void> | undefined;
	/** The stream is ready: register it for its key. */
	onAuthenticated(stream: PeerStream): void;
	onAuthenticationFailed(stream: PeerStream, reason: string): void;
	onSend(stream: PeerStream, send: SignalSend): void;
	onClosed(stream: PeerStream, ending: StreamEnding): void;
	onUnexpectedError(stream: PeerStream, err: unknown): void;
}

/** Rough bytes a frame adds around its body; only used for the outbound budget. */
const FRAME_OVERHEAD_BYTES = 64;

/**
 * One ConnectStream call: runs the challenge handshake, then carries frames
 * for the authenticated key. Every entry point is guarded so that a bad
 * frame or a bug ends this stream with a status instead of the process.
 */
export class PeerStream {
	readonly remote: string;
	readonly openedAt = Date.now();
	/** Set once hello is accepted; the identity is proven only when phase is "ready". */
	publicKey: Uint8Array | undefined;
	/** Base64 of publicKey, as `wg` prints it; the registry key and log field. */
	peerId: string | undefined;
	lastHeardAt = Date.now();
	/** Wall-clock time the stream became ready; orders streams of one key across instances. */
	authenticatedAt = 0;
	private currentPhase: StreamPhase = "awaiting-hello";
	private issued: IssuedChallenge | undefined;
	private handshakeTimer: NodeJS.Timeout | undefined;
	private readonly budget: OutboundBudget;

	constructor(
		private readonly call: SignalCall,
		private readonly host: StreamHost,
	) {
		this.remote = describeRemote(call);
		this.budget = new OutboundBudget(host.outboundLimits);
		call.on("data", (raw: Buffer) => this.guard(() => this.onData(raw)));
		// The client half-closed: it will send nothing more, so the conversation is over.
		call.on("end", () =>
			this.guard(() => this.endWithStatus(status.OK, "client closed the stream")),
		);
		call.on("cancelled", () => this.guard(() => this.onTransportGone("cancelled by the client")));
		call.on("close", () => this.guard(() => this.onTransportGone("stream closed")));
		// grpc-js already listens for "error" to send the status; this only keeps our state in step.
		call.on("error", () => this.guard(() => this.onTransportGone("stream errored")));
		this.handshakeTimer = setTimeout(
			() =>
				this.guard(() =>
					this.refuse(`handshake not completed within ${host.handshakeTimeoutMs} ms`),
				),
			host.handshakeTimeoutMs,
		);
	}

	get phase(): StreamPhase {
		return this.currentPhase;
	}

	get queuedFrames(): number {
		return this.budget.queuedFrames;
	}

	/**
	 * Queues a delivery unless the recipient is too far behind; false means it
	 * was dropped and the sender should hear RESOURCE_EXHAUSTED. `onFlushed`
	 * runs once the frame has been handed to the transport.
	 */
	deliver(from: Uint8Array, body: Uint8Array, onFlushed?: () => void): boolean {
		if (this.currentPhase !== "ready") return false;
		const size = body.length + FRAME_OVERHEAD_BYTES;
		if (!this.budget.fits(size)) return false;
		this.write({ frame: { $case: "deliver", value: { from, body } } }, size, onFlushed);
		return true;
	}

	answerSend(id: number, code: status, message: string): void {
		this.write(
			{ frame: { $case: "sendResult", value: { id, code, message } } },
			message.length + FRAME_OVERHEAD_BYTES,
		);
	}

	ping(id: number): void {
		this.write({ frame: { $case: "ping", value: { id } } }, FRAME_OVERHEAD_BYTES);
	}

	/** Ends the call with a non-OK status (or OK) and lets the client know why. */
	endWithStatus(code: status, details: string): void {
		if (!this.markClosed({ code, details, byServer: true })) return;
		if (code === status.OK) {
			this.call.end();
		} else {
			// grpc-js turns an "error" event into the call's final status once queued frames flush.
			this.call.emit("error", Object.assign(new Error(details), { code, details }));
		}
	}

	private onData(raw: Buffer): void {
		if (this.currentPhase === "closed") return;
		this.lastHeardAt = Date.now();
		let frame: SignalClientFrame;
		try {
			frame = SignalClientFrame.decode(raw);
		} catch (err) {
			this.endWithStatus(status.INVALID_ARGUMENT, `malformed frame: ${errorMessage(err)}`);
			return;
		}
		switch (this.currentPhase) {
			case "awaiting-hello":
				this.onHello(frame.frame);
				return;
			case "awaiting-response":
				this.onChallengeResponse(frame.frame);
				return;
			case "registering":
				this.endWithStatus(
					status.INVALID_ARGUMENT,
					`unexpected ${describeFrame(frame.frame)} before ready`,
				);
				return;
			case "ready":
				this.onReadyFrame(frame.frame);
				return;
		}
	}

	private onHello(content: ClientFrameContent): void {
		if (content?.$case !== "hello") {
			this.refuse(`expected hello as the first frame, got ${describeFrame(content)}`);
			return;
		}
		const claimed = content.value.publicKey;
		if (claimed.length !== PUBLIC_KEY_BYTES) {
			this.endWithStatus(
				status.INVALID_ARGUMENT,
				`hello.public_key must be ${PUBLIC_KEY_BYTES} bytes, got ${claimed.length}`,
			);
			return;
		}
		if (isSmallOrderPublicKey(claimed)) {
			this.endWithStatus(
				status.INVALID_ARGUMENT,
				"hello.public_key is a small-order point, not a usable WireGuard public key",
			);
			return;
		}
		// Copy: the decoded field is a view into grpc's receive buffer.
		this.publicKey = Uint8Array.from(claimed);
		this.peerId = encodeKey(this.publicKey);
		this.issued = issueChallenge(this.publicKey);
		this.currentPhase = "awaiting-response";
		this.write(
			{ frame: { $case: "challenge", value: this.issued.challenge } },
			2 * FRAME_OVERHEAD_BYTES,
		);
	}

	private onChallengeResponse(content: ClientFrameContent): void {
		if (content?.$case !== "challengeResponse") {
			this.refuse(`expected challenge_response, got ${describeFrame(content)}`);
			return;
		}
		if (!this.issued || !isCorrectAnswer(this.issued, content.value.secret)) {
			this.refuse(
				`wrong challenge response: the stream does not hold the private key of ${this.peerId}`,
			);
			return;
		}
		this.issued = undefined;
		this.clearHandshakeTimer();
		this.currentPhase = "registering";
		const registered = this.host.beforeReady(this);
		if (registered) registered.then(() => this.guard(() => this.becomeReady()));
		else this.becomeReady();
	}

	private becomeReady(): void {
		// The stream may have closed while the host was registering it.
		if (this.currentPhase !== "registering") return;
		this.currentPhase = "ready";
		this.authenticatedAt = Date.now();
		this.host.onAuthenticated(this);
		this.write(
			{ frame: { $case: "ready", value: { serverTimeUnixMs: this.authenticatedAt } } },
			FRAME_OVERHEAD_BYTES,
		);
	}

	private onReadyFrame(content: ClientFrameContent): void {
		switch (content?.$case) {
			case "send":
				this.host.onSend(this, content.value);
				return;
			case "ping":
				this.write(
					{ frame: { $case: "pong", value: { id: content.value.id } } },
					FRAME_OVERHEAD_BYTES,
				);
				return;
			case "pong":
				// Liveness was recorded in onData; nothing else to do.
				return;
			case undefined:
				this.endWithStatus(status.INVALID_ARGUMENT, "frame has no known content");
				return;
			default:
				this.endWithStatus(
					status.INVALID_ARGUMENT,
					`unexpected ${describeFrame(content)} after the stream is ready`,
				);
		}
	}

	/** Refuses authentication: UNAUTHENTICATED with the reason. */
	private refuse(reason: string): void {
		if (this.currentPhase === "closed") return;
		this.host.onAuthenticationFailed(this, reason);
		this.endWithStatus(status.UNAUTHENTICATED, reason);
	}

	private write(frame: SignalServerFrame, size: number, onFlushed?: () => void): void {
		if (this.currentPhase === "closed") return;
		this.budget.add(size);
		this.call.write(frame, () => {
			this.budget.release(size);
			onFlushed?.();
		});
		if (this.budget.overwhelmed()) {
			this.endWithStatus(
				status.RESOURCE_EXHAUSTED,
				`client is not reading its stream: ${this.budget.queuedFrames} frames (${this.budget.queuedBytes} bytes) unsent`,
			);
		}
	}

	private onTransportGone(reason: string): void {
		this.markClosed({ code: status.CANCELLED, details: reason, byServer: false });
	}

	/** Moves to "closed" exactly once; false if it already was. */
	private markClosed(ending: StreamEnding): boolean {
		if (this.currentPhase === "closed") return false;
		this.currentPhase = "closed";
		this.issued = undefined;
		this.clearHandshakeTimer();
		this.host.onClosed(this, ending);
		return true;
	}

	private clearHandshakeTimer(): void {
		if (this.handshakeTimer) {
			clearTimeout(this.handshakeTimer);
			this.handshakeTimer = undefined;
		}
	}

	private guard(action: () => void): void {
		try {
			action();
		} catch (err) {
			this.host.onUnexpectedError(this, err);
			try {
				this.endWithStatus(status.INTERNAL, "internal error while handling the stream");
			} catch {
				// The call is already unusable; it is marked closed, which is all that matters here.
			}
		}
	}
}

function describeFrame(content: ClientFrameContent): string {
	if (!content) return "an empty frame";
	switch (content.$case) {
		case "hello":
			return "hello";
		case "challengeResponse":
			return "challenge_response";
		case "send":
			return "send";
		case "ping":
			return "ping";
		case "pong":
			return "pong";
	}
}

function describeRemote(call: SignalCall): string {
	try {
		return call.getPeer();
	} catch {
		return "unknown";
	}
}

export function errorMessage(err: unknown): string {
	return err instanceof Error ? err.message : String(err);
}
