import type { Logger } from "@starling/log";
import type { RelayConfig } from "@starling/proto";
import { chooseRelay, rankRelaysForPair, relaysToHold } from "./relay-choice.js";

/** What the link needs of a relay client (`RelayClient` from @starling/relay-client). */
export interface RelayConnection {
	readonly state: string;
	/** Keeps trying with backoff until admitted, and again after every loss. */
	start(): void;
	setToken(token: string): void;
	close(): Promise<void> | void;
	on(event: "ready", listener: () => void): unknown;
	on(event: "disconnected", listener: (err: Error) => void): unknown;
	on(event: "tokenRefused", listener: (err: Error) => void): unknown;
	/** An attempt failed before admission; the client tries again with backoff. */
	on(event: "attemptFailed", listener: (err: Error) => void): unknown;
}

/** What the link needs of the UDP bridge (`RelayUdpBridge`): one local socket per peer. */
export interface RelayBridge {
	/** Binds the peer's local socket; resolves to its port (WireGuard's endpoint 127.0.0.1:port). */
	addPeer(publicKey: Uint8Array): Promise<number>;
	removePeer(publicKey: Uint8Array): Promise<void>;
	close(): Promise<void>;
}

/** Makes the client and bridge for a relay; the daemon gives the real ones, tests fakes. */
export type RelayFactory = (
	url: string,
	token: string,
) => {
	client: RelayConnection;
	bridge: RelayBridge;
};

export interface RelayPeer {
	readonly key: string;
	readonly publicKey: Uint8Array;
}

export interface RelayLinkOptions<P extends RelayPeer> {
	/** undefined: this engine has no relay; a map naming one shows up in status as not connectable. */
	create: RelayFactory | undefined;
	logger: Logger;
	/** This agent's WireGuard public key: one half of every pair's relay ranking. */
	selfPublicKey: Uint8Array;
	/** The current peer object for a key, undefined when the peer is not in the map. */
	peer(key: string): P | undefined;
	/** Every peer in the map (they all get a bridge socket when a relay comes). */
	peers(): Iterable<P>;
	/** The peer's name, for logs. */
	nameOf(peer: P): string;
	/** A peer's bridge endpoint ("127.0.0.1:port") is bound, or gone (undefined: relay changed). */
	onEndpoint(peer: P, endpoint: string | undefined): void;
}

/** What the link knows of a relay's reachability: unknown until the first attempt ends. */
type RelayHealth = "unknown" | "up" | "down";

interface OpenRelay {
	url: string;
	client: RelayConnection;
	bridge: RelayBridge;
	health: RelayHealth;
	error: string;
}

/** Where a peer's bridge socket is: the relay's URL, and the endpoint once bound. */
interface Placement {
	url: string;
	endpoint: string | undefined;
}

/**
 * The agent's links to the relays the map names. Each peer gets a bridge
 * socket on the relay its pair meets on (relay-choice.ts: the same choice on
 * both sides, pairs spread over the relays), so the tunnel works through the
 * relay within a round trip while ICE looks for a direct path. A relay whose
 * connection ends or cannot be made is down: its peers move to the next relay
 * of their ranking, and back when it is admitted again. The agent holds a
 * connection to every relay some peer is on or waits for.
 */
export class RelayLink<P extends RelayPeer> {
	private urls: readonly string[] = [];
	private token = "";
	private readonly relays = new Map<string, OpenRelay>();
	private readonly placed = new Map<string, Placement>();
	private readonly selfKey: string;
	/** Why there is no relay at all (no factory, or it threw). */
	private error = "";

	constructor(private readonly options: RelayLinkOptions<P>) {
		this.selfKey = keyText(options.selfPublicKey);
	}

	/** The relay most peers are on (for status), or "". */
	get url(): string {
		return this.primary()?.url ?? "";
	}

	/** The peer's bridge endpoint, once bound. */
	endpointOf(key: string): string | undefined {
		return this.placed.get(key)?.endpoint;
	}

