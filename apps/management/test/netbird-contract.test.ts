import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv, type ValidateFunction } from "ajv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACTIVITY_TEXT } from "../src/core/audit.js";
import { type Reply, RestHarness } from "./helpers-rest.js";

// Starling's REST answers against NetBird's own response schemas (reduced to
// field names, types and required fields in netbird-contract/*.json; each
// file names the NetBird version it was read from). Every resource the two
// APIs share is exercised through list, get, create and update, with two
// real peers registered, so that a field NetBird's clients rely on cannot go
// missing, change type, or a code leave NetBird's vocabulary unnoticed.

const FIXTURES = join(import.meta.dirname, "netbird-contract");

const ajv = new Ajv({ allErrors: true, strict: true });
// The formats NetBird's schemas use for the fields Starling answers.
ajv.addFormat("date-time", /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
ajv.addFormat("cidr", /^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/);

type Resource =
	| "peer"
	| "peer-batch"
	| "accessible-peer"
	| "group"
	| "policy"
	| "setup-key"
	| "user"
	| "personal-access-token"
	| "personal-access-token-generated"
	| "account"
	| "event"
	| "route"
	| "network"
	| "network-resource"
	| "network-router";

const schemas = new Map<string, object>();
const validators = new Map<string, ValidateFunction>();
for (const file of readdirSync(FIXTURES).filter((f) => f.endsWith(".json"))) {
	const name = file.replace(/\.json$/, "");
	const schema = JSON.parse(readFileSync(join(FIXTURES, file), "utf8")) as object;
	schemas.set(name, schema);
	validators.set(name, ajv.compile(schema));
}

/** Validation errors of `value` against NetBird's schema of `resource` (empty: valid). */
function violations(resource: Resource, value: unknown): string[] {
	const validate = validators.get(resource);
	if (!validate) throw new Error(`no fixture for ${resource}`);
	if (validate(value)) return [];
	return (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}`);
}

/** Operations checked so far ("GET /api/peers"), compared with SHARED at the end. */
const checked = new Set<string>();

/** Asserts a 200 whose body (or each item, `many`) validates as `resource`. */
function expectContract(
	operation: string,
	res: Reply,
	resource: Resource,
	opts: { many?: boolean; minItems?: number } = {},
): void {
	expect(res.status, `${operation}: ${res.text.slice(0, 300)}`).toBe(200);
	const items: unknown[] = opts.many ? res.json : [res.json];
	if (opts.many) {
		expect(Array.isArray(res.json), operation).toBe(true);
		expect(items.length, `${operation} answers enough items to check`).toBeGreaterThanOrEqual(
			opts.minItems ?? 1,
		);
	}
	for (const item of items) expect(violations(resource, item), operation).toEqual([]);
	checked.add(operation);
}

/**
 * Creates an item of `collection` and checks the answers of its create, list
 * (the new item and one made before), get and update; `update` makes the PUT
 * body from the created item.
 */
async function expectCreateListGetUpdate(
	collection: string,
	idParam: string,
	resource: Resource,
	create: object,
	// biome-ignore lint/suspicious/noExplicitAny: the created item is JSON, read field by field
	update: (created: any) => object,
): Promise<void> {
	const base = `/api/${collection}`;
	// Operations are named by pattern: a network's id in the path is {networkId}.
	const pattern = base.replace(/^\/api\/networks\/[^/]+\//, "/api/networks/{networkId}/");
	const created = await h.request("POST", base, { body: create });
	expectContract(`POST ${pattern}`, created, resource);
	const list = await h.request("GET", base);
	expectContract(`GET ${pattern}`, list, resource, { many: true, minItems: 2 });
	const item = `${base}/${created.json.id}`;
	expectContract(`GET ${pattern}/{${idParam}}`, await h.request("GET", item), resource);
	const updated = await h.request("PUT", item, { body: update(created.json) });
	expectContract(`PUT ${pattern}/{${idParam}}`, updated, resource);
}

/** Every operation of NetBird's API that Starling implements too. */
const SHARED = [
	"GET /api/peers",
	"GET /api/peers/{peerId}",
	"PUT /api/peers/{peerId}",
	"GET /api/peers/{peerId}/accessible-peers",
	"GET /api/groups",
	"POST /api/groups",
	"GET /api/groups/{groupId}",
	"PUT /api/groups/{groupId}",
	"GET /api/policies",
	"POST /api/policies",
	"GET /api/policies/{policyId}",
	"PUT /api/policies/{policyId}",
	"GET /api/setup-keys",
	"POST /api/setup-keys",
	"GET /api/setup-keys/{keyId}",
	"PUT /api/setup-keys/{keyId}",
	"GET /api/users",
	"POST /api/users",
	"PUT /api/users/{userId}",
	"GET /api/users/current",
	"GET /api/users/{userId}/tokens",
	"POST /api/users/{userId}/tokens",
	"GET /api/users/{userId}/tokens/{tokenId}",
	"GET /api/accounts",
	"PUT /api/accounts/{accountId}",
	"GET /api/events/audit",
	"GET /api/routes",
	"POST /api/routes",
	"GET /api/routes/{routeId}",
	"PUT /api/routes/{routeId}",
	"GET /api/networks",
	"POST /api/networks",
	"GET /api/networks/{networkId}",
	"PUT /api/networks/{networkId}",
	"GET /api/networks/resources",
	"GET /api/networks/routers",
	"GET /api/networks/{networkId}/resources",
	"POST /api/networks/{networkId}/resources",
	"GET /api/networks/{networkId}/resources/{resourceId}",
	"PUT /api/networks/{networkId}/resources/{resourceId}",
	"GET /api/networks/{networkId}/routers",
	"POST /api/networks/{networkId}/routers",
	"GET /api/networks/{networkId}/routers/{routerId}",
	"PUT /api/networks/{networkId}/routers/{routerId}",
];

let h: RestHarness;
let peerIds: string[];

beforeAll(async () => {
	h = await RestHarness.create();
	// Two real peers, registered the way an agent's first login does.
	const key = await h.createSetupKey({ name: "contract" });
	peerIds = [
		(await h.registerPeer(key.key, "web-1")).id,
		(await h.registerPeer(key.key, "db-1")).id,
	];
});
afterAll(async () => {
	await h.close();
});

describe("NetBird's response schemas", () => {
	it("peers: list, get, update, accessible peers", async () => {
		const [web, db] = peerIds as [string, string];
		expectContract("GET /api/peers", await h.request("GET", "/api/peers"), "peer-batch", {
			many: true,
			minItems: 2,
		});
		expectContract("GET /api/peers/{peerId}", await h.request("GET", `/api/peers/${web}`), "peer");
		const current = (await h.request("GET", `/api/peers/${web}`)).json;
		// The body NetBird's dashboard sends (PeerProvider's update).
		const updated = await h.request("PUT", `/api/peers/${web}`, {
			body: {
				peerId: web,
				name: "web-01",
				ssh_enabled: true,
				login_expiration_enabled: current.login_expiration_enabled,
				inactivity_expiration_enabled: current.inactivity_expiration_enabled,
				ip: current.ip,
			},
		});
		expectContract("PUT /api/peers/{peerId}", updated, "peer");
		expect(updated.json).toMatchObject({ name: "web-01", ssh_enabled: true });
		const accessible = await h.request("GET", `/api/peers/${web}/accessible-peers`);
		expectContract("GET /api/peers/{peerId}/accessible-peers", accessible, "accessible-peer", {
			many: true,
		});
		expect(accessible.json.map((p: { id: string }) => p.id)).toEqual([db]);
	});

	it("groups: list, create, get, update", async () => {
		await expectCreateListGetUpdate(
			"groups",
			"groupId",
			"group",
			{ name: "web", peers: [peerIds[0]] },
			() => ({ name: "web", peers: peerIds, resources: [] }),
		);
	});

	it("policies: list, create, get, update", async () => {
		const all = await h.allGroupId();
		const rule = {
			name: "ssh",
			description: "",
			enabled: true,
			action: "accept",
			bidirectional: false,
			protocol: "tcp",
			ports: ["22"],
			port_ranges: [{ start: 8000, end: 8080 }],
			sources: [all],
			destinations: [all],
		};
		const policy = { name: "ssh", description: "", enabled: true, source_posture_checks: [] };
		await expectCreateListGetUpdate(
			"policies",
			"policyId",
			"policy",
			{ ...policy, rules: [rule] },
			// The body NetBird's dashboard sends (PoliciesProvider's update).
			(created) => ({ ...policy, query: "", rules: [{ ...rule, id: created.rules[0].id }] }),
		);
	});

	it("setup keys: list, create, get, update; never used and used", async () => {
		// The body NetBird's dashboard sends (SetupKeyModal) carries revoked.
		const created = await h.request("POST", "/api/setup-keys", {
			body: {
				name: "fresh",
				type: "one-off",
				expires_in: 86_400,
				revoked: false,
				auto_groups: [],
				usage_limit: 0,
				ephemeral: false,
				allow_extra_dns_labels: false,
			},
		});
		expectContract("POST /api/setup-keys", created, "setup-key");
		expect(created.json.last_used).toBe("0001-01-01T00:00:00Z");
		const list = await h.request("GET", "/api/setup-keys");
		expectContract("GET /api/setup-keys", list, "setup-key", { many: true, minItems: 2 });
		// The key the peers registered with has been used; the new one has not.
		expect(
			list.json.map((k: { last_used: string }) => k.last_used === "0001-01-01T00:00:00Z"),
		).toEqual(expect.arrayContaining([true, false]));
		const id = created.json.id;
		const got = await h.request("GET", `/api/setup-keys/${id}`);
		expectContract("GET /api/setup-keys/{keyId}", got, "setup-key");
		// The body NetBird's dashboard sends (SetupKeyGroupsCell): the key's current values.
		expectContract(
			"PUT /api/setup-keys/{keyId}",
			await h.request("PUT", `/api/setup-keys/${id}`, {
				body: {
					name: got.json.name,
					type: got.json.type,
					revoked: false,
					auto_groups: [],
					usage_limit: got.json.usage_limit,
					ephemeral: got.json.ephemeral,
					allow_extra_dns_labels: got.json.allow_extra_dns_labels,
				},
			}),
			"setup-key",
		);
	});

	it("users: list, create, update, current", async () => {
		const created = await h.request("POST", "/api/users", {
			body: { name: "ci", role: "user", auto_groups: [], is_service_user: true },
		});
		expectContract("POST /api/users", created, "user");
		// Never logged in: NetBird's zero time, not null.
		expect(created.json.last_login).toBe("0001-01-01T00:00:00Z");
		expectContract("GET /api/users", await h.request("GET", "/api/users"), "user", {
			many: true,
			minItems: 2,
		});
		expectContract(
			"PUT /api/users/{userId}",
			await h.request("PUT", `/api/users/${created.json.id}`, {
				body: { role: "admin", auto_groups: [], is_blocked: false },
			}),
			"user",
		);
		const current = await h.request("GET", "/api/users/current");
		expectContract("GET /api/users/current", current, "user");
		expect(current.json.permissions).toBeDefined();
	});

	it("tokens: create, list, get; never used and used", async () => {
		const userId = h.owner.user.id;
		const created = await h.request("POST", `/api/users/${userId}/tokens`, {
			body: { name: "ci", expires_in: 30 },
		});
		expectContract("POST /api/users/{userId}/tokens", created, "personal-access-token-generated");
		const list = await h.request("GET", `/api/users/${userId}/tokens`);
		expectContract("GET /api/users/{userId}/tokens", list, "personal-access-token", {
			many: true,
			minItems: 2,
		});
		// The owner's token has been used (this request); the new one has not: NetBird omits it.
		const lastUsed = list.json.map((t: { last_used?: string }) => t.last_used === undefined);
		expect(lastUsed).toEqual(expect.arrayContaining([true, false]));
		expectContract(
			"GET /api/users/{userId}/tokens/{tokenId}",
			await h.request(
				"GET",
				`/api/users/${userId}/tokens/${created.json.personal_access_token.id}`,
			),
			"personal-access-token",
		);
	});

	it("accounts: list, update", async () => {
		const list = await h.request("GET", "/api/accounts");
		expectContract("GET /api/accounts", list, "account", { many: true });
		// NetBird's dashboard sends the settings it read back, whole.
		expectContract(
			"PUT /api/accounts/{accountId}",
			await h.request("PUT", `/api/accounts/${h.account.id}`, {
				body: {
					settings: { ...list.json[0].settings, peer_login_expiration_enabled: true },
					onboarding: list.json[0].onboarding,
				},
			}),
			"account",
		);
	});

	it("routes: list, create, get, update; by peer and by peer groups", async () => {
		const all = await h.allGroupId();
		const route = {
			description: "office",
			network_id: "office",
			enabled: true,
			network: "198.18.10.0/24",
			metric: 9999,
			masquerade: true,
			groups: [all],
			keep_route: true,
		};
		await h.request("POST", "/api/routes", { body: { ...route, peer_groups: [all] } });
		await expectCreateListGetUpdate(
			"routes",
			"routeId",
			"route",
			{ ...route, peer: peerIds[0], access_control_groups: [] },
			() => ({ ...route, peer: peerIds[1], metric: 10 }),
		);
	});

	it("networks with resources and routers: list, create, get, update", async () => {
		const all = await h.allGroupId();
		await h.request("POST", "/api/networks", { body: { name: "first" } });
		await expectCreateListGetUpdate(
			"networks",
			"networkId",
			"network",
			{ name: "office", description: "hq" },
			() => ({ name: "office 2", description: "" }),
		);
		const net = (await h.request("GET", "/api/networks")).json[1].id;
		const resource = {
			name: "db",
			description: "",
			address: "198.18.20.5",
			enabled: true,
			groups: [all],
		};
		await h.request("POST", `/api/networks/${net}/resources`, {
			body: { ...resource, name: "lan", address: "198.18.21.0/24" },
		});
		await expectCreateListGetUpdate(
			`networks/${net}/resources`,
			"resourceId",
			"network-resource",
			resource,
			() => ({ ...resource, address: "198.18.20.6/32" }),
		);
		const router = { metric: 100, masquerade: true, enabled: true };
		await h.request("POST", `/api/networks/${net}/routers`, {
			body: { ...router, peer_groups: [all] },
		});
		await expectCreateListGetUpdate(
			`networks/${net}/routers`,
			"routerId",
			"network-router",
			{ ...router, peer: peerIds[0] },
			() => ({ ...router, peer: peerIds[1], metric: 5 }),
		);
		expectContract(
			"GET /api/networks/resources",
			await h.request("GET", "/api/networks/resources"),
			"network-resource",
			{ many: true, minItems: 2 },
		);
		expectContract(
			"GET /api/networks/routers",
			await h.request("GET", "/api/networks/routers"),
			"network-router",
			{ many: true, minItems: 2 },
		);
	});

	it("audit events, with every activity code Starling has recorded above", async () => {
		// A deletion, so that a peer removal is among the events too.
		expect((await h.request("DELETE", `/api/peers/${peerIds[1]}`)).status).toBe(200);
		const events = await h.request("GET", "/api/events/audit");
		expectContract("GET /api/events/audit", events, "event", { many: true, minItems: 10 });
		expect(events.json.map((e: { activity_code: string }) => e.activity_code)).toContain(
			"user.peer.delete",
		);
	});

	it("covered every operation the two APIs share", () => {
		expect([...checked].sort()).toEqual([...SHARED].sort());
	});
});

describe("the check itself", () => {
	it("fails an answer that lacks a required field or has a wrong type", async () => {
		const peer = (await h.request("GET", `/api/peers/${peerIds[0]}`)).json;
		expect(violations("peer", peer)).toEqual([]);
		const { created_at: _, ...withoutCreatedAt } = peer;
		expect(violations("peer", withoutCreatedAt)).toEqual([
			"/ must have required property 'created_at'",
		]);
		expect(violations("peer", { ...peer, geoname_id: "0" })).toEqual([
			"/geoname_id must be integer",
		]);
		const key = (await h.request("GET", "/api/setup-keys")).json[0];
		expect(violations("setup-key", { ...key, last_used: null })).toEqual([
			"/last_used must be string",
		]);
		const event = (await h.request("GET", "/api/events/audit")).json[0];
		expect(violations("event", { ...event, activity_code: "peer.delete" })).toEqual([
			"/activity_code must be equal to one of the allowed values",
		]);
	});

	it("every activity code Starling can record is one of NetBird's", () => {
		const event = schemas.get("event") as {
			properties: { activity_code: { enum: string[] } };
		};
		const netbird = new Set(event.properties.activity_code.enum);
		expect(Object.keys(ACTIVITY_TEXT).filter((code) => !netbird.has(code))).toEqual([]);
	});

	it("every fixture names the NetBird version it was read from", () => {
		expect(schemas.size).toBe(15);
		for (const [name, schema] of schemas) {
			expect((schema as { $comment?: string }).$comment, name).toMatch(
				/NetBird v\d+\.\d+\.\d+.*commit [0-9a-f]{40}/,
			);
		}
	});
});
