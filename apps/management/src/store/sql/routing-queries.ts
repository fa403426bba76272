import { sql } from "kysely";
import type { Network, NetworkResource, NetworkRouter, Route } from "../../domain/types.js";
import type { SqlDialect } from "./dialect.js";
import type { QueryRunner } from "./queries.js";
import { toNetwork, toNetworkResource, toNetworkRouter, toRoute } from "./rows.js";

// The rows of routes and networks (migration 6) for both backends: the
// SqlReader/SqlWriter of queries.ts delegate here, so that file keeps the
// older tables and this one the routing ones. Lists are in creation order
// (SQLite's rowid, PostgreSQL's `seq`); group lists are JSON text.

type RoutingTable = "routes" | "networks" | "network_resources" | "network_routers";

export class RoutingQueries {
	private readonly db: SqlDialect["db"];

	constructor(
		private readonly dialect: SqlDialect,
		private readonly runner: QueryRunner,
	) {
		this.db = dialect.db;
	}

	private async list(table: RoutingTable, accountId: string) {
		return this.runner.rows(
			this.db
				.selectFrom(table)
				.selectAll()
				.where("account_id", "=", accountId)
				.orderBy(sql.ref(this.dialect.insertionOrder))
				.compile(),
		);
	}

	private async get(table: RoutingTable, accountId: string, id: string) {
		return (
			await this.runner.rows(
				this.db
					.selectFrom(table)
					.selectAll()
					.where("account_id", "=", accountId)
					.where("id", "=", id)
					.compile(),
			)
		)[0];
	}

	private async remove(table: RoutingTable, accountId: string, id: string): Promise<boolean> {
		return (
			(await this.runner.run(
				this.db
					.deleteFrom(table)
					.where("account_id", "=", accountId)
					.where("id", "=", id)
					.compile(),
			)) > 0
		);
	}

	async listRoutes(accountId: string): Promise<Route[]> {
		return (await this.list("routes", accountId)).map(toRoute);
	}
	async getRoute(accountId: string, routeId: string): Promise<Route | undefined> {
		const row = await this.get("routes", accountId, routeId);
		return row && toRoute(row);
	}
	async listNetworks(accountId: string): Promise<Network[]> {
		return (await this.list("networks", accountId)).map(toNetwork);
	}
	async getNetwork(accountId: string, networkId: string): Promise<Network | undefined> {
		const row = await this.get("networks", accountId, networkId);
		return row && toNetwork(row);
	}
	async listNetworkResources(accountId: string): Promise<NetworkResource[]> {
		return (await this.list("network_resources", accountId)).map(toNetworkResource);
	}
	async getNetworkResource(accountId: string, id: string): Promise<NetworkResource | undefined> {
		const row = await this.get("network_resources", accountId, id);
		return row && toNetworkResource(row);
	}
	async listNetworkRouters(accountId: string): Promise<NetworkRouter[]> {
		return (await this.list("network_routers", accountId)).map(toNetworkRouter);
	}
	async getNetworkRouter(accountId: string, id: string): Promise<NetworkRouter | undefined> {
		const row = await this.get("network_routers", accountId, id);
		return row && toNetworkRouter(row);
	}

	private routeColumns(r: Route) {
		const flag = this.dialect.flag;
		return {
			network_id: r.networkId,
			description: r.description,
			enabled: flag(r.enabled),
			peer_id: r.peerId,
			peer_groups: JSON.stringify(r.peerGroups),
			network: r.network,
			metric: r.metric,
			masquerade: flag(r.masquerade),
			groups: JSON.stringify(r.groups),
			keep_route: flag(r.keepRoute),
			access_control_groups: JSON.stringify(r.accessControlGroups),
			skip_auto_apply: flag(r.skipAutoApply),
		};
	}

	async insertRoute(r: Route): Promise<void> {
		await this.runner.run(
			this.db
				.insertInto("routes")
				.values({ id: r.id, account_id: r.accountId, ...this.routeColumns(r) })
				.compile(),
		);
	}
	async updateRoute(r: Route): Promise<boolean> {
		return this.update("routes", r, this.routeColumns(r));
	}
	deleteRoute(accountId: string, routeId: string): Promise<boolean> {
		return this.remove("routes", accountId, routeId);
	}

	async insertNetwork(n: Network): Promise<void> {
		await this.runner.run(
			this.db
				.insertInto("networks")
				.values({ id: n.id, account_id: n.accountId, name: n.name, description: n.description })
				.compile(),
		);
	}
	updateNetwork(n: Network): Promise<boolean> {
		return this.update("networks", n, { name: n.name, description: n.description });
	}
	/** Its resources and routers first, each row deleted (and moving the revision) by itself. */
	async deleteNetwork(accountId: string, networkId: string): Promise<boolean> {
		for (const table of ["network_resources", "network_routers"] as const) {
			await this.runner.run(
				this.db
					.deleteFrom(table)
					.where("account_id", "=", accountId)
					.where("network_id", "=", networkId)
					.compile(),
			);
		}
		return this.remove("networks", accountId, networkId);
	}

	private resourceColumns(r: NetworkResource) {
		return {
			name: r.name,
			description: r.description,
			address: r.address,
			type: r.type,
			prefix: r.prefix,
			enabled: this.dialect.flag(r.enabled),
			groups: JSON.stringify(r.groups),
		};
	}

	async insertNetworkResource(r: NetworkResource): Promise<void> {
		await this.runner.run(
			this.db
				.insertInto("network_resources")
				.values({
					id: r.id,
					account_id: r.accountId,
					network_id: r.networkId,
					...this.resourceColumns(r),
				})
				.compile(),
		);
	}
	updateNetworkResource(r: NetworkResource): Promise<boolean> {
		return this.update("network_resources", r, this.resourceColumns(r), r.networkId);
	}
	deleteNetworkResource(accountId: string, id: string): Promise<boolean> {
		return this.remove("network_resources", accountId, id);
	}

	private routerColumns(r: NetworkRouter) {
		const flag = this.dialect.flag;
		return {
			peer_id: r.peerId,
			peer_groups: JSON.stringify(r.peerGroups),
			metric: r.metric,
			masquerade: flag(r.masquerade),
			enabled: flag(r.enabled),
		};
	}

	async insertNetworkRouter(r: NetworkRouter): Promise<void> {
		await this.runner.run(
			this.db
				.insertInto("network_routers")
				.values({
					id: r.id,
					account_id: r.accountId,
					network_id: r.networkId,
					...this.routerColumns(r),
				})
				.compile(),
		);
	}
	updateNetworkRouter(r: NetworkRouter): Promise<boolean> {
		return this.update("network_routers", r, this.routerColumns(r), r.networkId);
	}
	deleteNetworkRouter(accountId: string, id: string): Promise<boolean> {
		return this.remove("network_routers", accountId, id);
	}

	/** Updates the row of `of` in its account (and network, when given); false when there is none. */
	private async update(
		table: RoutingTable,
		of: { id: string; accountId: string },
		columns: Record<string, unknown>,
		networkId?: string,
	): Promise<boolean> {
		let query = this.db
			.updateTable(table)
			.set(columns)
			.where("account_id", "=", of.accountId)
			.where("id", "=", of.id);
		if (networkId !== undefined) query = query.where("network_id", "=", networkId);
		return (await this.runner.run(query.compile())) > 0;
	}
}
