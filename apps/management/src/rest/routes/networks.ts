import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { initiatorOf } from "../../app/audit.js";
import { notFound } from "../../app/errors.js";
import {
	createNetwork,
	createNetworkResource,
	createNetworkRouter,
	deleteNetwork,
	deleteNetworkResource,
	deleteNetworkRouter,
	type ResourceInput,
	type RouterInput,
	updateNetwork,
	updateNetworkResource,
	updateNetworkRouter,
} from "../../app/networks.js";
import { authOf } from "../auth.js";
import type { AccountListings, RoutingListing } from "../listings.js";
import {
	NetworkBody,
	NetworkIdParams,
	NetworkResponse,
	ResourceBody,
	ResourceIdParams,
	ResourceResponse,
	RouterBody,
	RouterIdParams,
	RouterResponse,
} from "../routing-schemas.js";
import { EmptyObject, errorResponses, json, NoQuery } from "../schemas.js";
import { type RouteDeps, unique } from "./deps.js";

const tags = ["Networks"];

const resourceInput = (b: z.output<typeof ResourceBody>): ResourceInput => ({
	name: b.name,
	description: b.description,
	address: b.address,
	enabled: b.enabled,
	groups: unique(b.groups),
});

const routerInput = (b: z.output<typeof RouterBody>): RouterInput => ({
	peerId: b.peer ? b.peer : null,
	peerGroups: unique(b.peer_groups ?? []),
	metric: b.metric,
	masquerade: b.masquerade,
	enabled: b.enabled,
});

/** The listing's JSON of the item with `id` in `items` (parallel to `json`), when it is in `networkId`. */
function pick<T>(
	items: readonly { id: string; networkId?: string }[],
	jsonOf: readonly T[],
	id: string,
	networkId?: string,
): T | undefined {
	const i = items.findIndex(
		(x) => x.id === id && (networkId === undefined || x.networkId === networkId),
	);
	return i < 0 ? undefined : jsonOf[i];
}

async function listingWithNetwork(
	listings: AccountListings,
	accountId: string,
	networkId: string,
): Promise<RoutingListing> {
	const listing = await listings.routing(accountId);
	if (!listing.config.networks.some((n) => n.id === networkId)) throw notFound("network");
	return listing;
}

const ROUTER_RULES =
	"Exactly one of peer and peer_groups; metric 1-9999; the peer and groups must exist (422).";
const RESOURCE_RULES =
	"address is an IPv4 address (type host) or IPv4 CIDR (type subnet, host bits cleared) outside " +
	"the account's overlay range; domain and IPv6 addresses are refused (400). Groups must exist (422). " +
	"A peer reaches the resource when a policy has one of its groups as destination and the peer among its sources.";

