import { status } from "@grpc/grpc-js";
import type { Bus, BusState, BusSubscription } from "@starling/bus";
import { encodeKey } from "@starling/crypto";
import type { Logger } from "@starling/log";
import { SignalBusForward, SignalBusForwardResult, SignalBusStreamOpened } from "@starling/proto";
import { PUBLIC_KEY_BYTES } from "./limits.js";
import { errorMessage } from "./peer-stream.js";
import {
	answerForBusFailure,
	checkForward,
	DELIVERY_QUEUE,
	peerSubject,
	type SendAnswer,
	STREAM_OPENED_SUBJECT,
} from "./routing-rules.js";

/** How long a forward waits for the instance holding the peer to answer. */
export const DEFAULT_FORWARD_TIMEOUT_MS = 2_000;
/** How long a handshake waits for NATS to confirm the new peer's subscription. */
export const DEFAULT_ATTACH_WAIT_MS = 1_000;

export interface CrossInstanceOptions {
	bus: Bus;
	/** This process's id on the bus (random per start), so that it ignores its own announcements. */
	instanceId: string;
	logger: Logger;
	/** Delivers a message that came over the bus to a stream on this instance. */
	deliverHere(from: Uint8Array, toId: string, body: Uint8Array): SendAnswer;
	/** Another instance announced a stream for this key that authenticated at `atMs`. */
	onStreamOpenedElsewhere(peerId: string, atMs: number): void;
	forwardTimeoutMs?: number;
	attachWaitMs?: number;
}

/**
 * The bus side of the signal hub: one queue-group responder per peer
 * connected here (on the hash of its key), forwards of sends for peers that
 * are not, and announcements of new streams so that another instance can
 * end an older stream of the same key. The hub's local path never comes
 * here: a peer connected to this instance is served without the bus.
 */
export class CrossInstanceRouter {
	private readonly bus: Bus;
	private readonly logger: Logger;
	private readonly forwardTimeoutMs: number;
	private readonly attachWaitMs: number;
	private readonly responders = new Map<string, BusSubscription>();
	private readonly announcements: BusSubscription;
	private readonly stopWatching: () => void;
	private closed = false;

	constructor(private readonly options: CrossInstanceOptions) {
		this.bus = options.bus;
		this.logger = options.logger;
		this.forwardTimeoutMs = options.forwardTimeoutMs ?? DEFAULT_FORWARD_TIMEOUT_MS;
		this.attachWaitMs = options.attachWaitMs ?? DEFAULT_ATTACH_WAIT_MS;
		this.announcements = this.bus.subscribe(STREAM_OPENED_SUBJECT, (payload) =>
			this.onStreamOpened(payload),
		);
		this.stopWatching = this.bus.onStateChange((state, detail) => this.logState(state, detail));
	}

	/**
	 * Makes a peer that is completing its handshake here reachable from the
	 * other instances. Returns a promise when it is worth waiting for NATS to
	 * confirm the new subscription (so that "ready" means reachable from
	 * everywhere); it resolves within attachWaitMs and never rejects.
	 */
	attach(publicKey: Uint8Array, peerId: string): Promise<void> | undefined {
		if (this.closed || this.responders.has(peerId)) return undefined;
		this.responders.set(
			peerId,
			this.bus.respond(
				peerSubject(publicKey),
				(payload, subject) => this.answer(payload, subject),
				{
					queue: DELIVERY_QUEUE,
				},
			),
		);
		// In-process, the subscription holds at once; without a connection NATS
		// sends it when it is back, and the handshake should not wait for that.
		if (this.bus.kind !== "nats" || this.bus.state() !== "connected") return undefined;
		return new Promise<void>((resolve) => {
			const timer = setTimeout(resolve, this.attachWaitMs);
			this.bus.flush().then(
				() => {
					clearTimeout(timer);
					resolve();
				},
				() => {
					clearTimeout(timer);
					resolve();
				},
			);
		});
	}

