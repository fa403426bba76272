import { auditEvent, type Initiator } from "../core/audit.js";
import { newId } from "../core/random.js";
import type { Route } from "../domain/types.js";
import type { Store } from "../store/store.js";
import { deleteAudited } from "./audit.js";
import { notFound, stored } from "./errors.js";
import type { NetworkChangeSink } from "./events.js";
import { checkedRoute, type RouteInput } from "./routing.js";

// NetBird's /api/routes: each change is one write transaction with its
// audit event, then the sync hub hears that the account's access changed
// (it reloads the routing config and pushes the maps that changed).

const meta = (r: Route) => ({ name: r.networkId, network: r.network, enabled: String(r.enabled) });

export async function createRoute(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	input: RouteInput,
	initiator: Initiator,
	now: Date,
): Promise<Route> {
	const route = await stored(
		store.write(async (tx) => {
			const checked = await checkedRoute(tx, accountId, newId(), input);
			await tx.insertRoute(checked);
			await tx.appendEvents([
				auditEvent(accountId, initiator, "route.add", checked.id, now, meta(checked)),
			]);
			return checked;
		}),
	);
	sink.accessChanged(accountId);
	return route;
}

export async function updateRoute(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	routeId: string,
	input: RouteInput,
	initiator: Initiator,
	now: Date,
): Promise<Route> {
	const updated = await stored(
		store.write(async (tx) => {
			if (!(await tx.getRoute(accountId, routeId))) return undefined;
			const checked = await checkedRoute(tx, accountId, routeId, input);
			await tx.updateRoute(checked);
			await tx.appendEvents([
				auditEvent(accountId, initiator, "route.update", routeId, now, meta(checked)),
			]);
			return checked;
		}),
	);
	if (!updated) throw notFound("route");
	sink.accessChanged(accountId);
	return updated;
}

export async function deleteRoute(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	routeId: string,
	initiator: Initiator,
	now: Date,
): Promise<void> {
	const deleted = await deleteAudited(
		store,
		(tx) => tx.getRoute(accountId, routeId),
		(tx) => tx.deleteRoute(accountId, routeId),
		(r) => auditEvent(accountId, initiator, "route.delete", routeId, now, meta(r)),
	);
	if (!deleted) throw notFound("route");
	sink.accessChanged(accountId);
}
