import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { authOf } from "../auth.js";
import { eventJson } from "../mappers.js";
import { EventResponse, EventsQuery, errorResponses, json } from "../schemas.js";
import type { RouteDeps } from "./deps.js";

/** /api/events/audit: owner and admin only (registered in the admin scope). */
export const eventRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { store }) => {
	app.get(
		"/api/events/audit",
		{
			schema: {
				operationId: "listAuditEvents",
				tags: ["Events"],
				summary: "List audit events",
				description:
					"Every change made through the API, every peer registration (by setup key) and every " +
					"peer deletion (by an admin or by the peer logging out): who, what, when and to which object.",
				querystring: EventsQuery,
				response: {
					200: json(z.array(EventResponse), "Audit events, newest first"),
					...errorResponses(400, 401, 403),
				},
			},
		},
		async (request) => {
			const { account } = authOf(request);
			return (await store.listEvents(account.id, request.query.limit)).map(eventJson);
		},
	);
};