	/** Tells the other instances that this key authenticated here at `atMs`. */
	announce(publicKey: Uint8Array, atMs: number): void {
		if (this.bus.state() === "closed") return;
		const opened = SignalBusStreamOpened.encode({
			publicKey,
			instanceId: this.options.instanceId,
			authenticatedAtUnixMs: atMs,
		}).finish();
		try {
			this.bus.publish(STREAM_OPENED_SUBJECT, opened);
		} catch (err) {
			this.logger.debug({ err: errorMessage(err) }, "cannot announce a new stream on the bus");
		}
	}

	/** The peer has no stream here any more: other instances' forwards stop coming. */
	detach(peerId: string): void {
		const responder = this.responders.get(peerId);
		if (!responder) return;
		this.responders.delete(peerId);
		responder.unsubscribe();
	}

	/** Sends to a peer that is not connected here, through whichever instance holds it. */
	async forward(
		from: Uint8Array,
		to: Uint8Array,
		toId: string,
		body: Uint8Array,
	): Promise<SendAnswer> {
		let reply: Uint8Array;
		try {
			// Encoded before the first await: `to` and `body` are views into grpc's receive buffer.
			const request = SignalBusForward.encode({ from, to, body }).finish();
			reply = await this.bus.request(peerSubject(to), request, this.forwardTimeoutMs);
		} catch (err) {
			return answerForBusFailure(err, toId);
		}
		try {
			const result = SignalBusForwardResult.decode(reply);
			return { code: result.code as status, message: result.message };
		} catch (err) {
			this.logger.warn({ err: errorMessage(err) }, "undecodable answer from another instance");
			return answerForBusFailure(err, toId);
		}
	}

	close(): void {
		if (this.closed) return;
		this.closed = true;
		this.stopWatching();
		this.announcements.unsubscribe();
		for (const responder of this.responders.values()) responder.unsubscribe();
		this.responders.clear();
	}

	/** Another instance asks us to deliver to a peer of ours. */
	private answer(payload: Uint8Array, subject: string): Uint8Array {
		let answer: SendAnswer;
		try {
			const checked = checkForward(SignalBusForward.decode(payload), subject);
			answer =
				"toId" in checked
					? this.options.deliverHere(checked.from, checked.toId, checked.body)
					: checked;
		} catch (err) {
			answer = {
				code: status.INVALID_ARGUMENT,
				message: `malformed forward from another instance: ${errorMessage(err)}`,
			};
		}
		if (answer.code === status.INVALID_ARGUMENT) {
			// Only a bug or a mismatched version sends these: worth seeing.
			this.logger.warn({ reason: answer.message }, "refused a forward from another instance");
		}
		return SignalBusForwardResult.encode({ code: answer.code, message: answer.message }).finish();
	}

	private onStreamOpened(payload: Uint8Array): void {
		let opened: SignalBusStreamOpened;
		try {
			opened = SignalBusStreamOpened.decode(payload);
		} catch (err) {
			this.logger.warn({ err: errorMessage(err) }, "undecodable stream announcement on the bus");
			return;
		}
		if (opened.instanceId === this.options.instanceId) return;
		if (opened.publicKey.length !== PUBLIC_KEY_BYTES) return;
		this.options.onStreamOpenedElsewhere(encodeKey(opened.publicKey), opened.authenticatedAtUnixMs);
	}

	private logState(state: BusState, detail: string): void {
		if (state === "disconnected") {
			this.logger.warn(
				{ bus: this.bus.kind, detail },
				"bus lost: peers on other instances are unreachable until it returns; local delivery continues",
			);
		} else if (state === "connected") {
			this.logger.info({ bus: this.bus.kind, detail }, "bus back: cross-instance routing resumed");
		} else {
			this.logger.info({ bus: this.bus.kind, detail }, "bus closed");
		}
	}
}
