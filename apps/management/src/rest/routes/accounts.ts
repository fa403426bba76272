import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { updateAccount } from "../../app/accounts.js";
import { initiatorOf } from "../../app/audit.js";
import { AppError, notFound } from "../../app/errors.js";
import type { Account } from "../../domain/types.js";
import type { Store } from "../../store/store.js";
import { authOf } from "../auth.js";
import { accountJson } from "../mappers.js";
import {
	AccountIdParams,
	AccountResponse,
	AccountUpdateBody,
	errorResponses,
	json,
	NoQuery,
} from "../schemas.js";
import type { RouteDeps } from "./deps.js";

const tags = ["Accounts"];

async function ownerOf(store: Store, account: Account): Promise<string> {
	return (await store.listUsers(account.id)).find((u) => u.role === "owner")?.id ?? "";
}

/** /api/accounts: owner and admin only (registered in the admin scope). */
export const accountRoutes: FastifyPluginAsyncZod<RouteDeps> = async (
	app,
	{ store, sink, now, networkPool },
) => {
	app.get(
		"/api/accounts",
		{
			schema: {
				operationId: "listAccounts",
				tags,
				summary: "List accounts",
				description: "The token's own account: nothing of another account is visible.",
				querystring: NoQuery,
				response: {
					200: json(z.array(AccountResponse), "The caller's account"),
					...errorResponses(400, 401, 403),
				},
			},
		},
		async (request) => {
			const { account } = authOf(request);
			return [accountJson(account, await ownerOf(store, account))];
		},
	);

	app.get(
		"/api/accounts/:accountId",
		{
			schema: {
				operationId: "getAccount",
				tags,
				summary: "Retrieve the account",
				params: AccountIdParams,
				querystring: NoQuery,
				response: {
					200: json(AccountResponse, "The account"),
					...errorResponses(400, 401, 403, 404),
				},
			},
		},
		async (request) => {
			const { account } = authOf(request);
			if (request.params.accountId !== account.id) throw notFound("account");
			return accountJson(account, await ownerOf(store, account));
		},
	);

	app.put(
		"/api/accounts/:accountId",
		{
			schema: {
				operationId: "updateAccount",
				tags,
				summary: "Update the account's settings",
				description:
					"Peer login expiration (enabled, seconds) and the network range. The network range can " +
					`change only while the account has no peers (422 otherwise), must lie in the installation's ` +
					"range (STARLING_NETWORK_RANGE) and must not overlap another account's (409). " +
					"Every other setting of NetBird's is accepted with the value Starling has (its feature off, " +
					"the current DNS domain); another value is a 400 that names what is not supported.",
				params: AccountIdParams,
				querystring: NoQuery,
				body: AccountUpdateBody,
				response: {
					200: json(AccountResponse, "The updated account"),
					...errorResponses(400, 401, 403, 404, 409, 413, 415, 422),
				},
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			if (request.params.accountId !== account.id) throw notFound("account");
			const s = request.body.settings;
			if (s.dns_domain !== undefined && s.dns_domain !== account.dnsDomain) {
				throw new AppError(
					400,
					`the DNS domain is set by the installation: it stays ${account.dnsDomain} (send it or leave dns_domain out)`,
				);
			}
			const updated = await updateAccount(
				store,
				sink,
				account,
				{
					settings: {
						peerLoginExpirationEnabled: s.peer_login_expiration_enabled,
						peerLoginExpirationSeconds: s.peer_login_expiration,
					},
					network: s.network_range,
				},
				networkPool,
				now(),
				initiatorOf(user),
			);
			return accountJson(updated, await ownerOf(store, updated));
		},
	);
};
