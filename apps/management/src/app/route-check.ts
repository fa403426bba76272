import { AccessIndex } from "../core/policy.js";
import { checkRoute, type RouteCheckResult } from "../core/route-check.js";
import type { Account } from "../domain/types.js";
import type { Store } from "../store/store.js";
import { notFound } from "./errors.js";
import { readRoutingConfig } from "./routing.js";

/**
 * Which route and router would carry `address` for the peer, and whether a
 * policy lets it through, from one snapshot of the account. Changes nothing.
 * 404 when the peer is not in the account. `address` is a valid IPv4
 * address (the REST schema checks it).
 */
export async function checkRouteForPeer(
	store: Store,
	account: Account,
	input: { peerId: string; address: string },
): Promise<RouteCheckResult> {
	const { peers, groups, policies, routing } = await store.read(async (tx) => ({
		peers: await tx.listPeers(account.id),
		groups: await tx.listGroups(account.id),
		policies: await tx.listPolicies(account.id),
		routing: await readRoutingConfig(tx, account.id),
	}));
	const index = AccessIndex.build(account, peers, { groups, policies, routing });
	const viewer = index.indexOfId(input.peerId);
	if (viewer === undefined) throw notFound("peer");
	return checkRoute(index, viewer, input.address);
}
