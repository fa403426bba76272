import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { initiatorOf } from "../../app/audit.js";
import { AppError, notFound } from "../../app/errors.js";
import {
	type AuthContext,
	createPersonalAccessToken,
	deletePersonalAccessToken,
} from "../../app/tokens.js";
import { createUser, deleteUser, updateUser } from "../../app/users.js";
import type { User } from "../../domain/types.js";
import type { Store, StoreReader } from "../../store/store.js";
import { authOf } from "../auth.js";
import { tokenJson, userJson } from "../mappers.js";
import {
	EmptyObject,
	errorResponses,
	json,
	NoQuery,
	TokenCreateBody,
	TokenCreatedResponse,
	TokenParams,
	TokenResponse,
	UserCreateBody,
	UserIdParams,
	UserListQuery,
	UserResponse,
	UserUpdateBody,
} from "../schemas.js";
import type { RouteDeps } from "./deps.js";

/** A user's last login: the last use of any of their tokens (users log in with tokens only). */
async function lastLogin(store: StoreReader, userId: string): Promise<Date | null> {
	let last: Date | null = null;
	for (const t of await store.listTokens(userId)) {
		if (t.lastUsed && (!last || t.lastUsed > last)) last = t.lastUsed;
	}
	return last;
}

/**
 * The user whose tokens a request is about. A user of another account does
 * not exist (404); owners and admins manage the tokens of every user of their
 * account, everyone else only their own (403).
 */
async function tokenOwner(store: Store, auth: AuthContext, userId: string): Promise<User> {
	const user = userId === auth.user.id ? auth.user : await store.getUser(userId);
	if (!user || user.accountId !== auth.account.id) throw notFound("user");
	if (user.id !== auth.user.id && auth.user.role !== "owner" && auth.user.role !== "admin") {
		throw new AppError(403, "you may only manage your own tokens");
	}
	return user;
}

/** Routes every authenticated user may call (what they may do is checked per request). */
export const userSelfServiceRoutes: FastifyPluginAsyncZod<RouteDeps> = async (
	app,
	{ store, now },
) => {
	app.get(
		"/api/users/current",
		{
			schema: {
				operationId: "getCurrentUser",
				tags: ["Users"],
				summary: "Retrieve the current user",
				description:
					"The user that the request's token belongs to, with `permissions`: what the user's role may do.",
				querystring: NoQuery,
				response: { 200: json(UserResponse, "The current user"), ...errorResponses(400, 401) },
			},
		},
		async (request) => {
			const { user } = authOf(request);
			return userJson(user, {
				currentUserId: user.id,
				lastLogin: await lastLogin(store, user.id),
				withPermissions: true,
			});
		},
	);

	const tags = ["Tokens"];

	app.get(
		"/api/users/:userId/tokens",
		{
			schema: {
				operationId: "listTokens",
				tags,
				summary: "List all tokens of a user",
				params: UserIdParams,
				querystring: NoQuery,
				response: {
					200: json(z.array(TokenResponse), "The user's tokens"),
					...errorResponses(400, 401, 403, 404),
				},
			},
		},
		async (request) => {
			const user = await tokenOwner(store, authOf(request), request.params.userId);
			return (await store.listTokens(user.id)).map(tokenJson);
		},
	);

	app.post(
		"/api/users/:userId/tokens",
		{
			schema: {
				operationId: "createToken",
				tags,
				summary: "Create a personal access token",
				description: "Answers `plain_token`: the only time it is shown (only a hash is stored).",
				params: UserIdParams,
				querystring: NoQuery,
				body: TokenCreateBody,
				response: {
					200: json(TokenCreatedResponse, "The new token, with its plain value"),
					...errorResponses(400, 401, 403, 404, 413, 415),
				},
			},
		},
		async (request) => {
			const auth = authOf(request);
			const user = await tokenOwner(store, auth, request.params.userId);
			const { plainToken, token } = await createPersonalAccessToken(
				store,
				user,
				auth.user.id,
				request.body.name,
				request.body.expires_in,
				now(),
				initiatorOf(auth.user),
			);
			return { plain_token: plainToken, personal_access_token: tokenJson(token) };
		},
	);

	app.get(
		"/api/users/:userId/tokens/:tokenId",
		{
			schema: {
				operationId: "getToken",
				tags,
				summary: "Retrieve a token",
				params: TokenParams,
				querystring: NoQuery,
				response: { 200: json(TokenResponse, "The token"), ...errorResponses(400, 401, 403, 404) },
			},
		},
		async (request) => {
			const user = await tokenOwner(store, authOf(request), request.params.userId);
			const token = await store.getToken(user.id, request.params.tokenId);
			if (!token) throw notFound("token");
			return tokenJson(token);
		},
	);

	app.delete(
		"/api/users/:userId/tokens/:tokenId",
		{
			schema: {
				operationId: "deleteToken",
				tags,
				summary: "Delete a token",
				description:
					"The token stops working at once (deleting the token the request uses is allowed).",
				params: TokenParams,
				querystring: NoQuery,
				response: { 200: json(EmptyObject, "Deleted"), ...errorResponses(400, 401, 403, 404) },
			},
		},
		async (request) => {
			const auth = authOf(request);
			const user = await tokenOwner(store, auth, request.params.userId);
			await deletePersonalAccessToken(
				store,
				user,
				request.params.tokenId,
				now(),
				initiatorOf(auth.user),
			);
			return {};
		},
	);
};

