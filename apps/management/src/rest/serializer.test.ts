import { describe, expect, it } from "vitest";
import { z } from "zod";
import { AccessIndex } from "../core/policy.js";
import {
	accountFixture,
	peerFixture,
	policyFixture,
	ruleFixture,
	setupKeyFixture,
} from "../domain/fixtures.js";
import type { Group } from "../domain/types.js";
import {
	accessiblePeerJson,
	accountJson,
	eventJson,
	groupJson,
	peerJson,
	policyJson,
	setupKeyJson,
	tokenJson,
	userJson,
} from "./mappers.js";
import {
	AccessiblePeerResponse,
	AccountResponse,
	ErrorBody,
	EventResponse,
	GroupResponse,
	PeerResponse,
	PolicyCheckResponse,
	PolicyResponse,
	SetupKeyResponse,
	TokenResponse,
	UserResponse,
} from "./schemas.js";
import { fastSerializerCompiler } from "./serializer.js";

/** The writer fastify would compile for `schema` as a route's response. */
function writerOf(schema: z.ZodType): (data: unknown) => string {
	return fastSerializerCompiler({ schema, method: "GET", url: "/test" });
}

/** What zod's serializer (fastify-type-provider-zod's, used before) wrote for `value`. */
const zodWrote = (schema: z.ZodType, value: unknown) => JSON.stringify(z.encode(schema, value));

const account = accountFixture();
const at = new Date("2026-12-07T10:00:00.123Z");
const peers = [
	peerFixture({
		id: "p1",
		accountId: account.id,
		name: 'web "one"\n',
		ip: "100.64.0.1",
		wgPublicKey: "k1",
		connected: true,
		system: { os: "linux", osVersion: "12", connectionIp: "203.0.113.9" },
		lastSeen: at,
	}),
	peerFixture({
		id: "p2",
		accountId: account.id,
		name: "db-ü",
		ip: "100.64.0.2",
		wgPublicKey: "k2",
		userId: "u1",
	}),
];
const groups: Group[] = [
	{ id: "all", accountId: account.id, name: "All", issued: "all", peerIds: [] },
	{ id: "web", accountId: account.id, name: "web", issued: "api", peerIds: ["p1"] },
];
const policies = [
	policyFixture({
		id: "pol",
		rules: [
			ruleFixture({
				sources: ["web"],
				destinations: ["all"],
				protocol: "tcp",
				ports: [443],
				portRanges: [{ start: 8000, end: 8100 }],
			}),
		],
	}),
];
const ctx = {
	account,
	groups: new Map(groups.map((g) => [g.id, g])),
	peerGroupIds: new Map([["p1", ["all", "web"]]]),
	access: AccessIndex.build(account, peers, { groups, policies }),
};
const names = new Map(peers.map((p) => [p.id, p.name]));
const user = {
	id: "u1",
	accountId: account.id,
	name: "Ann",
	email: "ann@example.test",
	role: "owner" as const,
	isServiceUser: false,
	blocked: false,
	autoGroups: ["web"],
	createdAt: at,
};
const token = {
	id: "t1",
	userId: "u1",
	name: "ci",
	hashedToken: "h",
	expiresAt: at,
	createdBy: "u1",
	createdAt: at,
	lastUsed: null,
};

/** Every response shape, with the values the mappers give it (optional and null fields both ways). */
const cases: [string, z.ZodType, unknown][] = [
	["peer list", z.array(PeerResponse), peers.map((p) => peerJson(p, ctx))],
	["accessible peer", AccessiblePeerResponse, accessiblePeerJson(peers[0]!, ctx)],
	["group list", z.array(GroupResponse), groups.map((g) => groupJson(g, names, names.size))],
	["policy list", z.array(PolicyResponse), policies.map((p) => policyJson(p, ctx.groups))],
	["setup key", SetupKeyResponse, setupKeyJson(setupKeyFixture(), at, "PLAIN")],
	["user", UserResponse, userJson(user, { currentUserId: "u1", lastLogin: null })],
	[
		"user with permissions",
		UserResponse,
		userJson(user, { currentUserId: "x", lastLogin: at, withPermissions: true }),
	],
	["token never used", TokenResponse, tokenJson(token)],
	["token used", TokenResponse, tokenJson({ ...token, lastUsed: at })],
	["account", AccountResponse, accountJson(account, "u1")],
	[
		"event",
		EventResponse,
		eventJson({
			id: 7,
			accountId: account.id,
			timestamp: at,
			activityCode: "account.create",
			initiatorId: "u1",
			initiatorName: "Ann",
			initiatorEmail: "ann@example.test",
			targetId: account.id,
			meta: { name: 'quote " and \\ backslash' },
		}),
	],
	["policy check, no rule", PolicyCheckResponse, { allowed: false, rule: null, reason: "no rule" }],
	[
		"policy check, a rule",
		PolicyCheckResponse,
		{
			allowed: true,
			rule: { policy_id: "pol", policy_name: "pol", rule_id: "r", rule_name: "r" },
			reason: "allowed",
		},
	],
	["error", ErrorBody, { message: "bad </script>", code: 400 }],
];

describe("fastSerializerCompiler", () => {
	it.each(cases)("writes a %s byte for byte as zod's serializer did", (_name, schema, value) => {
		const written = writerOf(schema)(value);
		expect(written).toBe(zodWrote(schema, value));
		expect(JSON.parse(written)).toEqual(value);
	});

	it("leaves out a field the schema does not have (so a schema missing a field shows in the answer)", () => {
		const write = writerOf(ErrorBody);
		expect(write({ message: "m", code: 400, extra: "x" })).toBe('{"message":"m","code":400}');
	});

	it("leaves out a field the schema does not have inside a nullable object too, as zod did (not a 500)", () => {
		// fast-json-stringify picks the branch of a nullable object by validating
		// against it: a closed object (additionalProperties: false) would refuse
		// the value and the answer would be a 500.
		const schema = z.object({ rule: z.object({ id: z.string() }).nullable() });
		const value = { rule: { id: "r", extra: "x" } };
		expect(writerOf(schema)(value)).toBe('{"rule":{"id":"r"}}');
		expect(writerOf(schema)(value)).toBe(zodWrote(schema, value));
		const rule = { policy_id: "p", policy_name: "p", rule_id: "r", rule_name: "r" };
		const check = { allowed: true, rule: { ...rule, enabled: true }, reason: "allowed" };
		expect(writerOf(PolicyCheckResponse)(check)).toBe(
			zodWrote(PolicyCheckResponse, { ...check, rule }),
		);
	});

	it("refuses an answer without a required field (a 500, as zod's refusal was)", () => {
		const write = writerOf(z.array(PeerResponse));
		const { accessible_peers_count: _, ...incomplete } = peerJson(peers[0]!, ctx);
		expect(() => write([incomplete])).toThrow(/accessible_peers_count/);
	});
});
