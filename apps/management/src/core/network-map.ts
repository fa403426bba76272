import type { NetworkMap, RelayConfig, SignalConfig, StunServer } from "@starling/proto";
import type { Peer } from "../domain/types.js";
import { selfConfigOf } from "./peer-view.js";
import type { AccessIndex } from "./policy.js";

export { fqdnOf, prefixLengthOf, remotePeerOf, selfConfigOf } from "./peer-view.js";

/** Control-plane endpoints every agent of this installation is told about. */
export interface ServiceEndpoints {
	signal: SignalConfig;
	stunServers: StunServer[];
	/** Issued per peer (the token names the peer); undefined until a relay is configured. */
	relayFor?: (peer: Peer) => RelayConfig | undefined;
}

/**
 * The full network map of the peer at `viewer` in `index`: the peers its
 * account's policies and routes let it see, its inbound firewall rules, the
 * routes it receives and the routes it serves. Pure: same
 * index, same map. Throws when `viewer` is not a peer of the index.
 */
export function computeNetworkMap(
	index: AccessIndex,
	viewer: number,
	endpoints: ServiceEndpoints,
	serial: number,
): NetworkMap {
	const self = index.peerAt(viewer);
	return {
		serial,
		self: selfConfigOf(self, index.account),
		peers: index.visiblePeers(viewer),
		signal: endpoints.signal,
		stunServers: endpoints.stunServers,
		relay: endpoints.relayFor?.(self),
		firewallRules: index.firewallRules(viewer),
		// Management computes rules from policies: what no rule admits is dropped.
		firewallEnforced: true,
		dnsDomain: index.account.dnsDomain,
		network: index.account.network,
		routes: index.routing.clientRoutes(viewer),
		servedRoutes: index.routing.servedRoutes(viewer),
	};
}
