import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { initiatorOf } from "../../app/audit.js";
import { notFound } from "../../app/errors.js";
import {
	checkPolicy,
	createPolicy,
	deletePolicy,
	type PolicyInput,
	updatePolicy,
} from "../../app/policies.js";
import type { Policy } from "../../domain/types.js";
import type { Store } from "../../store/store.js";
import { authOf } from "../auth.js";
import { policyJson } from "../mappers.js";
import {
	EmptyObject,
	errorResponses,
	json,
	NoQuery,
	PolicyBody,
	PolicyCheckBody,
	PolicyCheckResponse,
	PolicyIdParams,
	PolicyResponse,
} from "../schemas.js";
import { type RouteDeps, unique } from "./deps.js";

const tags = ["Policies"];

function toInput(body: z.output<typeof PolicyBody>): PolicyInput {
	return {
		name: body.name,
		description: body.description,
		enabled: body.enabled,
		rules: body.rules.map((r) => ({
			id: r.id,
			name: r.name,
			description: r.description,
			enabled: r.enabled,
			action: "accept",
			bidirectional: r.bidirectional,
			protocol: r.protocol,
			ports: unique(r.ports.map(Number)),
			portRanges: r.port_ranges.map((p) => ({ start: p.start, end: p.end })),
			sources: unique(r.sources),
			destinations: unique(r.destinations),
		})),
	};
}

async function render(store: Store, policy: Policy) {
	const groups = new Map((await store.listGroups(policy.accountId)).map((g) => [g.id, g]));
	return policyJson(policy, groups);
}

/** /api/policies: owner and admin only (registered in the admin scope). */
export const policyRoutes: FastifyPluginAsyncZod<RouteDeps> = async (
	app,
	{ store, sink, now, listings },
) => {
	app.get(
		"/api/policies",
		{
			schema: {
				operationId: "listPolicies",
				tags,
				summary: "List all policies",
				querystring: NoQuery,
				response: {
					200: json(z.array(PolicyResponse), "The account's policies, oldest first"),
					...errorResponses(400, 401, 403),
				},
			},
		},
		async (request) => {
			const { account } = authOf(request);
			return listings.policies(account.id);
		},
	);

	app.post(
		"/api/policies",
		{
			schema: {
				operationId: "createPolicy",
				tags,
				summary: "Create a policy",
				description:
					"Peers of a rule's source groups may open connections to peers of its destination " +
					"groups with the rule's protocol and ports (both ways when bidirectional). Peers that " +
					"no enabled rule connects do not see each other. Groups must exist (422).",
				querystring: NoQuery,
				body: PolicyBody,
				response: {
					200: json(PolicyResponse, "The new policy"),
					...errorResponses(400, 401, 403, 413, 415, 422),
				},
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			const policy = await createPolicy(
				store,
				sink,
				account.id,
				toInput(request.body),
				initiatorOf(user),
				now(),
			);
			return render(store, policy);
		},
	);

	app.post(
		"/api/policies/check",
		{
			schema: {
				operationId: "checkPolicy",
				tags,
				summary: "Check a connection against the policies",
				description:
					"Would the account's policies, as they are now, let the source peer open a connection " +
					"to the destination peer with this protocol and port? Answers the first allowing rule " +
					"(in policy order) and why. Changes nothing. Not part of NetBird's API.",
				querystring: NoQuery,
				body: PolicyCheckBody,
				response: {
					200: json(PolicyCheckResponse, "The verdict"),
					...errorResponses(400, 401, 403, 404, 413, 415),
				},
			},
		},
		async (request) => {
			const { account } = authOf(request);
			const body = request.body;
			const result = await checkPolicy(store, account, {
				sourcePeerId: body.source_peer_id,
				destinationPeerId: body.destination_peer_id,
				protocol: body.protocol,
				port: body.port ?? 0,
			});
			return {
				allowed: result.allowed,
				rule: result.rule && {
					policy_id: result.rule.policyId,
					policy_name: result.rule.policyName,
					rule_id: result.rule.ruleId,
					rule_name: result.rule.ruleName,
				},
				reason: result.reason,
			};
		},
	);

	app.get(
		"/api/policies/:policyId",
		{
			schema: {
				operationId: "getPolicy",
				tags,
				summary: "Retrieve a policy",
				params: PolicyIdParams,
				querystring: NoQuery,
				response: {
					200: json(PolicyResponse, "The policy"),
					...errorResponses(400, 401, 403, 404),
				},
			},
		},
		async (request) => {
			const { account } = authOf(request);
			const policy = await store.getPolicy(account.id, request.params.policyId);
			if (!policy) throw notFound("policy");
			return render(store, policy);
		},
	);

	app.put(
		"/api/policies/:policyId",
		{
			schema: {
				operationId: "updatePolicy",
				tags,
				summary: "Update a policy",
				description:
					"Replaces name, description, enabled and rules. Rules given with the id of one of the " +
					"policy's rules keep it; rules without an id are new. Agents whose access changes get " +
					"new maps within seconds.",
				params: PolicyIdParams,
				querystring: NoQuery,
				body: PolicyBody,
				response: {
					200: json(PolicyResponse, "The updated policy"),
					...errorResponses(400, 401, 403, 404, 413, 415, 422),
				},
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			const policy = await updatePolicy(
				store,
				sink,
				account.id,
				request.params.policyId,
				toInput(request.body),
				initiatorOf(user),
				now(),
			);
			return render(store, policy);
		},
	);

	app.delete(
		"/api/policies/:policyId",
		{
			schema: {
				operationId: "deletePolicy",
				tags,
				summary: "Delete a policy",
				description: "The Default policy may be deleted (or disabled) like any other.",
				params: PolicyIdParams,
				querystring: NoQuery,
				response: { 200: json(EmptyObject, "Deleted"), ...errorResponses(400, 401, 403, 404) },
			},
		},
		async (request) => {
			const { account, user } = authOf(request);
			await deletePolicy(
				store,
				sink,
				account.id,
				request.params.policyId,
				initiatorOf(user),
				now(),
			);
			return {};
		},
	);
};