/** /api/networks with their resources and routers: owner and admin only (admin scope). */
export const networkRoutes: FastifyPluginAsyncZod<RouteDeps> = async (
	app,
	{ store, sink, now, listings },
) => {
	// ---------------------------------------------------------------- networks

	app.get(
		"/api/networks",
		{
			schema: {
				operationId: "listNetworks",
				tags,
				summary: "List all networks",
				querystring: NoQuery,
				response: {
					200: json(z.array(NetworkResponse), "The account's networks, oldest first"),
					...errorResponses(400, 401, 403),
				},
			},
		},
		async (request) => (await listings.routing(authOf(request).account.id)).networks,
	);

	app.post(
		"/api/networks",
		{
			schema: {
				operationId: "createNetwork",
				tags,
				summary: "Create a network",
				querystring: NoQuery,
				body: NetworkBody,
				response: {
					200: json(NetworkResponse, "The new network"),
					...errorResponses(400, 401, 403, 413, 415),
				},
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			const n = await createNetwork(
				store,
				sink,
				account.id,
				request.body,
				initiatorOf(user),
				now(),
			);
			const listing = await listings.routing(account.id);
			return pick(listing.config.networks, listing.networks, n.id) ?? notFoundThrow("network");
		},
	);

	app.get(
		"/api/networks/resources",
		{
			schema: {
				operationId: "listAllNetworkResources",
				tags,
				summary: "List the resources of every network",
				querystring: NoQuery,
				response: {
					200: json(z.array(ResourceResponse), "Every resource of the account, oldest first"),
					...errorResponses(400, 401, 403),
				},
			},
		},
		async (request) => (await listings.routing(authOf(request).account.id)).resources,
	);

	app.get(
		"/api/networks/routers",
		{
			schema: {
				operationId: "listAllNetworkRouters",
				tags,
				summary: "List the routers of every network",
				querystring: NoQuery,
				response: {
					200: json(z.array(RouterResponse), "Every router of the account, oldest first"),
					...errorResponses(400, 401, 403),
				},
			},
		},
		async (request) => (await listings.routing(authOf(request).account.id)).routers,
	);

	app.get(
		"/api/networks/:networkId",
		{
			schema: {
				operationId: "getNetwork",
				tags,
				summary: "Retrieve a network",
				params: NetworkIdParams,
				querystring: NoQuery,
				response: {
					200: json(NetworkResponse, "The network"),
					...errorResponses(400, 401, 403, 404),
				},
			},
		},
		async (request) => {
			const listing = await listings.routing(authOf(request).account.id);
			const id = request.params.networkId;
			return pick(listing.config.networks, listing.networks, id) ?? notFoundThrow("network");
		},
	);

	app.put(
		"/api/networks/:networkId",
		{
			schema: {
				operationId: "updateNetwork",
				tags,
				summary: "Update a network",
				description: "Replaces name and description.",
				params: NetworkIdParams,
				querystring: NoQuery,
				body: NetworkBody,
				response: {
					200: json(NetworkResponse, "The updated network"),
					...errorResponses(400, 401, 403, 404, 413, 415),
				},
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			const id = request.params.networkId;
			await updateNetwork(store, sink, account.id, id, request.body, initiatorOf(user), now());
			const listing = await listings.routing(account.id);
			return pick(listing.config.networks, listing.networks, id) ?? notFoundThrow("network");
		},
	);

	app.delete(
		"/api/networks/:networkId",
		{
			schema: {
				operationId: "deleteNetwork",
				tags,
				summary: "Delete a network",
				description: "Deletes its resources and routers with it.",
				params: NetworkIdParams,
				querystring: NoQuery,
				response: { 200: json(EmptyObject, "Deleted"), ...errorResponses(400, 401, 403, 404) },
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			await deleteNetwork(
				store,
				sink,
				account.id,
				request.params.networkId,
				initiatorOf(user),
				now(),
			);
			return {};
		},
	);

	// ---------------------------------------------------------------- resources

	app.get(
		"/api/networks/:networkId/resources",
		{
			schema: {
				operationId: "listNetworkResources",
				tags,
				summary: "List a network's resources",
				params: NetworkIdParams,
				querystring: NoQuery,
				response: {
					200: json(z.array(ResourceResponse), "The network's resources, oldest first"),
					...errorResponses(400, 401, 403, 404),
				},
			},
		},
		async (request) => {
			const id = request.params.networkId;
			const listing = await listingWithNetwork(listings, authOf(request).account.id, id);
			return listing.resources.filter(
				(_, i) => listing.config.networkResources[i]?.networkId === id,
			);
		},
	);

	app.post(
		"/api/networks/:networkId/resources",
		{
			schema: {
				operationId: "createNetworkResource",
				tags,
				summary: "Create a network resource",
				description: RESOURCE_RULES,
				params: NetworkIdParams,
				querystring: NoQuery,
				body: ResourceBody,
				response: {
					200: json(ResourceResponse, "The new resource"),
					...errorResponses(400, 401, 403, 404, 409, 413, 415, 422),
				},
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			const { networkId } = request.params;
			const r = await createNetworkResource(
				store,
				sink,
				account.id,
				networkId,
				resourceInput(request.body),
				initiatorOf(user),
				now(),
			);
			const listing = await listings.routing(account.id);
			return (
				pick(listing.config.networkResources, listing.resources, r.id) ??
				notFoundThrow("network resource")
			);
		},
	);

	app.get(
		"/api/networks/:networkId/resources/:resourceId",
		{
			schema: {
				operationId: "getNetworkResource",
				tags,
				summary: "Retrieve a network resource",
				params: ResourceIdParams,
				querystring: NoQuery,
				response: {
					200: json(ResourceResponse, "The resource"),
					...errorResponses(400, 401, 403, 404),
				},
			},
		},
		async (request) => {
			const { networkId, resourceId } = request.params;
			const listing = await listingWithNetwork(listings, authOf(request).account.id, networkId);
			return (
				pick(listing.config.networkResources, listing.resources, resourceId, networkId) ??
				notFoundThrow("network resource")
			);
		},
	);

	app.put(
		"/api/networks/:networkId/resources/:resourceId",
		{
			schema: {
				operationId: "updateNetworkResource",
				tags,
				summary: "Update a network resource",
				description: `Replaces every field. ${RESOURCE_RULES}`,
				params: ResourceIdParams,
				querystring: NoQuery,
				body: ResourceBody,
				response: {
					200: json(ResourceResponse, "The updated resource"),
					...errorResponses(400, 401, 403, 404, 409, 413, 415, 422),
				},
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			const { networkId, resourceId } = request.params;
			await updateNetworkResource(
				store,
				sink,
				account.id,
				networkId,
				resourceId,
				resourceInput(request.body),
				initiatorOf(user),
				now(),
			);
			const listing = await listings.routing(account.id);
			return (
				pick(listing.config.networkResources, listing.resources, resourceId) ??
				notFoundThrow("network resource")
			);
		},
	);

	app.delete(
		"/api/networks/:networkId/resources/:resourceId",
		{
			schema: {
				operationId: "deleteNetworkResource",
				tags,
				summary: "Delete a network resource",
				params: ResourceIdParams,
				querystring: NoQuery,
				response: { 200: json(EmptyObject, "Deleted"), ...errorResponses(400, 401, 403, 404) },
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			const { networkId, resourceId } = request.params;
			await deleteNetworkResource(
				store,
				sink,
				account.id,
				networkId,
				resourceId,
				initiatorOf(user),
				now(),
			);
			return {};
		},
	);

	// ---------------------------------------------------------------- routers

	app.get(
		"/api/networks/:networkId/routers",
		{
			schema: {
				operationId: "listNetworkRouters",
				tags,
				summary: "List a network's routers",
				params: NetworkIdParams,
				querystring: NoQuery,
				response: {
					200: json(z.array(RouterResponse), "The network's routers, oldest first"),
					...errorResponses(400, 401, 403, 404),
				},
			},
		},
		async (request) => {
			const id = request.params.networkId;
			const listing = await listingWithNetwork(listings, authOf(request).account.id, id);
			return listing.routers.filter((_, i) => listing.config.networkRouters[i]?.networkId === id);
		},
	);

	app.post(
		"/api/networks/:networkId/routers",
		{
			schema: {
				operationId: "createNetworkRouter",
				tags,
				summary: "Create a network router",
				description: ROUTER_RULES,
				params: NetworkIdParams,
				querystring: NoQuery,
				body: RouterBody,
				response: {
					200: json(RouterResponse, "The new router"),
					...errorResponses(400, 401, 403, 404, 413, 415, 422),
				},
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			const r = await createNetworkRouter(
				store,
				sink,
				account.id,
				request.params.networkId,
				routerInput(request.body),
				initiatorOf(user),
				now(),
			);
			const listing = await listings.routing(account.id);
			return (
				pick(listing.config.networkRouters, listing.routers, r.id) ??
				notFoundThrow("network router")
			);
		},
	);

	app.get(
		"/api/networks/:networkId/routers/:routerId",
		{
			schema: {
				operationId: "getNetworkRouter",
				tags,
				summary: "Retrieve a network router",
				params: RouterIdParams,
				querystring: NoQuery,
				response: {
					200: json(RouterResponse, "The router"),
					...errorResponses(400, 401, 403, 404),
				},
			},
		},
		async (request) => {
			const { networkId, routerId } = request.params;
			const listing = await listingWithNetwork(listings, authOf(request).account.id, networkId);
			return (
				pick(listing.config.networkRouters, listing.routers, routerId, networkId) ??
				notFoundThrow("network router")
			);
		},
	);

	app.put(
		"/api/networks/:networkId/routers/:routerId",
		{
			schema: {
				operationId: "updateNetworkRouter",
				tags,
				summary: "Update a network router",
				description: `Replaces every field. ${ROUTER_RULES}`,
				params: RouterIdParams,
				querystring: NoQuery,
				body: RouterBody,
				response: {
					200: json(RouterResponse, "The updated router"),
					...errorResponses(400, 401, 403, 404, 413, 415, 422),
				},
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			const { networkId, routerId } = request.params;
			await updateNetworkRouter(
				store,
				sink,
				account.id,
				networkId,
				routerId,
				routerInput(request.body),
				initiatorOf(user),
				now(),
			);
			const listing = await listings.routing(account.id);
			return (
				pick(listing.config.networkRouters, listing.routers, routerId) ??
				notFoundThrow("network router")
			);
		},
	);

	app.delete(
		"/api/networks/:networkId/routers/:routerId",
		{
			schema: {
				operationId: "deleteNetworkRouter",
				tags,
				summary: "Delete a network router",
				params: RouterIdParams,
				querystring: NoQuery,
				response: { 200: json(EmptyObject, "Deleted"), ...errorResponses(400, 401, 403, 404) },
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			const { networkId, routerId } = request.params;
			await deleteNetworkRouter(
				store,
				sink,
				account.id,
				networkId,
				routerId,
				initiatorOf(user),
				now(),
			);
			return {};
		},
	);
};

function notFoundThrow(what: string): never {
	throw notFound(what);
}
