/**
 * Cross-instance messages between control-plane instances (management,
 * signal). Subjects are NATS subjects: tokens separated by dots; in
 * subscriptions `*` matches one token and `>` one or more trailing tokens.
 * Delivery is at most once and unordered across publishers: users keep
 * correctness in the store (or answer NOT_FOUND) and use the bus for speed.
 */
export interface Bus {
	/** "in-process" (one instance, nothing to run) or "nats". */
	readonly kind: "in-process" | "nats";
	/**
	 * Publishes without waiting. While the connection is down, NATS buffers
	 * what it can and may drop it: a publish is a hint, never the only copy.
	 * Throws BusClosedError after `close`.
	 */
	publish(subject: string, payload: Uint8Array): void;
	/**
	 * Calls `handler` for every message on a matching subject. With `queue`,
	 * each message goes to one subscriber of that queue name only (per bus).
	 */
	subscribe(subject: string, handler: BusHandler, options?: SubscribeOptions): BusSubscription;
	/**
	 * Answers requests on matching subjects: what `responder` returns is the
	 * reply; `undefined` sends no reply (the requester times out). With
	 * `queue`, each request reaches one responder of that queue name.
	 */
	respond(subject: string, responder: BusResponder, options?: SubscribeOptions): BusSubscription;
	/**
	 * Sends a request and resolves with the first reply. Rejects with
	 * BusNoResponderError when nobody answers on the subject (known at once),
	 * BusTimeoutError after `timeoutMs`, BusUnavailableError while
	 * disconnected.
	 */
	request(subject: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
	/** Resolves once everything published so far has reached the server. */
	flush(): Promise<void>;
	state(): BusState;
	/** Called once per change of state (not per reconnect attempt). Returns an unsubscribe function. */
	onStateChange(listener: (state: BusState, detail: string) => void): () => void;
	close(): Promise<void>;
}

export type BusState = "connected" | "disconnected" | "closed";
export type BusHandler = (payload: Uint8Array, subject: string) => void;
export type BusResponder = (
	payload: Uint8Array,
	subject: string,
) => Uint8Array | undefined | Promise<Uint8Array | undefined>;

export interface SubscribeOptions {
	queue?: string;
}

export interface BusSubscription {
	unsubscribe(): void;
}

export class BusNoResponderError extends Error {
	override name = "BusNoResponderError";
	constructor(readonly subject: string) {
		super(`no responder on ${subject}`);
	}
}

export class BusTimeoutError extends Error {
	override name = "BusTimeoutError";
	constructor(
		readonly subject: string,
		timeoutMs: number,
	) {
		super(`no reply on ${subject} within ${timeoutMs} ms`);
	}
}

export class BusUnavailableError extends Error {
	override name = "BusUnavailableError";
}

export class BusClosedError extends Error {
	override name = "BusClosedError";
	constructor() {
		super("the bus is closed");
	}
}

/** The bus could not be reached at start (the message names the server). */
export class BusConnectError extends Error {
	override name = "BusConnectError";
}
