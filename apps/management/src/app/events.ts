import type { Peer } from "../domain/types.js";

/**
 * What the network-map pusher needs to hear about. Every code path that
 * changes a peer calls one of these after the store write has committed.
 */
export interface NetworkChangeSink {
	peerChanged(peer: Peer): void;
	peerRemoved(peer: Peer): void;
}
