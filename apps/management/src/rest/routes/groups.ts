import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { initiatorOf } from "../../app/audit.js";
import { notFound } from "../../app/errors.js";
import { createGroup, deleteGroup, updateGroup } from "../../app/groups.js";
import type { Group } from "../../domain/types.js";
import type { StoreReader } from "../../store/store.js";
import { authOf } from "../auth.js";
import { groupJson } from "../mappers.js";
import {
	EmptyObject,
	errorResponses,
	GroupCreateBody,
	GroupIdParams,
	GroupListQuery,
	GroupResponse,
	GroupUpdateBody,
	json,
	NoQuery,
} from "../schemas.js";
import { type RouteDeps, unique } from "./deps.js";

const tags = ["Groups"];

async function peerNames(store: StoreReader, accountId: string): Promise<Map<string, string>> {
	return new Map((await store.listPeers(accountId)).map((p) => [p.id, p.name]));
}

async function render(store: StoreReader, group: Group) {
	const names = await peerNames(store, group.accountId);
	return groupJson(group, names, names.size);
}

/** /api/groups: owner and admin only (registered in the admin scope). */
export const groupRoutes: FastifyPluginAsyncZod<RouteDeps> = async (
	app,
	{ store, sink, now, listings },
) => {
	app.get(
		"/api/groups",
		{
			schema: {
				operationId: "listGroups",
				tags,
				summary: "List all groups",
				description: "`name` filters by exact match; an empty value does not filter.",
				querystring: GroupListQuery,
				response: {
					200: json(z.array(GroupResponse), "The account's groups"),
					...errorResponses(400, 401, 403),
				},
			},
		},
		async (request) => {
			const { account } = authOf(request);
			const groups = await listings.groups(account.id);
			const { name } = request.query;
			return name ? groups.filter((g) => g.name === name) : groups;
		},
	);

	app.post(
		"/api/groups",
		{
			schema: {
				operationId: "createGroup",
				tags,
				summary: "Create a group",
				description: "Peers must be the account's (422 otherwise); the name must be free (409).",
				querystring: NoQuery,
				body: GroupCreateBody,
				response: {
					200: json(GroupResponse, "The new group"),
					...errorResponses(400, 401, 403, 409, 413, 415, 422),
				},
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			const group = await createGroup(
				store,
				sink,
				account.id,
				{ name: request.body.name, peerIds: unique(request.body.peers) },
				initiatorOf(user),
				now(),
			);
			return render(store, group);
		},
	);

	app.get(
		"/api/groups/:groupId",
		{
			schema: {
				operationId: "getGroup",
				tags,
				summary: "Retrieve a group",
				params: GroupIdParams,
				querystring: NoQuery,
				response: { 200: json(GroupResponse, "The group"), ...errorResponses(400, 401, 403, 404) },
			},
		},
		async (request) => {
			const { account } = authOf(request);
			const group = await store.getGroup(account.id, request.params.groupId);
			if (!group) throw notFound("group");
			return render(store, group);
		},
	);

	app.put(
		"/api/groups/:groupId",
		{
			schema: {
				operationId: "updateGroup",
				tags,
				summary: "Update a group",
				description:
					"Renames the group and replaces its peers (NetBird's way of putting peers in groups). " +
					"The All group is read-only (422). Agents whose access changes get new maps within seconds.",
				params: GroupIdParams,
				querystring: NoQuery,
				body: GroupUpdateBody,
				response: {
					200: json(GroupResponse, "The updated group"),
					...errorResponses(400, 401, 403, 404, 409, 413, 415, 422),
				},
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			const group = await updateGroup(
				store,
				sink,
				account.id,
				request.params.groupId,
				{ name: request.body.name, peerIds: unique(request.body.peers) },
				initiatorOf(user),
				now(),
			);
			return render(store, group);
		},
	);

	app.delete(
		"/api/groups/:groupId",
		{
			schema: {
				operationId: "deleteGroup",
				tags,
				summary: "Delete a group",
				description:
					"Refused (422) for the All group and for groups that a policy, a setup key or a user still names.",
				params: GroupIdParams,
				querystring: NoQuery,
				response: {
					200: json(EmptyObject, "Deleted"),
					...errorResponses(400, 401, 403, 404, 422),
				},
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			await deleteGroup(store, sink, account.id, request.params.groupId, initiatorOf(user), now());
			return {};
		},
	);
};
