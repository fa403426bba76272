import type { Logger } from "@starling/log";
import type { NetworkMap, ServedRouteStatus } from "@starling/proto";
import type { MapConsumer } from "../engine/map-consumer.js";
import type { Forwarding } from "./forwarding.js";
import {
	type CanonicalServedRoute,
	checkServedRoute,
	type RejectedServedRoute,
	type RoutingTable,
} from "./forwarding-table.js";

/** The served routes of a map, checked: what goes in the table, what was refused. */
export interface ServedRoutesPlan {
	routes: CanonicalServedRoute[];
	rejected: RejectedServedRoute[];
	/** Rules or sources left out of a route, with the route's id. */
	dropped: { routeId: string; reason: string }[];
}

/** Pure: the map's served_routes as the table and the sysctl need them. */
export function planServedRoutes(map: Pick<NetworkMap, "servedRoutes">): ServedRoutesPlan {
	const plan: ServedRoutesPlan = { routes: [], rejected: [], dropped: [] };
	for (const served of map.servedRoutes ?? []) {
		const checked = checkServedRoute(served);
		if (checked.route) plan.routes.push(checked.route);
		if (checked.rejected) plan.rejected.push(checked.rejected);
		for (const reason of checked.dropped)
			plan.dropped.push({ routeId: checked.route?.routeId ?? "", reason });
	}
	return plan;
}

/** Pure: the status lines of a plan, with the last apply's error on every route it kept out. */
export function servedRouteStatuses(
	plan: ServedRoutesPlan,
	applyError: string,
): ServedRouteStatus[] {
	return [
		...plan.routes.map((r) => ({
			routeId: r.routeId,
			network: r.network,
			masquerade: r.masquerade,
			filtered: r.filtered,
			ruleCount: r.rules.length,
			error: applyError,
		})),
		...plan.rejected.map((r) => ({
			routeId: r.routeId,
			network: "",
			masquerade: false,
			filtered: false,
			ruleCount: 0,
			error: r.reason,
		})),
	];
}

/**
 * This peer as a routing peer: follows the map's served routes. The first
 * route installs the table and then turns forwarding on; the last one gone
 * turns forwarding back to the machine's value and then removes the table
 * (so forwarding is never on without the table's filter). `giveBack` is the
 * same as "no routes" and is what down, exit and crash recovery run.
 */
export class ForwardingConsumer implements MapConsumer {
	readonly name = "served-routes";
	private plan: ServedRoutesPlan = { routes: [], rejected: [], dropped: [] };
	private error = "";
	private applying: Promise<void> = Promise.resolve();
	private lastKey = "";

	constructor(
		private readonly table: Pick<RoutingTable, "apply" | "remove">,
		private readonly forwarding: Pick<Forwarding, "set">,
		private readonly logger: Logger,
	) {}

	applyMap(map: NetworkMap): void {
		const plan = planServedRoutes(map);
		const key = JSON.stringify(plan.routes);
		const changed = key !== this.lastKey;
		this.plan = plan;
		if (!changed && this.error === "") return;
		for (const r of plan.rejected)
			this.logger.warn(
				{ routeId: r.routeId, reason: r.reason },
				"ignoring an invalid served route",
			);
		for (const d of plan.dropped)
			this.logger.warn(
				{ routeId: d.routeId, reason: d.reason },
				"ignoring an invalid rule of a served route",
			);
		this.lastKey = key;
		const routes = plan.routes;
		this.applying = this.applying
			.then(() => this.install(routes))
			.then(
				() => {
					this.error = "";
					this.logger.info(
						{ routes: routes.map((r) => `${r.routeId} ${r.network}`) },
						routes.length > 0 ? "serving routes" : "serving no routes",
					);
				},
				(err: unknown) => {
					this.error = err instanceof Error ? err.message.split("\n")[0]! : String(err);
					this.logger.error({ error: this.error }, "updating the served routes failed");
				},
			);
	}

	private async install(routes: readonly CanonicalServedRoute[]): Promise<void> {
		if (routes.length > 0) {
			await this.table.apply(routes);
			await this.forwarding.set(true);
		} else {
			await this.giveBackNow();
		}
	}

	private async giveBackNow(): Promise<void> {
		// Both are tried even when one fails: neither may stay behind.
		const results = await Promise.allSettled([this.forwarding.set(false)]);
		const table = await Promise.allSettled([this.table.remove()]);
		const failed = [...results, ...table].find((r) => r.status === "rejected");
		if (failed) throw (failed as PromiseRejectedResult).reason;
	}

	/** Forwarding back to the machine's value, the table removed: down and exit. */
	giveBack(): Promise<void> {
		this.lastKey = "";
		this.plan = { routes: [], rejected: [], dropped: [] };
		const done = this.applying.then(() => this.giveBackNow());
		this.applying = done.catch(() => undefined);
		return done;
	}

	settled(): Promise<void> {
		return this.applying;
	}

	async stop(): Promise<void> {
		await this.applying;
	}

	/** `starling status`'s served routes. */
	status(): ServedRouteStatus[] {
		return servedRouteStatuses(this.plan, this.error);
	}
}