	/** The relay the peer's bridge socket is on, or undefined. */
	relayUrlOf(key: string): string | undefined {
		return this.placed.get(key)?.url;
	}

	/** Follows the map's relays: connects, re-places peers on a new list, refreshes the token, or leaves. */
	follow(config: RelayConfig | undefined): void {
		const urls = config?.urls ?? [];
		const token = config?.token ?? "";
		if (urls.length === 0 || !token) {
			this.urls = [];
			this.token = "";
			this.unplaceAll();
			this.closeUnneeded();
			return;
		}
		if (token !== this.token) {
			this.token = token;
			for (const relay of this.relays.values()) relay.client.setToken(token);
		}
		if (!sameList(urls, this.urls)) {
			this.urls = [...urls];
			this.replaceAll();
		} else {
			for (const peer of this.options.peers()) this.attach(peer);
		}
	}

	/** Gives the peer a bridge socket on its pair's relay (if there is one); onEndpoint reports it. */
	attach(peer: P): void {
		if (this.placed.has(peer.key)) return;
		const url = this.choose(peer);
		if (url !== undefined) this.place(peer, url);
	}

	/**
	 * The peer left the map: release its bridge socket, also one still being
	 * opened (the bridge's removePeer waits for a pending addPeer and closes
	 * it; place's callback then ignores the port for a peer no longer there).
	 */
	detach(peer: P): void {
		const placement = this.placed.get(peer.key);
		if (!placement) return;
		this.placed.delete(peer.key);
		void this.relays
			.get(placement.url)
			?.bridge.removePeer(peer.publicKey)
			.catch(() => undefined);
		this.closeUnneeded();
	}

	status(): { url: string; connected: boolean; error: string } {
		const relay = this.primary();
		if (!relay) return { url: "", connected: false, error: this.urls.length ? this.error : "" };
		const connected = relay.client.state === "ready";
		return { url: relay.url, connected, error: connected ? "" : relay.error || this.error };
	}

	/** Whether the agent is admitted on a relay it holds (netcheck); undefined when it holds none to it. */
	admission(url: string): { admitted: boolean; error: string } | undefined {
		const relay = this.relays.get(url);
		if (!relay) return undefined;
		const admitted = relay.client.state === "ready";
		return { admitted, error: admitted ? "" : relay.error || "connecting" };
	}

	async close(): Promise<void> {
		const relays = [...this.relays.values()];
		this.relays.clear();
		this.placed.clear();
		this.urls = [];
		for (const relay of relays) {
			await relay.bridge.close().catch(() => undefined);
			await Promise.resolve(relay.client.close()).catch(() => undefined);
		}
	}

	private ranking(peer: P): string[] {
		return rankRelaysForPair(this.urls, this.selfKey, keyText(peer.publicKey));
	}

	private choose(peer: P): string | undefined {
		const ranking = this.ranking(peer);
		const chosen = chooseRelay(ranking, (url) => this.relays.get(url)?.health === "down");
		// The relays ranked before the chosen one are down: hold them, to see them return.
		for (const url of relaysToHold(ranking, chosen)) this.open(url);
		return chosen !== undefined && this.relays.has(chosen) ? chosen : undefined;
	}

	private place(peer: P, url: string): void {
		const relay = this.relays.get(url);
		if (!relay) return;
		const placement: Placement = { url, endpoint: undefined };
		this.placed.set(peer.key, placement);
		relay.bridge.addPeer(peer.publicKey).then(
			(port) => {
				if (this.placed.get(peer.key) !== placement || this.options.peer(peer.key) !== peer) return;
				placement.endpoint = `127.0.0.1:${port}`;
				this.options.logger.info(
					{ peer: this.options.nameOf(peer), relay: url, bridge: placement.endpoint },
					"relay path ready",
				);
				this.options.onEndpoint(peer, placement.endpoint);
			},
			(err: unknown) =>
				this.options.logger.error(
					{ error: err instanceof Error ? err.message : String(err) },
					"relay bridge failed",
				),
		);
	}

