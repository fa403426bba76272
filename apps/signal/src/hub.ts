import { status } from "@grpc/grpc-js";
import type { Bus } from "@starling/bus";
import { encodeKey } from "@starling/crypto";
import type { Logger } from "@starling/log";
import type { SignalSend } from "@starling/proto";
import { CrossInstanceRouter } from "./cross-instance.js";
import { MISSED_HEARTBEATS_BEFORE_DEAD } from "./limits.js";
import type { OutboundLimits } from "./outbound-budget.js";
import {
	errorMessage,
	PeerStream,
	type SignalCall,
	type StreamEnding,
	type StreamHost,
} from "./peer-stream.js";
import {
	DELIVERED,
	notConnected,
	recipientSlow,
	type SendAnswer,
	yieldsTo,
} from "./routing-rules.js";
import { validateSend } from "./validation.js";

export interface HubOptions {
	logger: Logger;
	heartbeatIntervalMs: number;
	handshakeTimeoutMs: number;
	outboundLimits: OutboundLimits;
	/**
	 * Reaches peers connected to other instances: NATS with several
	 * instances, the in-process bus (nobody else) with one.
	 */
	bus: Bus;
	/** This instance's id on the bus. */
	instanceId: string;
	/** How long a forward waits for the instance holding the peer. */
	forwardTimeoutMs?: number;
	/**
	 * Called once per delivered message with the seconds from the arrival of
	 * its send frame to its deliver frame being flushed to the recipient's stream.
	 */
	observeRoutingSeconds?: (seconds: number) => void;
}

/** Why a send was answered with a non-OK code instead of delivered. */
export const SEND_REFUSALS = [
	"invalid",
	"not_connected",
	"recipient_slow",
	"cross_instance_unavailable",
] as const;
export type SendRefusal = (typeof SEND_REFUSALS)[number];

/** Counters for monitoring and tests; all since the server started except the gauges. */
export interface SignalServerStats {
	/** Open streams, authenticated or not. */
	openStreams: number;
	/** Streams that completed the handshake and are registered for their key. */
	connectedPeers: number;
	handshaking: number;
	messagesDelivered: number;
	/** Sends from peers here accepted by another instance for a peer connected there. */
	messagesForwarded: number;
	/** "in-process" (one instance) or "nats", and whether it is connected. */
	bus: { kind: Bus["kind"]; connected: boolean };
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
	/** Streams whose key is proven but whose "ready" waits for the bus. */
	private readonly registering = new Set<PeerStream>();
	private readonly bus: Bus;
	private readonly router: CrossInstanceRouter;
	private nextPingId = 1;
	private messagesDelivered = 0;
	private messagesForwarded = 0;
	private readonly sendsRefused: Record<SendRefusal, number> = {
		invalid: 0,
		not_connected: 0,
		recipient_slow: 0,
		cross_instance_unavailable: 0,
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
		this.bus = options.bus;
		this.router = new CrossInstanceRouter({
			bus: options.bus,
			instanceId: options.instanceId,
			logger: options.logger,
			forwardTimeoutMs: options.forwardTimeoutMs,
			deliverHere: (from, toId, body) => this.deliverFromBus(from, toId, body),
			onStreamOpenedElsewhere: (peer, atMs) => this.onStreamOpenedElsewhere(peer, atMs),
		});
	}

	accept(call: SignalCall): void {
		const stream = new PeerStream(call, this);
		this.streams.add(stream);
		this.logger.debug({ remote: stream.remote }, "stream opened");
	}

	beforeReady(stream: PeerStream): Promise<void> | undefined {
		if (stream.peerId === undefined || stream.publicKey === undefined) return undefined;
		this.registering.add(stream);
		return this.router.attach(stream.publicKey, stream.peerId);
	}

