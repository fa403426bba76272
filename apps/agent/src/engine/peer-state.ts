import type { RemotePeer } from "@starling/proto";
import type { PeerConnection, PeerEndpoint } from "../conn/peer-connection.js";
import type { DirectPathMemory } from "./path-health.js";
import type { PathProbe } from "./path-probe.js";

/** The direct path ICE found for a peer, once the state machine put it up. */
export interface DirectPath {
	local: PeerEndpoint;
	remote: PeerEndpoint;
	rttMs: number | undefined;
	/** The ICE socket's own port, where WireGuard's traffic to the peer leaves from. */
	socketPort: number;
	/**
	 * WireGuard has been given `remote` as the endpoint. From then on it
	 * is left alone: WireGuard roams to wherever the peer's authenticated
	 * packets come from, which beats ICE's report when the two differ.
	 */
	endpointApplied?: boolean;
	/** The last direct address WireGuard sent to (from its dump), once seen. */
	lastDirectEndpoint?: string;
}

/** Everything the engine's parts keep about one remote peer of the map. */
export interface PeerState {
	/** The peer's WireGuard public key, base64 (the map's key for it). */
	readonly key: string;
	readonly publicKey: Uint8Array;
	remote: RemotePeer;
	/** Its connection state machine (conn/). */
	readonly conn: PeerConnection;
	readonly timers: PeerTimers;
	path: DirectPath | undefined;
	/** Whether WireGuard keeps the direct path alive (persistent keepalive). */
	keepalive: boolean;
	/**
	 * The peer's WireGuard peer for us is new (conn/ said so), so the session
	 * ours holds is stale: the next WireGuard pass replaces our peer for it.
	 */
	wireguardSessionStale: boolean;
	/**
	 * A handshake retry is due (armHandshakeRetries): the next pass replaces the
	 * peer if no handshake has completed with it yet.
	 */
	handshakeRetryDue: boolean;
	/** What the health check remembers of the direct path (path-health.ts). */
	health: DirectPathMemory;
	/** Liveness probing of the direct path, from its ICE port once ICE let go of it. */
	probe: { watch: PathProbe; socket: ProbeSocketLike | undefined } | undefined;
}

/** What the path monitor needs of a probe socket (probe-socket.ts). */
export interface ProbeSocketLike {
	send(transactionId: Uint8Array, address: string, port: number): void;
	close(): void;
}

/** A peer's named one-shot timers; setting one that is armed replaces it. */
export class PeerTimers {
	private readonly timers = new Map<string, NodeJS.Timeout>();

	/** `fire` runs only while `alive()` (the peer is still the one in the map). */
	constructor(private readonly alive: () => boolean) {}

	set(name: string, delayMs: number, fire: () => void): void {
		this.cancel(name);
		this.timers.set(
			name,
			setTimeout(() => {
				this.timers.delete(name);
				if (this.alive()) fire();
			}, delayMs),
		);
	}

	cancel(name: string): void {
		const t = this.timers.get(name);
		if (t) clearTimeout(t);
		this.timers.delete(name);
	}

	cancelAll(): void {
		for (const t of this.timers.values()) clearTimeout(t);
		this.timers.clear();
	}
}