	/** Takes the peer off its relay; its endpoint is gone until it is placed again. */
	private unplace(peer: P, placement: Placement): void {
		this.placed.delete(peer.key);
		void this.relays
			.get(placement.url)
			?.bridge.removePeer(peer.publicKey)
			.catch(() => undefined);
		if (placement.endpoint !== undefined) this.options.onEndpoint(peer, undefined);
	}

	private unplaceAll(): void {
		for (const [key, placement] of [...this.placed]) {
			const peer = this.options.peer(key);
			if (peer) this.unplace(peer, placement);
			else this.placed.delete(key);
		}
	}

	/** After a relay went down or came back, or the list changed: every peer on its pair's relay. */
	private replaceAll(): void {
		for (const peer of this.options.peers()) {
			const placement = this.placed.get(peer.key);
			const url = this.choose(peer);
			if (placement && placement.url === url) continue;
			if (placement) {
				this.options.logger.info(
					{ peer: this.options.nameOf(peer), from: placement.url, to: url ?? "" },
					"moving the relay path",
				);
				this.unplace(peer, placement);
			}
			if (url !== undefined) this.place(peer, url);
		}
		this.closeUnneeded();
	}

	/** Connects to a relay (once): its client and bridge, and its health from the client's events. */
	private open(url: string): void {
		if (this.relays.has(url) || !this.token) return;
		if (!this.options.create) {
			this.error = "this engine was given no relay client";
			return;
		}
		let made: ReturnType<RelayFactory>;
		try {
			made = this.options.create(url, this.token);
		} catch (err) {
			this.error = (err as Error).message;
			this.options.logger.error({ url, error: this.error }, "relay failed");
			return;
		}
		const relay: OpenRelay = { url, ...made, health: "unknown", error: "" };
		this.relays.set(url, relay);
		const setHealth = (health: RelayHealth, error: string) => {
			relay.error = error;
			if (this.relays.get(url) !== relay || relay.health === health) return;
			const before = relay.health;
			relay.health = health;
			if (health === "up") this.options.logger.info({ url }, "relay connected");
			else this.options.logger.warn({ url, error }, "relay down");
			// Unknown -> up changes no choice (unknown was already usable).
			if (!(before === "unknown" && health === "up")) this.replaceAll();
		};
		relay.client.on("ready", () => setHealth("up", ""));
		relay.client.on("disconnected", (err) => setHealth("down", err.message));
		relay.client.on("attemptFailed", (err) => setHealth("down", err.message));
		relay.client.on("tokenRefused", (err) => {
			// Refused at admission: this relay cannot carry us. On refresh the old token stays in force.
			if (relay.client.state !== "ready")
				setHealth("down", `relay refused our token: ${err.message}`);
		});
		relay.client.start();
	}

	/** Closes the relays no peer is on or waits for. */
	private closeUnneeded(): void {
		const needed = new Set<string>();
		for (const peer of this.options.peers()) {
			const ranking = this.ranking(peer);
			const chosen = chooseRelay(ranking, (url) => this.relays.get(url)?.health === "down");
			for (const url of relaysToHold(ranking, chosen)) needed.add(url);
		}
		for (const [url, relay] of [...this.relays]) {
			if (needed.has(url)) continue;
			this.relays.delete(url);
			void relay.bridge.close().finally(() => relay.client.close());
		}
	}

	/** The relay with the most peers on it (ties: the first opened). */
	private primary(): OpenRelay | undefined {
		const counts = new Map<string, number>();
		for (const p of this.placed.values()) counts.set(p.url, (counts.get(p.url) ?? 0) + 1);
		let best: OpenRelay | undefined;
		for (const relay of this.relays.values()) {
			if (!best || (counts.get(relay.url) ?? 0) > (counts.get(best.url) ?? 0)) best = relay;
		}
		return best;
	}
}

function keyText(publicKey: Uint8Array): string {
	return Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString(
		"base64",
	);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
	return a.length === b.length && a.every((x, i) => x === b[i]);
}
