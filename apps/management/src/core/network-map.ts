import { sortPeers } from "@starling/netmap";
import type {
	NetworkMap,
	RelayConfig,
	RemotePeer,
	SelfConfig,
	SignalConfig,
	StunServer,
} from "@starling/proto";
import type { Account, Peer } from "../domain/types.js";

/** Control-plane endpoints every agent of this installation is told about. */
export interface ServiceEndpoints {
	signal: SignalConfig;
	stunServers: StunServer[];
	/** Issued per peer (the token names the peer); undefined until a relay is configured. */
	relayFor?: (peer: Peer) => RelayConfig | undefined;
}

export function fqdnOf(peer: Peer, account: Account): string {
	return `${peer.dnsLabel}.${account.dnsDomain}`;
}

export function prefixLengthOf(network: string): number {
	return Number(network.split("/")[1]);
}

export function selfConfigOf(peer: Peer, account: Account): SelfConfig {
	return {
		address: `${peer.ip}/${prefixLengthOf(account.network)}`,
		dnsLabel: peer.dnsLabel,
		fqdn: fqdnOf(peer, account),
		peerId: peer.id,
		name: peer.name,
	};
}

/** How `peer` appears in other peers' maps. */
export function remotePeerOf(peer: Peer, account: Account): RemotePeer {
	return {
		wgPublicKey: peer.wgPublicKey,
		allowedIps: [`${peer.ip}/32`],
		dnsLabel: peer.dnsLabel,
		fqdn: fqdnOf(peer, account),
		name: peer.name,
		connected: peer.connected,
		lastSeenUnixMs: peer.lastSeen.getTime(),
		peerId: peer.id,
	};
}

/**
 * Which peers `viewer` may see. Until access policies exist every peer of an
 * account sees every other; this is the one place that decision is made.
 */
export function isVisibleTo(viewer: Peer, target: Peer): boolean {
	return viewer.accountId === target.accountId && viewer.id !== target.id;
}

/** The full network map for one peer. Pure: same inputs, same map. */
export function computeNetworkMap(
	self: Peer,
	accountPeers: Iterable<Peer>,
	account: Account,
	endpoints: ServiceEndpoints,
	serial: number,
): NetworkMap {
	const peers: RemotePeer[] = [];
	for (const p of accountPeers) if (isVisibleTo(self, p)) peers.push(remotePeerOf(p, account));
	return {
		serial,
		self: selfConfigOf(self, account),
		peers: sortPeers(peers),
		signal: endpoints.signal,
		stunServers: endpoints.stunServers,
		relay: endpoints.relayFor?.(self),
		firewallRules: [],
		dnsDomain: account.dnsDomain,
		network: account.network,
	};
}
