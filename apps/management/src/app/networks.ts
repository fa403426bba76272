import { auditEvent, type Initiator } from "../core/audit.js";
import { newId } from "../core/random.js";
import {
	checkMetric,
	checkOutsideOverlay,
	checkRoutingPeers,
	resourceAddress,
} from "../core/route-rules.js";
import type { Network, NetworkResource, NetworkRouter } from "../domain/types.js";
import type { Store, StoreWriter } from "../store/store.js";
import { notFound, stored } from "./errors.js";
import type { NetworkChangeSink } from "./events.js";
import { assertGroupsExist } from "./references.js";
import { checkRoutingPeerRefs, ruled } from "./routing.js";

// NetBird's /api/networks with its resources and routers: each change is
// one write transaction with its audit event(s), then the sync hub hears
// that the account's access changed. A resource or router is addressed
// through its network: one of another network (or account) is not found.

export type NetworkInput = Pick<Network, "name" | "description">;
export type ResourceInput = Pick<
	NetworkResource,
	"name" | "description" | "address" | "enabled" | "groups"
>;
export type RouterInput = Pick<
	NetworkRouter,
	"peerId" | "peerGroups" | "metric" | "masquerade" | "enabled"
>;

/** Runs `fn` in one write transaction, then tells the sink; `undefined` from `fn` is a 404 of `what`. */
async function change<T>(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	what: string,
	fn: (tx: StoreWriter) => Promise<T | undefined>,
): Promise<T> {
	const result = await stored(store.write(fn));
	if (result === undefined) throw notFound(what);
	sink.accessChanged(accountId);
	return result;
}

export function createNetwork(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	input: NetworkInput,
	initiator: Initiator,
	now: Date,
): Promise<Network> {
	const network: Network = { id: newId(), accountId, ...input };
	return change(store, sink, accountId, "network", async (tx) => {
		await tx.insertNetwork(network);
		await tx.appendEvents([
			auditEvent(accountId, initiator, "network.create", network.id, now, { name: network.name }),
		]);
		return network;
	});
}

export function updateNetwork(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	networkId: string,
	input: NetworkInput,
	initiator: Initiator,
	now: Date,
): Promise<Network> {
	return change(store, sink, accountId, "network", async (tx) => {
		const before = await tx.getNetwork(accountId, networkId);
		if (!before) return undefined;
		const after: Network = { ...before, ...input };
		await tx.updateNetwork(after);
		await tx.appendEvents([
			auditEvent(accountId, initiator, "network.update", networkId, now, { name: after.name }),
		]);
		return after;
	});
}

/** Deletes the network with its resources and routers, one audit event for each. */
export async function deleteNetwork(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	networkId: string,
	initiator: Initiator,
	now: Date,
): Promise<void> {
	await change(store, sink, accountId, "network", async (tx) => {
		const network = await tx.getNetwork(accountId, networkId);
		if (!network) return undefined;
		const resources = (await tx.listNetworkResources(accountId)).filter(
			(r) => r.networkId === networkId,
		);
		const routers = (await tx.listNetworkRouters(accountId)).filter(
			(r) => r.networkId === networkId,
		);
		await tx.deleteNetwork(accountId, networkId);
		await tx.appendEvents([
			...resources.map((r) =>
				auditEvent(accountId, initiator, "network.resource.delete", r.id, now, {
					name: r.name,
					network: network.name,
				}),
			),
			...routers.map((r) =>
				auditEvent(accountId, initiator, "network.router.delete", r.id, now, {
					network: network.name,
				}),
			),
			auditEvent(accountId, initiator, "network.delete", networkId, now, { name: network.name }),
		]);
		return true;
	});
}

async function networkOf(tx: StoreWriter, accountId: string, networkId: string): Promise<Network> {
	const network = await tx.getNetwork(accountId, networkId);
	if (!network) throw notFound("network");
	return network;
}

async function checkedResource(
	tx: StoreWriter,
	base: Pick<NetworkResource, "id" | "accountId" | "networkId">,
	input: ResourceInput,
): Promise<NetworkResource> {
	const account = await tx.getAccount(base.accountId);
	if (!account) throw notFound("account");
	const resource: NetworkResource = ruled(() => {
		const { type, prefix } = resourceAddress(input.address);
		checkOutsideOverlay(prefix, account.network, "resource address");
		return { ...base, ...input, address: input.address.trim(), type, prefix };
	});
	await assertGroupsExist(tx, base.accountId, resource.groups);
	return resource;
}