/** /api/users: owner and admin only (registered in the admin scope). */
export const userAdminRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { store, now }) => {
	app.get(
		"/api/users",
		{
			schema: {
				operationId: "listUsers",
				tags: ["Users"],
				summary: "List all users of the account",
				querystring: UserListQuery,
				response: {
					200: json(z.array(UserResponse), "The account's users"),
					...errorResponses(400, 401, 403),
				},
			},
		},
		async (request) => {
			const { user: me, account } = authOf(request);
			const { service_user: serviceUser } = request.query;
			const users = (await store.listUsers(account.id)).filter(
				(u) => serviceUser === undefined || u.isServiceUser === (serviceUser === "true"),
			);
			// The last logins of all of them in one read, not one read per user.
			const lastLogins = await store.read(async (tx) => {
				const out: (Date | null)[] = [];
				for (const u of users) out.push(await lastLogin(tx, u.id));
				return out;
			});
			return users.map((u, i) =>
				userJson(u, { currentUserId: me.id, lastLogin: lastLogins[i] ?? null }),
			);
		},
	);

	app.post(
		"/api/users",
		{
			schema: {
				operationId: "createUser",
				tags: ["Users"],
				summary: "Create a user",
				description:
					"A regular user (email required, unique in the account) or a service user " +
					"(is_service_user, name required). Users sign in with personal access tokens: " +
					"create one with POST /api/users/{userId}/tokens. The owner role cannot be given.",
				querystring: NoQuery,
				body: UserCreateBody,
				response: {
					200: json(UserResponse, "The new user"),
					...errorResponses(400, 401, 403, 409, 413, 415, 422),
				},
			},
		},
		async (request) => {
			const { user: me } = authOf(request);
			const body = request.body;
			const created = await createUser(
				store,
				me,
				{
					name: body.name ?? body.email ?? "",
					email: body.email ?? "",
					role: body.role,
					autoGroups: body.auto_groups,
					isServiceUser: body.is_service_user,
				},
				now(),
				initiatorOf(me),
			);
			return userJson(created, { currentUserId: me.id, lastLogin: null });
		},
	);

	app.put(
		"/api/users/:userId",
		{
			schema: {
				operationId: "updateUser",
				tags: ["Users"],
				summary: "Update a user",
				description:
					"Sets role, auto-groups and blocked state. Only the owner may change the owner, " +
					"who cannot be demoted or blocked; nobody can block themselves; the owner role cannot be given.",
				params: UserIdParams,
				querystring: NoQuery,
				body: UserUpdateBody,
				response: {
					200: json(UserResponse, "The updated user"),
					...errorResponses(400, 401, 403, 404, 413, 415, 422),
				},
			},
		},
		async (request) => {
			const { user: me } = authOf(request);
			const body = request.body;
			const updated = await updateUser(
				store,
				me,
				request.params.userId,
				{ role: body.role, autoGroups: body.auto_groups, blocked: body.is_blocked },
				now(),
				initiatorOf(me),
			);
			return userJson(updated, {
				currentUserId: me.id,
				lastLogin: await lastLogin(store, updated.id),
			});
		},
	);

	app.delete(
		"/api/users/:userId",
		{
			schema: {
				operationId: "deleteUser",
				tags: ["Users"],
				summary: "Delete a user",
				description:
					"The user's tokens stop working at once. The owner cannot be deleted, nor can you delete yourself.",
				params: UserIdParams,
				querystring: NoQuery,
				response: {
					200: json(EmptyObject, "Deleted"),
					...errorResponses(400, 401, 403, 404, 422),
				},
			},
		},
		async (request) => {
			const { user: me } = authOf(request);
			await deleteUser(store, me, request.params.userId, now(), initiatorOf(me));
			return {};
		},
	);
};
