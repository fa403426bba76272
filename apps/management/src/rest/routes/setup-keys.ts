import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { initiatorOf } from "../../app/audit.js";
import { AppError, notFound } from "../../app/errors.js";
import {
	assertNotUnrevoking,
	createSetupKey,
	deleteSetupKey,
	updateSetupKey,
} from "../../app/setup-keys.js";
import type { SetupKey } from "../../domain/types.js";
import { authOf } from "../auth.js";
import { setupKeyJson } from "../mappers.js";
import {
	EmptyObject,
	errorResponses,
	json,
	NoQuery,
	SetupKeyCreateBody,
	SetupKeyIdParams,
	SetupKeyResponse,
	SetupKeyUpdateBody,
} from "../schemas.js";
import { type RouteDeps, unique } from "./deps.js";

const tags = ["Setup Keys"];

/** The key's lifetime as `expires_in` gave it at creation (0: never expires). */
function expiresInOf(key: SetupKey): number {
	return key.expiresAt ? Math.round((key.expiresAt.getTime() - key.createdAt.getTime()) / 1000) : 0;
}

/**
 * NetBird's dashboard sends the creation-time fields of a key back with its
 * current values when it updates the key: those are accepted; another value
 * would be a change that cannot happen, so it is refused (400).
 */
function assertFixedFieldsUnchanged(
	key: SetupKey,
	body: { type?: string; expires_in?: number; usage_limit?: number; ephemeral?: boolean },
): void {
	const fixed: [string, unknown, unknown][] = [
		["type", body.type, key.type],
		["expires_in", body.expires_in, expiresInOf(key)],
		["usage_limit", body.usage_limit, key.usageLimit],
		["ephemeral", body.ephemeral, key.ephemeral],
	];
	for (const [field, sent, current] of fixed) {
		if (sent !== undefined && sent !== current) {
			throw new AppError(
				400,
				`${field} cannot be changed after the key is created (it is ${JSON.stringify(current)})`,
			);
		}
	}
}

/** /api/setup-keys: owner and admin only (registered in the admin scope). */
export const setupKeyRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { store, now }) => {
	app.get(
		"/api/setup-keys",
		{
			schema: {
				operationId: "listSetupKeys",
				tags,
				summary: "List all setup keys",
				querystring: NoQuery,
				response: {
					200: json(z.array(SetupKeyResponse), "The account's setup keys (keys masked)"),
					...errorResponses(400, 401, 403),
				},
			},
		},
		async (request) => {
			const { account } = authOf(request);
			const at = now();
			return (await store.listSetupKeys(account.id)).map((k) => setupKeyJson(k, at));
		},
	);

	app.post(
		"/api/setup-keys",
		{
			schema: {
				operationId: "createSetupKey",
				tags,
				summary: "Create a setup key",
				description:
					"Answers the new key with its plain `key`: the only time it is shown (only a hash is stored). " +
					"expires_in: 0 = never expires, otherwise 60 to 31536000 seconds.",
				querystring: NoQuery,
				body: SetupKeyCreateBody,
				response: {
					200: json(SetupKeyResponse, "The new setup key, with its plain key"),
					...errorResponses(400, 401, 403, 413, 415, 422),
				},
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			const body = request.body;
			const at = now();
			const { plainKey, key } = await createSetupKey(
				store,
				account.id,
				{
					name: body.name,
					type: body.type,
					expiresInSeconds: body.expires_in,
					autoGroups: unique(body.auto_groups),
					usageLimit: body.usage_limit,
					ephemeral: body.ephemeral,
				},
				at,
				initiatorOf(user),
			);
			return setupKeyJson(key, at, plainKey);
		},
	);

	app.get(
		"/api/setup-keys/:keyId",
		{
			schema: {
				operationId: "getSetupKey",
				tags,
				summary: "Retrieve a setup key",
				params: SetupKeyIdParams,
				querystring: NoQuery,
				response: {
					200: json(SetupKeyResponse, "The setup key (key masked)"),
					...errorResponses(400, 401, 403, 404),
				},
			},
		},
		async (request) => {
			const { account } = authOf(request);
			const key = await store.getSetupKey(account.id, request.params.keyId);
			if (!key) throw notFound("setup key");
			return setupKeyJson(key, now());
		},
	);

	app.put(
		"/api/setup-keys/:keyId",
		{
			schema: {
				operationId: "updateSetupKey",
				tags,
				summary: "Update a setup key",
				description:
					"Sets its auto-groups (and optionally its name); `revoked: true` revokes it. " +
					"type, expires_in, usage_limit and ephemeral are fixed at creation: they may be sent with their " +
					"current values (as NetBird's dashboard does), another value is a 400. " +
					"A revoked key stays revoked: `revoked: false` on a revoked key is a 422.",
				params: SetupKeyIdParams,
				querystring: NoQuery,
				body: SetupKeyUpdateBody,
				response: {
					200: json(SetupKeyResponse, "The updated setup key (key masked)"),
					...errorResponses(400, 401, 403, 404, 413, 415, 422),
				},
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			const { keyId } = request.params;
			const body = request.body;
			const existing = await store.getSetupKey(account.id, keyId);
			if (!existing) throw notFound("setup key");
			assertFixedFieldsUnchanged(existing, body);
			assertNotUnrevoking(existing, body.revoked);
			const at = now();
			// revoked: false never reaches the store, so that a concurrent revoke cannot be undone.
			const updated = await updateSetupKey(
				store,
				account.id,
				keyId,
				{ revoke: body.revoked, autoGroups: unique(body.auto_groups), name: body.name },
				at,
				initiatorOf(user),
			);
			return setupKeyJson(updated, at);
		},
	);

	app.delete(
		"/api/setup-keys/:keyId",
		{
			schema: {
				operationId: "deleteSetupKey",
				tags,
				summary: "Delete a setup key",
				description: "Peers registered with it stay registered.",
				params: SetupKeyIdParams,
				querystring: NoQuery,
				response: { 200: json(EmptyObject, "Deleted"), ...errorResponses(400, 401, 403, 404) },
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			await deleteSetupKey(store, account.id, request.params.keyId, now(), initiatorOf(user));
			return {};
		},
	);
};
