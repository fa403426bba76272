import { connect, type NatsConnection, RequestError, TimeoutError } from "@nats-io/transport-node";
import {
	type Bus,
	BusClosedError,
	BusConnectError,
	type BusHandler,
	BusNoResponderError,
	type BusResponder,
	type BusState,
	type BusSubscription,
	BusTimeoutError,
	BusUnavailableError,
	type SubscribeOptions,
} from "./bus.js";
import { redactServerUrl, splitCredentials } from "./servers.js";

export interface NatsBusOptions {
	/**
	 * One or more `nats://host:port` URLs of one NATS cluster; credentials
	 * as `nats://user:password@host:port` or `nats://token@host:port`.
	 */
	servers: string | string[];
	/** The client name the server shows (e.g. "management-<instance id>"). */
	name: string;
	/** How long the first connection may take before start fails (default 5 s). */
	connectTimeoutMs?: number;
	/** Where a throwing handler's error goes. */
	onHandlerError?: (err: unknown, subject: string) => void;
}

/**
 * The bus over NATS core (no JetStream): publish/subscribe and
 * request/reply. After the first connection it reconnects forever on its
 * own, with jittered waits; `onStateChange` reports each loss and return
 * once, so callers log one line per change.
 */
export class NatsBus implements Bus {
	readonly kind = "nats" as const;
	#state: BusState = "connected";
	readonly #listeners = new Set<(state: BusState, detail: string) => void>();
	readonly #onHandlerError: (err: unknown, subject: string) => void;

	private constructor(
		private readonly nc: NatsConnection,
		options: NatsBusOptions,
	) {
		this.#onHandlerError =
			options.onHandlerError ??
			((err, subject) =>
				process.emitWarning(`bus handler for ${subject} threw: ${(err as Error)?.message ?? err}`));
		void this.#watch();
	}

	/** Connects once; throws BusConnectError naming the servers when none answers. */
	static async connect(options: NatsBusOptions): Promise<NatsBus> {
		const urls = Array.isArray(options.servers) ? options.servers : [options.servers];
		const shown = urls.map(redactServerUrl).join(", ");
		let nc: NatsConnection;
		try {
			// The client ignores credentials in a URL: they go in as options.
			const { servers, credentials } = splitCredentials(urls);
			nc = await connect({
				servers,
				...credentials,
				name: options.name,
				timeout: options.connectTimeoutMs ?? 5_000,
				maxReconnectAttempts: -1,
				reconnectTimeWait: 250,
				reconnectJitter: 250,
				// A server that vanishes without closing the socket is noticed in ~10 s.
				pingInterval: 5_000,
				maxPingOut: 2,
			});
		} catch (err) {
			throw new BusConnectError(
				`cannot connect to NATS at ${shown}: ${(err as Error)?.message ?? err}`,
			);
		}
		return new NatsBus(nc, options);
	}

	publish(subject: string, payload: Uint8Array): void {
		if (this.#state === "closed") throw new BusClosedError();
		this.nc.publish(subject, payload);
	}

	subscribe(subject: string, handler: BusHandler, options: SubscribeOptions = {}): BusSubscription {
		if (this.#state === "closed") throw new BusClosedError();
		const sub = this.nc.subscribe(subject, {
			queue: options.queue,
			callback: (err, msg) => {
				if (err) return this.#onHandlerError(err, subject);
				try {
					handler(msg.data, msg.subject);
				} catch (e) {
					this.#onHandlerError(e, msg.subject);
				}
			},
		});
		return { unsubscribe: () => sub.unsubscribe() };
	}

	respond(
		subject: string,
		responder: BusResponder,
		options: SubscribeOptions = {},
	): BusSubscription {
		if (this.#state === "closed") throw new BusClosedError();
		const sub = this.nc.subscribe(subject, {
			queue: options.queue,
			callback: (err, msg) => {
				if (err) return this.#onHandlerError(err, subject);
				Promise.resolve()
					.then(() => responder(msg.data, msg.subject))
					.then(
						(answer) => {
							if (answer !== undefined) msg.respond(answer);
						},
						(e: unknown) => this.#onHandlerError(e, msg.subject),
					);
			},
		});
		return { unsubscribe: () => sub.unsubscribe() };
	}

	async request(subject: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
		if (this.#state === "closed") throw new BusClosedError();
		if (this.#state === "disconnected")
			throw new BusUnavailableError(`NATS is unreachable; request on ${subject} not sent`);
		try {
			const msg = await this.nc.request(subject, payload, { timeout: timeoutMs });
			return msg.data;
		} catch (err) {
			if (err instanceof RequestError && err.isNoResponders())
				throw new BusNoResponderError(subject);
			if (err instanceof TimeoutError || (err as Error)?.cause instanceof TimeoutError) {
				if (this.state() === "disconnected")
					throw new BusUnavailableError(`NATS connection lost during request on ${subject}`);
				throw new BusTimeoutError(subject, timeoutMs);
			}
			throw err;
		}
	}

	async flush(): Promise<void> {
		if (this.#state === "closed") throw new BusClosedError();
		await this.nc.flush();
	}

	state(): BusState {
		return this.#state;
	}

	onStateChange(listener: (state: BusState, detail: string) => void): () => void {
		this.#listeners.add(listener);
		return () => this.#listeners.delete(listener);
	}

	async close(): Promise<void> {
		if (this.#state === "closed") return;
		await this.nc.drain().catch(() => this.nc.close());
		this.#set("closed", "closed by its owner");
	}

	#set(state: BusState, detail: string): void {
		if (this.#state === state) return;
		this.#state = state;
		for (const listener of this.#listeners) listener(state, detail);
	}

	async #watch(): Promise<void> {
		const closed = this.nc.closed().then((err) => {
			this.#set("closed", err ? `connection closed: ${err.message}` : "connection closed");
		});
		for await (const status of this.nc.status()) {
			if (status.type === "disconnect") this.#set("disconnected", `lost ${status.server}`);
			else if (status.type === "reconnect")
				this.#set("connected", `reconnected to ${status.server}`);
		}
		await closed;
	}
}
