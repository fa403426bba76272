import { backoffDelay, resolveBackoff } from "@starling/backoff";
import { BoxChannel, encodeKey, type KeyPair } from "@starling/crypto";
import type { Logger } from "@starling/log";
import { PeerMessage } from "@starling/proto";
import { SignalError } from "@starling/signal-client";

/** Retries of the first signal connection; the client reconnects by itself after that. */
const SIGNAL_RECONNECT = resolveBackoff({ initialDelayMs: 500, maxDelayMs: 15_000, jitter: 0.5 });
/**
 * Messages to peers are held this long while signal is (re)connecting; one
 * still held then is reported as a failed send, as is one pushed out by
 * MAX_UNSENT newer ones.
 */
export const UNSENT_SIGNAL_TTL_MS = 5_000;
/** Least wait between two looks for expired held messages. */
const EXPIRY_CHECK_MIN_MS = 50;
/** Signal messages from peers not (yet) in our map are kept this long, in case the map catches up. */
export const EARLY_MESSAGE_TTL_MS = 10_000;
const MAX_UNSENT = 256;
const MAX_EARLY_PER_PEER = 32;
/** gRPC NOT_FOUND from signal: the peer is not connected to it. */
const NOT_FOUND = 5;

/** What the link needs of a signal client (`SignalClient` from @starling/signal-client). */
export interface SignalConnection {
	readonly state: string;
	connect(): Promise<void>;
	send(to: Uint8Array, body: Uint8Array): Promise<void>;
	close(): Promise<void>;
	on(event: "message", listener: (m: { from: Uint8Array; body: Uint8Array }) => void): unknown;
	on(event: "connected", listener: () => void): unknown;
	on(event: "disconnected", listener: (err: Error) => void): unknown;
}

/** Makes a signal client for a URL; the daemon gives the real one, tests a fake. */
export type SignalClientFactory = (url: string) => SignalConnection;

/** A message to a peer, held while signal is not connected. */
interface HeldMessage<P> {
	at: number;
	peer: P;
	message: PeerMessage;
}

/** A peer as the link sees it; the engine passes its own peer objects and gets them back. */
export interface SignalPeer {
	readonly key: string;
	readonly publicKey: Uint8Array;
}

export interface SignalLinkOptions<P extends SignalPeer> {
	keyPair: KeyPair;
	/** undefined: this engine has no signal; the map's URL shows up in status as not connectable. */
	createClient: SignalClientFactory | undefined;
	logger: Logger;
	random: () => number;
	now: () => number;
	/** The current peer object for a key, undefined when the peer is not in the map. */
	peer(key: string): P | undefined;
	/** A message from a peer in the map, opened and decoded. */
	onMessage(peer: P, message: PeerMessage): void;
	/** A message we sent was not delivered; notFound: signal says the peer is not connected. */
	onSendFailed(peer: P, sessionId: number, notFound: boolean): void;
}

/**
 * The agent's link to signal: follows the URL the map names (one client at
 * a time), seals messages to each peer with its key (and opens theirs),
 * holds outgoing messages while signal is connecting, and keeps messages
 * from peers the map does not name yet until it does. No message is dropped
 * without a word: a send that fails, or a held message that is never sent,
 * is reported to `onSendFailed`, and the peer's state machine tries again
 * after its backoff (a reconnect to another signal instance takes a moment,
 * and a message held past it must not leave the peer waiting for a timeout).
 */
export class SignalLink<P extends SignalPeer> {
	private client: SignalConnection | undefined;
	private url = "";
	private error = "";
	private closed = false;
	private readonly boxes = new Map<string, BoxChannel>();
	private unsent: HeldMessage<P>[] = [];
	private expiryTimer: NodeJS.Timeout | undefined;
	private readonly early = new Map<string, { at: number; messages: PeerMessage[] }>();

	constructor(private readonly options: SignalLinkOptions<P>) {}

	/** Connects to `url` (the map's signal URL), replacing a client for another URL; "" disconnects. */
	follow(url: string): void {
		if (this.closed || (url === this.url && this.client)) return;
		this.url = url;
		void this.client?.close();
		this.client = undefined;
		if (!url) return;
		if (!this.options.createClient) {
			this.error = "this engine was given no signal client";
			return;
		}
		let client: SignalConnection;
		try {
			client = this.options.createClient(url);
		} catch (err) {
			this.error = (err as Error).message;
			this.options.logger.error({ url, error: this.error }, "signal client failed");
			return;
		}
		this.client = client;
		client.on("message", (m) => this.received(m.from, m.body));
		client.on("connected", () => {
			this.error = "";
			this.flushUnsent();
			this.options.logger.info({ url }, "signal connected");
		});
		client.on("disconnected", (err) => {
			this.error = err.message;
		});
		const connect = (attempt: number) => {
			if (this.client !== client || this.closed) return;
			client.connect().catch((err: Error) => {
				this.error = err.message;
				const delay = backoffDelay(attempt, SIGNAL_RECONNECT, this.options.random);
				setTimeout(() => connect(attempt + 1), delay).unref();
			});
		};
		connect(0);
	}

