import type { Logger } from "@starling/log";
import type { RelayConfig } from "@starling/proto";

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
	/** The current peer object for a key, undefined when the peer is not in the map. */
	peer(key: string): P | undefined;
	/** Every peer in the map (they all get a bridge socket when a relay comes). */
	peers(): Iterable<P>;
	/** The peer's name, for logs. */
	nameOf(peer: P): string;
	/** A peer's bridge endpoint ("127.0.0.1:port") is bound, or gone (undefined: relay changed). */
	onEndpoint(peer: P, endpoint: string | undefined): void;
}

/**
 * The agent's link to the relay management names: one client and UDP bridge
 * at a time, following token refreshes. Every peer gets a bridge socket at
 * once, so the tunnel works through the relay within a round trip while ICE
 * looks for a direct path.
 */
export class RelayLink<P extends RelayPeer> {
	private relay:
		| { url: string; token: string; client: RelayConnection; bridge: RelayBridge }
		| undefined;
	private error = "";
	private readonly endpoints = new Map<string, string>();

	constructor(private readonly options: RelayLinkOptions<P>) {}

	get url(): string {
		return this.relay?.url ?? "";
	}

	/** The peer's bridge endpoint, once bound. */
	endpointOf(key: string): string | undefined {
		return this.endpoints.get(key);
	}

	/** Follows the map's relay: connects, switches on a new URL, refreshes the token, or leaves. */
	follow(config: RelayConfig | undefined): void {
		const url = config?.urls[0] ?? "";
		const token = config?.token ?? "";
		if (this.relay && (this.relay.url !== url || !token)) {
			const old = this.relay;
			this.relay = undefined;
			const bound = [...this.endpoints.keys()];
			this.endpoints.clear();
			for (const key of bound) {
				const peer = this.options.peer(key);
				if (peer) this.options.onEndpoint(peer, undefined);
			}
			void old.bridge.close().finally(() => old.client.close());
		}
		if (!url || !token) return;
		if (this.relay) {
			if (this.relay.token !== token) {
				this.relay.token = token;
				this.relay.client.setToken(token);
			}
			return;
		}
		if (!this.options.create) {
			this.error = "this engine was given no relay client";
			return;
		}
		let made: ReturnType<RelayFactory>;
		try {
			made = this.options.create(url, token);
		} catch (err) {
			this.error = (err as Error).message;
			this.options.logger.error({ error: this.error }, "relay failed");
			return;
		}
		const { client, bridge } = made;
		this.relay = { url, token, client, bridge };
		client.on("ready", () => {
			this.error = "";
			this.options.logger.info({ url }, "relay connected");
		});
		client.on("disconnected", (err) => {
			this.error = err.message;
		});
		client.on("tokenRefused", (err) => {
			this.error = `relay refused our token: ${err.message}`;
		});
		client.start();
		for (const peer of this.options.peers()) this.attach(peer);
	}

	/** Gives the peer a bridge socket (if there is a relay); onEndpoint reports it. */
	attach(peer: P): void {
		const relay = this.relay;
		if (!relay || this.endpoints.has(peer.key)) return;
		relay.bridge.addPeer(peer.publicKey).then(
			(port) => {
				if (this.relay !== relay || this.options.peer(peer.key) !== peer) return;
				const endpoint = `127.0.0.1:${port}`;
				this.endpoints.set(peer.key, endpoint);
				this.options.logger.info(
					{ peer: this.options.nameOf(peer), bridge: endpoint },
					"relay path ready",
				);
				this.options.onEndpoint(peer, endpoint);
			},
			(err: unknown) =>
				this.options.logger.error(
					{ error: err instanceof Error ? err.message : String(err) },
					"relay bridge failed",
				),
		);
	}

	/**
	 * The peer left the map: release its bridge socket, also one still being
	 * opened (the bridge's removePeer waits for a pending addPeer and closes
	 * it; attach's callback then ignores the port for a peer no longer there).
	 */
	detach(peer: P): void {
		this.endpoints.delete(peer.key);
		void this.relay?.bridge.removePeer(peer.publicKey).catch(() => undefined);
	}

	status(): { url: string; connected: boolean; error: string } {
		const connected = this.relay?.client.state === "ready";
		return { url: this.relay?.url ?? "", connected, error: connected ? "" : this.error };
	}

	async close(): Promise<void> {
		const relay = this.relay;
		this.relay = undefined;
		this.endpoints.clear();
		if (relay) {
			await relay.bridge.close().catch(() => undefined);
			await Promise.resolve(relay.client.close()).catch(() => undefined);
		}
	}
}