export function createNetworkResource(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	networkId: string,
	input: ResourceInput,
	initiator: Initiator,
	now: Date,
): Promise<NetworkResource> {
	return change(store, sink, accountId, "network", async (tx) => {
		const network = await networkOf(tx, accountId, networkId);
		const resource = await checkedResource(tx, { id: newId(), accountId, networkId }, input);
		await tx.insertNetworkResource(resource);
		await tx.appendEvents([
			auditEvent(accountId, initiator, "network.resource.create", resource.id, now, {
				name: resource.name,
				address: resource.address,
				network: network.name,
			}),
		]);
		return resource;
	});
}

export function updateNetworkResource(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	networkId: string,
	resourceId: string,
	input: ResourceInput,
	initiator: Initiator,
	now: Date,
): Promise<NetworkResource> {
	return change(store, sink, accountId, "network resource", async (tx) => {
		const network = await networkOf(tx, accountId, networkId);
		const before = await tx.getNetworkResource(accountId, resourceId);
		if (!before || before.networkId !== networkId) return undefined;
		const after = await checkedResource(tx, before, input);
		await tx.updateNetworkResource(after);
		await tx.appendEvents([
			auditEvent(accountId, initiator, "network.resource.update", resourceId, now, {
				name: after.name,
				address: after.address,
				network: network.name,
			}),
		]);
		return after;
	});
}

export async function deleteNetworkResource(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	networkId: string,
	resourceId: string,
	initiator: Initiator,
	now: Date,
): Promise<void> {
	await change(store, sink, accountId, "network resource", async (tx) => {
		const network = await networkOf(tx, accountId, networkId);
		const resource = await tx.getNetworkResource(accountId, resourceId);
		if (!resource || resource.networkId !== networkId) return undefined;
		await tx.deleteNetworkResource(accountId, resourceId);
		await tx.appendEvents([
			auditEvent(accountId, initiator, "network.resource.delete", resourceId, now, {
				name: resource.name,
				network: network.name,
			}),
		]);
		return true;
	});
}

async function checkedRouter(
	tx: StoreWriter,
	base: Pick<NetworkRouter, "id" | "accountId" | "networkId">,
	input: RouterInput,
): Promise<NetworkRouter> {
	ruled(() => {
		checkRoutingPeers(input.peerId, input.peerGroups);
		checkMetric(input.metric);
	});
	await checkRoutingPeerRefs(tx, base.accountId, input.peerId, input.peerGroups);
	return { ...base, ...input };
}

export function createNetworkRouter(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	networkId: string,
	input: RouterInput,
	initiator: Initiator,
	now: Date,
): Promise<NetworkRouter> {
	return change(store, sink, accountId, "network", async (tx) => {
		const network = await networkOf(tx, accountId, networkId);
		const router = await checkedRouter(tx, { id: newId(), accountId, networkId }, input);
		await tx.insertNetworkRouter(router);
		await tx.appendEvents([
			auditEvent(accountId, initiator, "network.router.create", router.id, now, {
				network: network.name,
			}),
		]);
		return router;
	});
}

export function updateNetworkRouter(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	networkId: string,
	routerId: string,
	input: RouterInput,
	initiator: Initiator,
	now: Date,
): Promise<NetworkRouter> {
	return change(store, sink, accountId, "network router", async (tx) => {
		const network = await networkOf(tx, accountId, networkId);
		const before = await tx.getNetworkRouter(accountId, routerId);
		if (!before || before.networkId !== networkId) return undefined;
		const after = await checkedRouter(tx, before, input);
		await tx.updateNetworkRouter(after);
		await tx.appendEvents([
			auditEvent(accountId, initiator, "network.router.update", routerId, now, {
				network: network.name,
			}),
		]);
		return after;
	});
}

export async function deleteNetworkRouter(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	networkId: string,
	routerId: string,
	initiator: Initiator,
	now: Date,
): Promise<void> {
	await change(store, sink, accountId, "network router", async (tx) => {
		const network = await networkOf(tx, accountId, networkId);
		const router = await tx.getNetworkRouter(accountId, routerId);
		if (!router || router.networkId !== networkId) return undefined;
		await tx.deleteNetworkRouter(accountId, routerId);
		await tx.appendEvents([
			auditEvent(accountId, initiator, "network.router.delete", routerId, now, {
				network: network.name,
			}),
		]);
		return true;
	});
}
