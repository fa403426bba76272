import type { RemotePeer, SelfConfig } from "@starling/proto";
import type { Account, Peer } from "../domain/types.js";

// How a peer appears on the wire: to itself (SelfConfig) and to the peers
// that may see it (RemotePeer). Pure.

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

export function sameSelf(a: SelfConfig, b: SelfConfig): boolean {
	return (
		a.address === b.address &&
		a.dnsLabel === b.dnsLabel &&
		a.fqdn === b.fqdn &&
		a.name === b.name &&
		a.peerId === b.peerId
	);
}
