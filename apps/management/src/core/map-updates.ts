import type { NetworkMapDelta, SelfConfig } from "@starling/proto";
import type { Account, Peer } from "../domain/types.js";
import { isVisibleTo, remotePeerOf, selfConfigOf } from "./network-map.js";

/**
 * Peers changed since the last push, keyed by WireGuard public key; null
 * means the peer was deleted.
 */
export type PeerChanges = ReadonlyMap<string, Peer | null>;

/**
 * The delta one viewer needs for a batch of changes, or undefined when the
 * batch does not change its map. Cost is O(changes), not O(peers): one peer
 * joining sends every other peer one small upsert instead of a full map.
 */
export function deltaForViewer(
	viewer: Peer,
	changes: PeerChanges,
	account: Account,
	lastSelf: SelfConfig | undefined,
	baseSerial: number,
	serial: number,
): NetworkMapDelta | undefined {
	const delta: NetworkMapDelta = {
		baseSerial,
		serial,
		upsertedPeers: [],
		removedPeerKeys: [],
		self: undefined,
		signal: undefined,
		stunServers: undefined,
		relay: undefined,
		firewallRules: undefined,
	};
	for (const [key, peer] of changes) {
		if (key === viewer.wgPublicKey) {
			const self = selfConfigOf(viewer, account);
			if (!lastSelf || !sameSelf(lastSelf, self)) delta.self = self;
		} else if (peer && isVisibleTo(viewer, peer)) {
			delta.upsertedPeers.push(remotePeerOf(peer, account));
		} else {
			delta.removedPeerKeys.push(key);
		}
	}
	const empty =
		delta.upsertedPeers.length === 0 && delta.removedPeerKeys.length === 0 && !delta.self;
	return empty ? undefined : delta;
}

function sameSelf(a: SelfConfig, b: SelfConfig): boolean {
	return (
		a.address === b.address &&
		a.dnsLabel === b.dnsLabel &&
		a.fqdn === b.fqdn &&
		a.name === b.name &&
		a.peerId === b.peerId
	);
}