	onAuthenticated(stream: PeerStream): void {
		this.registering.delete(stream);
		const peer = stream.peerId;
		if (peer === undefined || stream.publicKey === undefined) return;
		this.router.announce(stream.publicKey, stream.authenticatedAt);
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
			this.forwardElsewhere(sender, send, to);
			return;
		}
		const observe = this.observeRoutingSeconds;
		const onFlushed = observe && (() => observe((performance.now() - receivedAt) / 1000));
		if (!sender.publicKey || !recipient.deliver(sender.publicKey, send.body, onFlushed)) {
			const slow = recipientSlow(to);
			this.reject(sender, send.id, "recipient_slow", slow.code, slow.message);
			return;
		}
		this.messagesDelivered += 1;
		sender.answerSend(send.id, status.OK, "");
	}

	/** The recipient is not connected here: ask the bus for the instance that holds it. */
	private forwardElsewhere(sender: PeerStream, send: SignalSend, to: string): void {
		const from = sender.publicKey;
		if (!from) return;
		this.router
			.forward(from, send.to, to, send.body)
			.then((answer) => {
				if (answer.code === status.OK) {
					this.messagesForwarded += 1;
					sender.answerSend(send.id, status.OK, "");
				} else {
					this.reject(sender, send.id, refusalFor(answer), answer.code, answer.message);
				}
			})
			.catch((err: unknown) => this.onUnexpectedError(sender, err));
	}

	/** A send forwarded by another instance for a peer connected here. */
	private deliverFromBus(from: Uint8Array, toId: string, body: Uint8Array): SendAnswer {
		const recipient = this.byPeer.get(toId);
		if (!recipient) return notConnected(toId);
		const receivedAt = performance.now();
		const observe = this.observeRoutingSeconds;
		const onFlushed = observe && (() => observe((performance.now() - receivedAt) / 1000));
		if (!recipient.deliver(from, body, onFlushed)) return recipientSlow(toId);
		this.messagesDelivered += 1;
		return DELIVERED;
	}

	/** The peer completed a handshake on another instance after ours: ours is stale or a duplicate. */
	private onStreamOpenedElsewhere(peer: string, atMs: number): void {
		const local = this.byPeer.get(peer);
		if (!local || !yieldsTo(local.authenticatedAt, atMs)) return;
		local.endWithStatus(status.ABORTED, "replaced by a newer stream on another signal instance");
	}

	onClosed(stream: PeerStream, ending: StreamEnding): void {
		this.streams.delete(stream);
		this.registering.delete(stream);
		const peer = stream.peerId;
		const wasRegistered = peer !== undefined && this.byPeer.get(peer) === stream;
		if (wasRegistered) this.byPeer.delete(peer);
		if (peer !== undefined && !this.byPeer.has(peer) && !this.isRegistering(peer)) {
			this.router.detach(peer);
		}
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

	/** Ends every stream with the same status and leaves the bus, for shutdown. */
	closeAll(code: status, details: string): void {
		for (const stream of [...this.streams]) stream.endWithStatus(code, details);
		this.router.close();
	}

	stats(): SignalServerStats {
		let handshaking = 0;
		for (const stream of this.streams) {
			if (
				stream.phase === "awaiting-hello" ||
				stream.phase === "awaiting-response" ||
				stream.phase === "registering"
			)
				handshaking += 1;
		}
		return {
			openStreams: this.streams.size,
			connectedPeers: this.byPeer.size,
			handshaking,
			messagesDelivered: this.messagesDelivered,
			messagesForwarded: this.messagesForwarded,
			bus: { kind: this.bus.kind, connected: this.bus.state() === "connected" },
			sendsRefused: { ...this.sendsRefused },
			authFailures: this.authFailures,
			heartbeatTimeouts: this.heartbeatTimeouts,
		};
	}

	private isRegistering(peer: string): boolean {
		for (const stream of this.registering) if (stream.peerId === peer) return true;
		return false;
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

/** The counter a refusal from another instance (or from the bus) goes to. */
function refusalFor(answer: SendAnswer): SendRefusal {
	switch (answer.code) {
		case status.NOT_FOUND:
			return "not_connected";
		case status.RESOURCE_EXHAUSTED:
			return "recipient_slow";
		case status.INVALID_ARGUMENT:
			return "invalid";
		default:
			return "cross_instance_unavailable";
	}
}