	/**
	 * Seals and sends a message to a peer. While signal is still connecting
	 * (typically right after `up`) the message is held briefly instead of
	 * failing the attempt and backing off.
	 */
	send(peer: P, message: PeerMessage): void {
		const client = this.client;
		const now = this.options.now();
		if (client?.state !== "ready") {
			this.expireHeld(now);
			this.unsent.push({ at: now, peer, message });
			const overflow = this.unsent.length - MAX_UNSENT;
			if (overflow > 0) for (const u of this.unsent.splice(0, overflow)) this.reportUnsent(u);
			this.armExpiry(now);
			return;
		}
		const sessionId = message.sessionId;
		const body = this.box(peer.key, peer.publicKey).sealToBytes(
			PeerMessage.encode(message).finish(),
		);
		client.send(peer.publicKey, body).catch((err: unknown) => {
			const notFound = err instanceof SignalError && err.code === NOT_FOUND;
			if (this.options.peer(peer.key) === peer)
				this.options.onSendFailed(peer, sessionId, notFound);
		});
	}

	/** Messages that came from this peer before the map named it; removes them. */
	takeEarly(key: string): PeerMessage[] {
		const early = this.early.get(key);
		this.early.delete(key);
		return early?.messages ?? [];
	}

	/** The peer left the map: drop its key and what is held for it. */
	forget(peer: P): void {
		this.boxes.delete(peer.key);
		this.unsent = this.unsent.filter((u) => u.peer !== peer);
	}

	status(): { url: string; connected: boolean; error: string } {
		const connected = this.client?.state === "ready";
		return { url: this.url, connected, error: connected ? "" : this.error };
	}

	/** How many messages are held while signal connects (tests). */
	get heldCount(): number {
		return this.unsent.length;
	}

	async close(): Promise<void> {
		this.closed = true;
		const client = this.client;
		this.client = undefined;
		this.unsent = [];
		clearTimeout(this.expiryTimer);
		this.expiryTimer = undefined;
		await client?.close();
	}

	private box(key: string, publicKey: Uint8Array): BoxChannel {
		let box = this.boxes.get(key);
		if (!box) {
			box = new BoxChannel(this.options.keyPair.privateKey, publicKey);
			this.boxes.set(key, box);
		}
		return box;
	}

	private flushUnsent(): void {
		this.expireHeld(this.options.now());
		const held = this.unsent;
		this.unsent = [];
		for (const u of held)
			if (this.options.peer(u.peer.key) === u.peer) this.send(u.peer, u.message);
	}

	/** Reports and removes held messages older than the TTL. */
	private expireHeld(now: number): void {
		const expired = this.unsent.filter((u) => now - u.at >= UNSENT_SIGNAL_TTL_MS);
		if (expired.length === 0) return;
		this.unsent = this.unsent.filter((u) => now - u.at < UNSENT_SIGNAL_TTL_MS);
		for (const u of expired) this.reportUnsent(u);
	}

	/** Looks again when the oldest held message expires, so a message held while signal stays away is reported in time. */
	private armExpiry(now: number): void {
		const oldest = this.unsent[0];
		if (this.expiryTimer || !oldest || this.closed) return;
		const delay = Math.max(EXPIRY_CHECK_MIN_MS, oldest.at + UNSENT_SIGNAL_TTL_MS - now);
		this.expiryTimer = setTimeout(() => {
			this.expiryTimer = undefined;
			const at = this.options.now();
			this.expireHeld(at);
			this.armExpiry(at);
		}, delay);
		this.expiryTimer.unref?.();
	}

	/**
	 * A held message that will not be sent counts as a failed send. Reported
	 * after the current turn: send() runs inside the state machine's commands,
	 * which must not be fed an input while they run.
	 */
	private reportUnsent(u: HeldMessage<P>): void {
		queueMicrotask(() => {
			if (this.closed || this.options.peer(u.peer.key) !== u.peer) return;
			this.options.onSendFailed(u.peer, u.message.sessionId, false);
		});
	}

	private received(from: Uint8Array, body: Uint8Array): void {
		const key = encodeKey(from);
		const peer = this.options.peer(key);
		let message: PeerMessage;
		try {
			const box = peer
				? this.box(key, peer.publicKey)
				: new BoxChannel(this.options.keyPair.privateKey, from);
			message = PeerMessage.decode(box.openFromBytes(body));
		} catch (err) {
			this.options.logger.warn(
				{ from: key, error: (err as Error).message },
				"dropped a signal message that did not open",
			);
			return;
		}
		if (peer) {
			this.options.onMessage(peer, message);
			return;
		}
		// The sender may already know us while our map has not caught up yet.
		const now = this.options.now();
		for (const [k, v] of this.early) if (now - v.at > EARLY_MESSAGE_TTL_MS) this.early.delete(k);
		const early = this.early.get(key) ?? { at: now, messages: [] };
		if (early.messages.length < MAX_EARLY_PER_PEER) early.messages.push(message);
		this.early.set(key, early);
	}
}
