import type { RouteStatus } from "@starling/proto";

/** One network this peer receives, in the stable snake_case JSON of `status --json` and `routes --json`. */
export function routeToJson(r: RouteStatus): Record<string, unknown> {
	return {
		network_id: r.networkId,
		network: r.network,
		exit_node: r.exitNode,
		router: r.router,
		router_key: r.routerKey,
		metric: r.metric,
		installed: r.installed,
		reason: r.reason,
		description: r.description,
		routers: r.routers.map((x) => ({
			name: x.name,
			key: x.key,
			metric: x.metric,
			reachable: x.reachable,
			direct: x.direct,
		})),
	};
}

/** The human-readable list: one block per network, its routers under it. */
export function routesToText(routes: readonly RouteStatus[], exitNode?: string): string[] {
	const lines: string[] = [];
	if (routes.length === 0) lines.push("No routes received");
	for (const r of routes) {
		const what = r.exitNode ? "exit node" : "network";
		lines.push(
			` ${r.network} (${what} '${r.networkId}')${r.description ? `: ${r.description}` : ""}`,
			`  Router: ${r.router ? `${r.router} (metric ${r.metric})` : "-"}${r.installed ? "" : r.router ? " (kernel route not installed yet)" : ""}`,
			`  Why: ${r.reason}`,
		);
		for (const x of r.routers)
			lines.push(
				`   - ${x.name}: metric ${x.metric}, ${x.reachable ? (x.direct ? "reachable, direct" : "reachable, relayed") : "unreachable"}`,
			);
	}
	if (exitNode !== undefined) lines.push(`Exit node choice: ${exitNode}`);
	return lines;
}
