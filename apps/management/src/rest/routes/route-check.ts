import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { checkRouteForPeer } from "../../app/route-check.js";
import type { RouteCheckResult } from "../../core/route-check.js";
import { authOf } from "../auth.js";
import { RouteCheckBody, RouteCheckResponse } from "../route-check-schemas.js";
import { errorResponses, json, NoQuery } from "../schemas.js";
import type { RouteDeps } from "./deps.js";

function routeCheckJson(r: RouteCheckResult) {
	const candidate = (
		c: NonNullable<RouteCheckResult["router"]> | RouteCheckResult["candidates"][number],
	) => ({
		peer_id: c.peerId,
		name: c.name,
		metric: c.metric,
		connected: c.connected,
		route_id: c.routeId,
	});
	return {
		route: r.route && {
			id: r.route.id,
			type: r.route.kind === "route" ? ("route" as const) : ("network_resource" as const),
			network_id: r.route.networkId,
			network: r.route.network,
			description: r.route.description,
			skip_auto_apply: r.route.skipAutoApply,
		},
		router: r.router && { ...candidate(r.router), reason: r.router.reason },
		candidates: r.candidates.map(candidate),
		access: r.access && {
			allowed: r.access.allowed,
			rule: r.access.rule && {
				policy_id: r.access.rule.policyId,
				policy_name: r.access.rule.policyName,
				rule_id: r.access.rule.ruleId,
				rule_name: r.access.rule.ruleName,
				protocol: r.access.rule.protocol,
				ports: r.access.rule.ports,
			},
			reason: r.access.reason,
		},
		reason: r.reason,
	};
}

/** POST /api/routes/check: owner and admin only (registered in the admin scope). */
export const routeCheckRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { store }) => {
	app.post(
		"/api/routes/check",
		{
			schema: {
				operationId: "checkRoute",
				tags: ["Routes"],
				summary: "Check which route and router would carry an address for a peer",
				description:
					"Among the routes the peer receives now (routes and Networks resources), the longest " +
					"prefix covering the address; among that network's routers, the lowest metric among " +
					"the connected ones, as the agent chooses (its choice also depends on path state " +
					"only it knows); and whether a policy lets the peer through. Changes nothing. Not " +
					"part of NetBird's API.",
				querystring: NoQuery,
				body: RouteCheckBody,
				response: {
					200: json(
						RouteCheckResponse,
						"The answer; route is null when no route covers the address",
					),
					...errorResponses(400, 401, 403, 404, 413, 415),
				},
			},
		},
		async (request) => {
			const { account } = authOf(request);
			const result = await checkRouteForPeer(store, account, {
				peerId: request.body.peer_id,
				address: request.body.address,
			});
			return routeCheckJson(result);
		},
	);
};
