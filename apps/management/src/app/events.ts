import type { Peer } from "../domain/types.js";

/**
 * What the network-map pusher needs to hear about. Every code path that
 * changes peers, groups or policies calls one of these after the store
 * write has committed.
 */
export interface NetworkChangeSink {
	/** A peer was registered, or one of its attributes changed. */
	peerChanged(peer: Peer): void;
	peerRemoved(peer: Peer): void;
	/**
	 * Groups, group membership, policies or account settings of the account
	 * changed: the maps of its peers are recomputed from the store.
	 */
	accessChanged(accountId: string): void;
}
