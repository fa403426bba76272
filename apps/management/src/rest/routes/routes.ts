import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { initiatorOf } from "../../app/audit.js";
import { notFound } from "../../app/errors.js";
import { createRoute, deleteRoute, updateRoute } from "../../app/routes.js";
import type { RouteInput } from "../../app/routing.js";
import { authOf } from "../auth.js";
import { routeJson } from "../routing-mappers.js";
import { RouteBody, RouteIdParams, RouteResponse } from "../routing-schemas.js";
import { EmptyObject, errorResponses, json, NoQuery } from "../schemas.js";
import { type RouteDeps, unique } from "./deps.js";

const tags = ["Routes"];

function toInput(body: z.output<typeof RouteBody>): RouteInput {
	return {
		description: body.description,
		networkId: body.network_id,
		enabled: body.enabled,
		peerId: body.peer ? body.peer : null,
		peerGroups: unique(body.peer_groups ?? []),
		// RouteBody refuses a body without it.
		network: body.network ?? "",
		metric: body.metric,
		masquerade: body.masquerade,
		groups: unique(body.groups),
		keepRoute: body.keep_route,
		accessControlGroups: unique(body.access_control_groups ?? []),
		skipAutoApply: body.skip_auto_apply,
	};
}

const RULES =
	"network is an IPv4 CIDR (host bits are cleared; IPv6 and domain routes are refused with 400) " +
	"outside the account's overlay range; exactly one of peer and peer_groups; metric 1-9999; " +
	"skip_auto_apply only on exit nodes (0.0.0.0/0). Routes of one network_id route the same " +
	"network (several routers, high availability); routes of different network_ids must not " +
	"overlap (409), except exit nodes, which may be several. Peers and groups must exist (422).";

/** /api/routes: owner and admin only (registered in the admin scope). */
export const routeRoutes: FastifyPluginAsyncZod<RouteDeps> = async (
	app,
	{ store, sink, now, listings },
) => {
	app.get(
		"/api/routes",
		{
			schema: {
				operationId: "listRoutes",
				tags,
				summary: "List all routes",
				querystring: NoQuery,
				response: {
					200: json(z.array(RouteResponse), "The account's routes, oldest first"),
					...errorResponses(400, 401, 403),
				},
			},
		},
		async (request) => (await listings.routing(authOf(request).account.id)).routes,
	);

	app.post(
		"/api/routes",
		{
			schema: {
				operationId: "createRoute",
				tags,
				summary: "Create a route",
				description: `The peers of groups reach network through the routing peer(s). ${RULES}`,
				querystring: NoQuery,
				body: RouteBody,
				response: {
					200: json(RouteResponse, "The new route"),
					...errorResponses(400, 401, 403, 409, 413, 415, 422),
				},
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			const route = await createRoute(
				store,
				sink,
				account.id,
				toInput(request.body),
				initiatorOf(user),
				now(),
			);
			return routeJson(route);
		},
	);

	app.get(
		"/api/routes/:routeId",
		{
			schema: {
				operationId: "getRoute",
				tags,
				summary: "Retrieve a route",
				params: RouteIdParams,
				querystring: NoQuery,
				response: { 200: json(RouteResponse, "The route"), ...errorResponses(400, 401, 403, 404) },
			},
		},
		async (request) => {
			const route = await store.getRoute(authOf(request).account.id, request.params.routeId);
			if (!route) throw notFound("route");
			return routeJson(route);
		},
	);

	app.put(
		"/api/routes/:routeId",
		{
			schema: {
				operationId: "updateRoute",
				tags,
				summary: "Update a route",
				description: `Replaces every field. ${RULES}`,
				params: RouteIdParams,
				querystring: NoQuery,
				body: RouteBody,
				response: {
					200: json(RouteResponse, "The updated route"),
					...errorResponses(400, 401, 403, 404, 409, 413, 415, 422),
				},
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			const route = await updateRoute(
				store,
				sink,
				account.id,
				request.params.routeId,
				toInput(request.body),
				initiatorOf(user),
				now(),
			);
			return routeJson(route);
		},
	);

	app.delete(
		"/api/routes/:routeId",
		{
			schema: {
				operationId: "deleteRoute",
				tags,
				summary: "Delete a route",
				params: RouteIdParams,
				querystring: NoQuery,
				response: { 200: json(EmptyObject, "Deleted"), ...errorResponses(400, 401, 403, 404) },
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			await deleteRoute(store, sink, account.id, request.params.routeId, initiatorOf(user), now());
			return {};
		},
	);
};
