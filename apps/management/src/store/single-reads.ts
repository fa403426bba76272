import type { Store, StoreReader, StoreWriter } from "./store.js";

/**
 * The `StoreReader` methods of a `Store`, each one read on its own snapshot.
 * A backend extends this and implements `read`, `write` and `close` only.
 */
export abstract class SingleReads implements Store {
	abstract read<T>(fn: (tx: StoreReader) => Promise<T>): Promise<T>;
	abstract write<T>(fn: (tx: StoreWriter) => Promise<T>): Promise<T>;
	abstract close(): Promise<void>;

	getServerKey() {
		return this.read((tx) => tx.getServerKey());
	}
	getAccount(accountId: string) {
		return this.read((tx) => tx.getAccount(accountId));
	}
	getAccountRevision(accountId: string) {
		return this.read((tx) => tx.getAccountRevision(accountId));
	}
	listAccountNetworks() {
		return this.read((tx) => tx.listAccountNetworks());
	}
	countUsers() {
		return this.read((tx) => tx.countUsers());
	}
	getUser(userId: string) {
		return this.read((tx) => tx.getUser(userId));
	}
	getFirstOwner() {
		return this.read((tx) => tx.getFirstOwner());
	}
	listUsers(accountId: string) {
		return this.read((tx) => tx.listUsers(accountId));
	}
	getTokenByHash(hashedToken: string) {
		return this.read((tx) => tx.getTokenByHash(hashedToken));
	}
	getToken(userId: string, tokenId: string) {
		return this.read((tx) => tx.getToken(userId, tokenId));
	}
	listTokens(userId: string) {
		return this.read((tx) => tx.listTokens(userId));
	}
	getSetupKey(accountId: string, keyId: string) {
		return this.read((tx) => tx.getSetupKey(accountId, keyId));
	}
	getSetupKeyByHash(hashedKey: string) {
		return this.read((tx) => tx.getSetupKeyByHash(hashedKey));
	}
	listSetupKeys(accountId: string) {
		return this.read((tx) => tx.listSetupKeys(accountId));
	}
	listGroups(accountId: string) {
		return this.read((tx) => tx.listGroups(accountId));
	}
	getGroup(accountId: string, groupId: string) {
		return this.read((tx) => tx.getGroup(accountId, groupId));
	}
	listPolicies(accountId: string) {
		return this.read((tx) => tx.listPolicies(accountId));
	}
	getPolicy(accountId: string, policyId: string) {
		return this.read((tx) => tx.getPolicy(accountId, policyId));
	}
	listEvents(accountId: string, limit: number) {
		return this.read((tx) => tx.listEvents(accountId, limit));
	}
	getPeerByPublicKey(wgPublicKey: string) {
		return this.read((tx) => tx.getPeerByPublicKey(wgPublicKey));
	}
	getPeer(accountId: string, peerId: string) {
		return this.read((tx) => tx.getPeer(accountId, peerId));
	}
	listPeers(accountId: string) {
		return this.read((tx) => tx.listPeers(accountId));
	}
	listGroupSummaries(accountId: string) {
		return this.read((tx) => tx.listGroupSummaries(accountId));
	}
	listPeerAddresses(accountId: string) {
		return this.read((tx) => tx.listPeerAddresses(accountId));
	}
	listPeerGroupIds(accountId: string) {
		return this.read((tx) => tx.listPeerGroupIds(accountId));
	}
	listInstances() {
		return this.read((tx) => tx.listInstances());
	}
	listSyncSessionsOfInstance(instanceId: string) {
		return this.read((tx) => tx.listSyncSessionsOfInstance(instanceId));
	}
	countSyncSessionsOfPeer(peerId: string) {
		return this.read((tx) => tx.countSyncSessionsOfPeer(peerId));
	}
	listRoutes(accountId: string) {
		return this.read((tx) => tx.listRoutes(accountId));
	}
	getRoute(accountId: string, routeId: string) {
		return this.read((tx) => tx.getRoute(accountId, routeId));
	}
	listNetworks(accountId: string) {
		return this.read((tx) => tx.listNetworks(accountId));
	}
	getNetwork(accountId: string, networkId: string) {
		return this.read((tx) => tx.getNetwork(accountId, networkId));
	}
	listNetworkResources(accountId: string) {
		return this.read((tx) => tx.listNetworkResources(accountId));
	}
	getNetworkResource(accountId: string, resourceId: string) {
		return this.read((tx) => tx.getNetworkResource(accountId, resourceId));
	}
	listNetworkRouters(accountId: string) {
		return this.read((tx) => tx.listNetworkRouters(accountId));
	}
	getNetworkRouter(accountId: string, routerId: string) {
		return this.read((tx) => tx.getNetworkRouter(accountId, routerId));
	}
}
