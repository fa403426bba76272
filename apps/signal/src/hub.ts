import { status } from "@grpc/grpc-js";
import { encodeKey } from "@starling/crypto";
import type { Logger } from "@starling/log";
import type { SignalSend } from "@starling/proto";
import { MISSED_HEARTBEATS_BEFORE_DEAD } from "./limits.js";
import type { OutboundLimits } from "./outbound-budget.js";
import {
	errorMessage,
	PeerStream,
	type SignalCall,
	type StreamEnding,
	type StreamHost,
} from "./peer-stream.js";
import { validateSend } from "./validation.js";

export interface HubOptions {
	logger: Logger;
	heartbeatIntervalMs: number;
	handshakeTimeoutMs: number;
	outboundLimits: OutboundLimits;
	/**
	 * Called once per delivered message with the seconds from the arrival of
	 * its send frame to its deliver frame being flushed to the recipient's stream.
	 */
	observeRoutingSeconds?: (seconds: number) => void;
}

/** Why a send was answered with a non-OK code instead of delivered. */
export const SEND_REFUSALS = ["invalid", "not_connected", "recipient_slow"] as const;
export type SendRefusal = (typeof SEND_REFUSALS)[number];

/** Counters for monitoring and tests; all since the server started except the gauges. */
export interface SignalServerStats {
	/** Open streams, authenticated or not. */
	openStreams: number;
	/** Streams that completed the handshake and are registered for their key. */
	connectedPeers: number;
	handshaking: number;
	messagesDelivered: number;
	/** Sends answered with a non-OK code, by reason. */
	sendsRefused: Record<SendRefusal, number>;
	authFailures: number;
	heartbeatTimeouts: number;
}

/**
 * The registry of authenticated streams by public key, the router between
 * them, and the heartbeat that evicts streams gone silent.
 */
export class SignalHub implements StreamHost {
	readonly handshakeTimeoutMs: number;
	readonly outboundLimits: OutboundLimits;
	private readonly logger: Logger;
	private readonly heartbeatIntervalMs: number;
	private readonly streams = new Set<PeerStream>();
	private readonly byPeer = new Map<string, PeerStream>();
	private nextPingId = 1;
	private messagesDelivered = 0;
	private readonly sendsRefused: Record<SendRefusal, number> = {
		invalid: 0,
		not_connected: 0,
		recipient_slow: 0,
	};
	private readonly observeRoutingSeconds: ((seconds: number) => void) | undefined;
	private authFailures = 0;
	private heartbeatTimeouts = 0;

	constructor(options: HubOptions) {
		this.logger = options.logger;
		this.heartbeatIntervalMs = options.heartbeatIntervalMs;
		this.handshakeTimeoutMs = options.handshakeTimeoutMs;
		this.outboundLimits = options.outboundLimits;
		this.observeRoutingSeconds = options.observeRoutingSeconds;
	}

	accept(call: SignalCall): void {
		const stream = new PeerStream(call, this);
		this.streams.add(stream);
		this.logger.debug({ remote: stream.remote }, "stream opened");
	}

	onAuthenticated(stream: PeerStream): void {
		const peer = stream.peerId;
		if (peer === undefined) return;
		const older = this.byPeer.get(peer);
		this.byPeer.set(peer, stream);
		this.logger.info(
			{ peer, remote: stream.remote, replacedOlderStream: older !== undefined },
			"peer connected",
		);
		if (older && older !== stream) {
			older.endWithStatus(status.ABORTED, "replaced by a newer stream");
		}
	}

	onAuthenticationFailed(stream: PeerStream, reason: string): void {
		this.authFailures += 1;
		this.logger.warn(
			{ peer: stream.peerId, remote: stream.remote, reason },
			"authentication failed",
		);
	}

	onSend(sender: PeerStream, send: SignalSend): void {
		const receivedAt = performance.now();
		const rejection = validateSend(send);
		if (rejection) {
			this.reject(sender, send.id, "invalid", rejection.code, rejection.message);
			return;
		}
		const to = encodeKey(send.to);
		const recipient = this.byPeer.get(to);
		if (!recipient) {
			this.reject(
				sender,
				send.id,
				"not_connected",
				status.NOT_FOUND,
				`peer ${to} is not connected`,
			);
			return;
		}
		const observe = this.observeRoutingSeconds;
		const onFlushed = observe && (() => observe((performance.now() - receivedAt) / 1000));
		if (!sender.publicKey || !recipient.deliver(sender.publicKey, send.body, onFlushed)) {
			this.reject(
				sender,
				send.id,
				"recipient_slow",
				status.RESOURCE_EXHAUSTED,
				`peer ${to} is not reading fast enough; message dropped`,
			);
			return;
		}
		this.messagesDelivered += 1;
		sender.answerSend(send.id, status.OK, "");
	}

	onClosed(stream: PeerStream, ending: StreamEnding): void {
		this.streams.delete(stream);
		const peer = stream.peerId;
		const wasRegistered = peer !== undefined && this.byPeer.get(peer) === stream;
		if (wasRegistered) this.byPeer.delete(peer);
		const fields = {
			peer,
			remote: stream.remote,
			code: status[ending.code],
			reason: ending.details,
			byServer: ending.byServer,
			connectedForMs: Date.now() - stream.openedAt,
		};
		// Streams that never authenticated are noise at info level; their failures are logged as warnings.
		if (wasRegistered || ending.code === status.ABORTED) {
			this.logger.info(fields, "peer disconnected");
		} else {
			this.logger.debug(fields, "unauthenticated stream closed");
		}
	}

	onUnexpectedError(stream: PeerStream, err: unknown): void {
		this.logger.error(
			{ peer: stream.peerId, remote: stream.remote, err: errorMessage(err) },
			"unexpected error while handling a stream",
		);
	}

	/** One heartbeat: evicts streams silent for too long and pings the rest. */
	heartbeat(now = Date.now()): void {
		const deadAfterMs = MISSED_HEARTBEATS_BEFORE_DEAD * this.heartbeatIntervalMs;
		const pingId = this.nextPingId++;
		for (const stream of [...this.streams]) {
			if (stream.phase !== "ready") continue;
			const silentForMs = now - stream.lastHeardAt;
			if (silentForMs >= deadAfterMs) {
				this.heartbeatTimeouts += 1;
				stream.endWithStatus(
					status.UNAVAILABLE,
					`heartbeat timeout: nothing received for ${silentForMs} ms`,
				);
			} else {
				stream.ping(pingId);
			}
		}
	}

	/** Ends every stream with the same status, for shutdown. */
	closeAll(code: status, details: string): void {
		for (const stream of [...this.streams]) stream.endWithStatus(code, details);
	}

	stats(): SignalServerStats {
		let handshaking = 0;
		for (const stream of this.streams) {
			if (stream.phase === "awaiting-hello" || stream.phase === "awaiting-response")
				handshaking += 1;
		}
		return {
			openStreams: this.streams.size,
			connectedPeers: this.byPeer.size,
			handshaking,
			messagesDelivered: this.messagesDelivered,
			sendsRefused: { ...this.sendsRefused },
			authFailures: this.authFailures,
			heartbeatTimeouts: this.heartbeatTimeouts,
		};
	}

	private reject(
		sender: PeerStream,
		id: number,
		why: SendRefusal,
		code: status,
		message: string,
	): void {
		this.sendsRefused[why] += 1;
		this.logger.debug(
			{ peer: sender.peerId, code: status[code], reason: message },
			"send rejected",
		);
		sender.answerSend(id, code, message);
	}
}
