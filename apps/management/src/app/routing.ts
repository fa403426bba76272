import {
	canonicalIpv4Cidr,
	checkMetric,
	checkNetworkId,
	checkOutsideOverlay,
	checkReceivers,
	checkRouteAgainstOthers,
	checkRoutingPeers,
	checkSkipAutoApply,
	groupsOfRoute,
	RouteRuleError,
} from "../core/route-rules.js";
import type { Route, RoutingConfig } from "../domain/types.js";
import type { StoreReader } from "../store/store.js";
import { AppError, notFound } from "./errors.js";
import { assertGroupsExist, assertPeersExist } from "./references.js";

// What routes and networks share in the use cases: reading an account's
// routing config in one snapshot, turning core's refusals into caller
// errors, and checking what a routing peer names.

/** The account's routes, networks, resources and routers, read through `tx` (one snapshot). */
export async function readRoutingConfig(
	tx: StoreReader,
	accountId: string,
): Promise<RoutingConfig> {
	return {
		routes: await tx.listRoutes(accountId),
		networks: await tx.listNetworks(accountId),
		networkResources: await tx.listNetworkResources(accountId),
		networkRouters: await tx.listNetworkRouters(accountId),
	};
}

/** Runs core's checks: a malformed input is a 400, a clash with the account's other data a 409. */
export function ruled<T>(check: () => T): T {
	try {
		return check();
	} catch (err) {
		if (err instanceof RouteRuleError) {
			throw new AppError(err.kind === "conflict" ? 409 : 400, err.message);
		}
		throw err;
	}
}

/** The routing peer (or its groups) must exist in the account; exactly one of them is given. */
export async function checkRoutingPeerRefs(
	tx: StoreReader,
	accountId: string,
	peerId: string | null,
	groupIds: readonly string[],
): Promise<void> {
	await assertPeersExist(tx, accountId, peerId === null ? [] : [peerId]);
	await assertGroupsExist(tx, accountId, groupIds);
}

/** A route as an admin writes it: the network as given (canonicalised here). */
export type RouteInput = Omit<Route, "id" | "accountId">;

/**
 * The route `input` makes, checked against the account (overlay range,
 * references, the other routes): throws the caller error of the first rule
 * it breaks.
 */
export async function checkedRoute(
	tx: StoreReader,
	accountId: string,
	id: string,
	input: RouteInput,
): Promise<Route> {
	const account = await tx.getAccount(accountId);
	if (!account) throw notFound("account");
	const route: Route = ruled(() => {
		checkNetworkId(input.networkId);
		checkMetric(input.metric);
		checkRoutingPeers(input.peerId, input.peerGroups);
		checkReceivers(input.groups);
		const network = canonicalIpv4Cidr(input.network);
		checkSkipAutoApply(network, input.skipAutoApply);
		checkOutsideOverlay(network, account.network);
		return { ...input, id, accountId, network };
	});
	await checkRoutingPeerRefs(tx, accountId, route.peerId, groupsOfRoute(route));
	const others = (await tx.listRoutes(accountId)).filter((r) => r.id !== id);
	ruled(() => checkRouteAgainstOthers(route, others));
	return route;
}
