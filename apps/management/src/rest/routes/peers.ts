import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { initiatorOf } from "../../app/audit.js";
import { AppError, notFound } from "../../app/errors.js";
import { deletePeer, updatePeer } from "../../app/peers.js";
import { authOf } from "../auth.js";
import { accessiblePeerJson, peerJson } from "../mappers.js";
import {
	AccessiblePeerResponse,
	EmptyObject,
	errorResponses,
	json,
	NoQuery,
	PeerIdParams,
	PeerListQuery,
	PeerResponse,
	PeerUpdateBody,
} from "../schemas.js";
import type { RouteDeps } from "./deps.js";

const tags = ["Peers"];

/** /api/peers: owner and admin only (registered in the admin scope). */
export const peerRoutes: FastifyPluginAsyncZod<RouteDeps> = async (
	app,
	{ store, sink, now, listings },
) => {
	app.get(
		"/api/peers",
		{
			schema: {
				operationId: "listPeers",
				tags,
				summary: "List all peers",
				description: "`name` and `ip` filter by exact match; an empty value does not filter.",
				querystring: PeerListQuery,
				response: {
					200: json(z.array(PeerResponse), "The account's peers"),
					...errorResponses(400, 401, 403),
				},
			},
		},
		async (request) => {
			const { account } = authOf(request);
			const { name, ip } = request.query;
			const { json } = await listings.peers(account.id);
			if (!name && !ip) return json;
			return json.filter((p) => (!name || p.name === name) && (!ip || p.ip === ip));
		},
	);

	app.get(
		"/api/peers/:peerId",
		{
			schema: {
				operationId: "getPeer",
				tags,
				summary: "Retrieve a peer",
				params: PeerIdParams,
				querystring: NoQuery,
				response: { 200: json(PeerResponse, "The peer"), ...errorResponses(400, 401, 403, 404) },
			},
		},
		async (request) => {
			const { account } = authOf(request);
			const { json, positionOf } = await listings.peers(account.id);
			const position = positionOf.get(request.params.peerId);
			if (position === undefined) throw notFound("peer");
			return json[position];
		},
	);

	app.get(
		"/api/peers/:peerId/accessible-peers",
		{
			schema: {
				operationId: "listAccessiblePeers",
				tags,
				summary: "List the peers a peer can reach",
				description:
					"The peers that the account's policies, as they are now, let this peer connect to or be " +
					"reached from, with the routing peers of the routes it receives and, for a routing " +
					"peer, the peers receiving its routes (the peers in its network map).",
				params: PeerIdParams,
				querystring: NoQuery,
				response: {
					200: json(z.array(AccessiblePeerResponse), "The peers it can reach"),
					...errorResponses(400, 401, 403, 404),
				},
			},
		},
		async (request) => {
			const { account } = authOf(request);
			const { ctx } = await listings.peers(account.id);
			const i = ctx.access.indexOfId(request.params.peerId);
			if (i === undefined) throw notFound("peer");
			return Array.from(ctx.access.visibleIndices(i), (j) =>
				accessiblePeerJson(ctx.access.peerAt(j), ctx),
			);
		},
	);

	app.put(
		"/api/peers/:peerId",
		{
			schema: {
				operationId: "updatePeer",
				tags,
				summary: "Update a peer",
				description:
					"Renaming a peer renames its DNS label (made unique in the account). " +
					"Fields for features Starling lacks are accepted with their off value only (400 otherwise); " +
					"ip only with the peer's current address. " +
					"Group membership is changed through the groups (PUT /api/groups/{groupId}), as in NetBird.",
				params: PeerIdParams,
				querystring: NoQuery,
				body: PeerUpdateBody,
				response: {
					200: json(PeerResponse, "The updated peer"),
					...errorResponses(400, 401, 403, 404, 413, 415),
				},
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			const body = request.body;
			const { peerId } = request.params;
			if (body.peerId !== undefined && body.peerId !== peerId) {
				throw new AppError(400, "peerId must be the id in the path");
			}
			if (body.ip !== undefined) {
				const current = await store.getPeer(account.id, peerId);
				if (!current) throw notFound("peer");
				if (body.ip !== current.ip) {
					throw new AppError(
						400,
						`a peer's address cannot be chosen: it stays ${current.ip} (send it or leave ip out)`,
					);
				}
			}
			const peer = await updatePeer(
				store,
				sink,
				account.id,
				request.params.peerId,
				{
					name: body.name,
					sshEnabled: body.ssh_enabled,
					loginExpirationEnabled: body.login_expiration_enabled,
				},
				initiatorOf(user),
				now(),
			);
			const { ctx } = await listings.peers(account.id);
			return peerJson(peer, ctx);
		},
	);

	app.delete(
		"/api/peers/:peerId",
		{
			schema: {
				operationId: "deletePeer",
				tags,
				summary: "Delete a peer",
				description:
					"The peer is disconnected from the network; it needs a setup key to register again. " +
					"Routes it served alone are disabled and lose their routing peer, and network routers " +
					"that were this peer are removed, as NetBird does.",
				params: PeerIdParams,
				querystring: NoQuery,
				response: { 200: json(EmptyObject, "Deleted"), ...errorResponses(400, 401, 403, 404) },
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			await deletePeer(store, sink, account.id, request.params.peerId, initiatorOf(user), now());
			return {};
		},
	);
};
