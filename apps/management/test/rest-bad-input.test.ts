import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BODY_LIMIT } from "../src/rest/index.js";
import {
	apiRoutes,
	isErrorBody,
	makeTargets,
	type Reply,
	RestHarness,
	type RouteCase,
} from "./helpers-rest.js";

// Bad input never causes a 500, always answers {message, code} with a 4xx,
// and changes nothing. One harness for the whole file: every case checks
// the database is unchanged, so they cannot disturb each other.

let h: RestHarness;
let routes: RouteCase[];
let keyId: string;
let peerId: string;
let groupId: string;

beforeAll(async () => {
	h = await RestHarness.create();
	const targets = await makeTargets(h);
	keyId = targets.keyId;
	peerId = targets.peerId;
	groupId = targets.groupId;
	routes = apiRoutes(targets);
});
afterAll(async () => {
	await h.close();
});

function expectRefused(res: Reply, what: string, statuses: number[] = [400]): void {
	expect(statuses, `${what}: got ${res.status} ${res.text}`).toContain(res.status);
	expect(isErrorBody(res), `${what}: ${res.text}`).toBe(true);
	expect(String(res.headers["content-type"])).toMatch(/^application\/json/);
}

/** Runs `fn` and asserts the database and the sink are unchanged by it. */
async function unchanged(fn: () => Promise<void>): Promise<void> {
	const before = await h.snapshot();
	const events = h.sink.total;
	await fn();
	expect(await h.snapshot()).toBe(before);
	expect(h.sink.total).toBe(events);
}

const isRoutingRoute = (r: RouteCase) =>
	r.pattern.startsWith("/api/routes") || r.pattern.startsWith("/api/networks");

const bodyRoutes = () => routes.filter((r) => r.body !== undefined);

/** Bad route, resource and router bodies: each the route's valid body with one thing wrong. */
function routingBadBodies(): [RouteCase["pattern"], RouteCase["method"], unknown, RegExp][] {
	const route = (over: Record<string, unknown>) => ({
		...routes.find((r) => r.pattern === "/api/routes" && r.method === "POST")!.body,
		...over,
	});
	const resource = (over: Record<string, unknown>) => ({
		...routes.find(
			(r) => r.pattern === "/api/networks/:networkId/resources" && r.method === "POST",
		)!.body,
		...over,
	});
	const router = (over: Record<string, unknown>) => ({
		...routes.find((r) => r.pattern === "/api/networks/:networkId/routers" && r.method === "POST")!
			.body,
		...over,
	});
	return [
		["/api/routes", "POST", route({ network: "10.0.0.0/33" }), /prefix length must be 0-32/],
		["/api/routes", "POST", route({ network: "10.0.0.256/24" }), /not an IPv4 address/],
		["/api/routes", "POST", route({ network: "fd00::/8" }), /IPv6 networks are not supported/],
		[
			"/api/routes",
			"POST",
			route({ network: undefined, domains: ["example.com"] }),
			/domain routes are not supported yet/,
		],
		["/api/routes", "POST", route({ network: undefined }), /body\/network: is required/],
		["/api/routes", "POST", route({ metric: 0 }), /metric must be 1 to 9999/],
		["/api/routes", "POST", route({ metric: 10000 }), /metric must be 1 to 9999/],
		["/api/routes", "POST", route({ network_id: "x".repeat(41) }), /body\/network_id/],
		[
			"/api/routes",
			"POST",
			route({ peer_groups: [groupId] }),
			/either peer or peer_groups, not both/,
		],
		["/api/routes", "POST", route({ peer: undefined }), /give a routing peer/],
		["/api/routes", "POST", route({ groups: [] }), /body\/groups: at least one group/],
		[
			"/api/routes",
			"POST",
			route({ skip_auto_apply: true }),
			/skip_auto_apply applies to exit nodes .* only/,
		],
		["/api/routes", "POST", route({ via: "x" }), /Unrecognized key.*via/],
		["/api/networks", "POST", { name: "" }, /body\/name/],
		[
			"/api/networks/:networkId/resources",
			"POST",
			resource({ address: "db.example.com" }),
			/domain resources are not supported yet/,
		],
		[
			"/api/networks/:networkId/resources",
			"POST",
			resource({ address: "fd00::1" }),
			/IPv6 resources are not supported/,
		],
		[
			"/api/networks/:networkId/resources",
			"POST",
			resource({ address: "10.1.2" }),
			/not an IPv4 address/,
		],
		[
			"/api/networks/:networkId/routers",
			"POST",
			router({ peer_groups: [groupId] }),
			/either peer or peer_groups, not both/,
		],
		[
			"/api/networks/:networkId/routers",
			"POST",
			router({ metric: -1 }),
			/metric must be 1 to 9999/,
		],
	];
}

describe("bad bodies", () => {
	it("missing fields, wrong types and unknown fields are 400s naming the field", async () => {
		const cases: [RouteCase["pattern"], RouteCase["method"], unknown, RegExp][] = [
			["/api/setup-keys", "POST", {}, /body\/name: is required/],
			["/api/setup-keys", "POST", { name: "k" }, /body\/type/],
			[
				"/api/setup-keys",
				"POST",
				{ name: "k", type: "reusable", usage_limit: "5" },
				/body\/usage_limit: expected number, received string/,
			],
			[
				"/api/setup-keys",
				"POST",
				{ name: "k", type: "reusable", usage_limit: -1 },
				/body\/usage_limit/,
			],
			["/api/setup-keys", "POST", { name: "k", type: "forever" }, /body\/type/],
			["/api/setup-keys", "POST", { name: 5, type: "reusable" }, /body\/name: expected string/],
			[
				"/api/setup-keys",
				"POST",
				{ name: "a\u0000b", type: "reusable" },
				/body\/name: must not contain control/,
			],
			["/api/setup-keys", "POST", { name: "x".repeat(256), type: "reusable" }, /body\/name/],
			[
				"/api/setup-keys",
				"POST",
				{ name: "k", type: "reusable", auto_groups: "all" },
				/body\/auto_groups/,
			],
			[
				"/api/setup-keys",
				"POST",
				{ name: "k", type: "reusable", auto_groups: [1] },
				/body\/auto_groups\/0/,
			],
			[
				"/api/setup-keys",
				"POST",
				{ name: "k", type: "reusable", auto_groups: ["../x"] },
				/body\/auto_groups\/0/,
			],
			[
				"/api/setup-keys",
				"POST",
				{ name: "k", type: "reusable", ephemeral: "yes" },
				/body\/ephemeral/,
			],
			[
				"/api/setup-keys",
				"POST",
				{ name: "k", type: "reusable", revoked: true },
				/body\/revoked: a setup key cannot be created revoked/,
			],
			[
				"/api/setup-keys",
				"POST",
				{ name: "k", type: "reusable", allow_extra_dns_labels: true },
				/body\/allow_extra_dns_labels: extra DNS labels are not supported/,
			],
			[
				"/api/setup-keys",
				"POST",
				{ name: "k", type: "reusable", revokd: false },
				/Unrecognized key.*revokd/,
			],
			[
				"/api/setup-keys",
				"POST",
				{ name: "k", type: "reusable", usage_limit: 1e300 },
				/body\/usage_limit/,
			],
			["/api/setup-keys/:keyId", "PUT", {}, /body\/revoked/],
			["/api/setup-keys/:keyId", "PUT", { revoked: true }, /body\/auto_groups: is required/],
			["/api/setup-keys/:keyId", "PUT", { revoked: "true", auto_groups: [] }, /body\/revoked/],
			["/api/setup-keys/:keyId", "PUT", { revoked: true, auto_groups: [], name: "" }, /body\/name/],
			[
				"/api/setup-keys/:keyId",
				"PUT",
				{ revoked: true, auto_groups: [], usage_limit: 987_654 },
				/usage_limit cannot be changed after the key is created/,
			],
			[
				"/api/setup-keys/:keyId",
				"PUT",
				{ revoked: true, auto_groups: [], expires_in: 987_654 },
				/expires_in cannot be changed after the key is created/,
			],
			[
				"/api/setup-keys/:keyId",
				"PUT",
				{ revoked: true, auto_groups: [], ephemeral: true },
				/ephemeral cannot be changed after the key is created/,
			],
			[
				"/api/setup-keys/:keyId",
				"PUT",
				{ revoked: true, auto_groups: [], allow_extra_dns_labels: true },
				/extra DNS labels are not supported/,
			],
			[
				"/api/setup-keys/:keyId",
				"PUT",
				{ revoked: true, auto_groups: [], usage_limits: 1 },
				/Unrecognized key.*usage_limits/,
			],
			["/api/peers/:peerId", "PUT", {}, /body\/name: is required/],
			["/api/peers/:peerId", "PUT", { name: "" }, /body\/name/],
			["/api/peers/:peerId", "PUT", { name: "x".repeat(64) }, /body\/name/],
			["/api/peers/:peerId", "PUT", { name: "ok", ssh_enabled: "true" }, /body\/ssh_enabled/],
			["/api/peers/:peerId", "PUT", { name: "ok", ip: "10.9.9.9" }, /address cannot be chosen/],
			["/api/peers/:peerId", "PUT", { name: "ok", ipv6: "fd00::1" }, /IPv6 .* not supported/],
			[
				"/api/peers/:peerId",
				"PUT",
				{ name: "ok", approval_required: true },
				/peer approval is not supported/,
			],
			[
				"/api/peers/:peerId",
				"PUT",
				{ name: "ok", inactivity_expiration_enabled: true },
				/inactivity expiration is not supported/,
			],
			["/api/peers/:peerId", "PUT", { name: "ok", peerId: "Other0000" }, /peerId must be the id/],
			["/api/peers/:peerId", "PUT", { name: "ok", peer_id: "x" }, /Unrecognized key.*peer_id/],
			["/api/users/:userId/tokens", "POST", { name: "t" }, /body\/expires_in: is required/],
			["/api/users/:userId/tokens", "POST", { name: "t", expires_in: "7" }, /body\/expires_in/],
			["/api/users/:userId/tokens", "POST", { name: ["t"], expires_in: 7 }, /body\/name/],
			...routingBadBodies(),
		];
		await unchanged(async () => {
			for (const [pattern, method, body, message] of cases) {
				const route = routes.find((r) => r.pattern === pattern && r.method === method);
				if (!route) throw new Error(`no route ${method} ${pattern}`);
				const res = await h.request(method, route.url, { body });
				expectRefused(res, `${method} ${pattern} ${JSON.stringify(body).slice(0, 80)}`);
				expect(res.json.message).toMatch(message);
			}
		});
	});

	it("unknown group ids are 422 on POST and PUT", async () => {
		await unchanged(async () => {
			for (const [method, url, body] of [
				[
					"POST",
					"/api/setup-keys",
					{ name: "k", type: "reusable", auto_groups: [groupId, "Unknown000000000000"] },
				],
				[
					"PUT",
					`/api/setup-keys/${keyId}`,
					{ revoked: false, auto_groups: ["Unknown000000000000"] },
				],
				["POST", "/api/groups", { name: "g", peers: [peerId, "Unknown000000000000"] }],
				["PUT", `/api/groups/${groupId}`, { name: "g", peers: ["Unknown000000000000"] }],
				[
					"POST",
					"/api/policies",
					{
						name: "p",
						enabled: true,
						rules: [
							{
								name: "r",
								enabled: true,
								action: "accept",
								bidirectional: false,
								protocol: "all",
								sources: [groupId],
								destinations: ["Unknown000000000000"],
							},
						],
					},
				],
				[
					"POST",
					"/api/users",
					{ name: "x", role: "user", auto_groups: ["Unknown000000000000"], is_service_user: true },
				],
			] as const) {
				expectRefused(await h.request(method, url, { body }), `${method} ${url}`, [422]);
			}
		});
	});

	it("routes clashing with the overlay or another network_id are 409; unknown peers 422", async () => {
		const post = routes.find((r) => r.pattern === "/api/routes" && r.method === "POST")!;
		await unchanged(async () => {
			for (const [over, status, message] of [
				[{ network: "100.64.0.0/10" }, 409, /overlaps the account's overlay range/],
				[
					{ network_id: "other", network: "198.18.200.128/25" },
					409,
					/overlaps 198\.18\.200\.0\/24/,
				],
				[{ network: "198.18.199.0/24" }, 409, /must route the same network/],
				[{ peer: "Unknown000000000000" }, 422, /unknown peer/],
				[{ access_control_groups: ["Unknown000000000000"] }, 422, /unknown group/],
			] as const) {
				const res = await h.request("POST", post.url, { body: { ...post.body, ...over } });
				expectRefused(res, JSON.stringify(over), [status]);
				expect(res.json.message).toMatch(message);
			}
		});
	});

	it("malformed JSON, non-object JSON, empty and oversized bodies on every POST and PUT", async () => {
		const raws: [string, string | Buffer, number[]][] = [
			["malformed", "{name: 'x'}", [400]],
			["truncated", '{"name": "x", "type": "reus', [400]],
			["trailing garbage", '{"name":"x","type":"reusable"} trailing', [400]],
			["two documents", '{"name":"x","type":"reusable"}{"name":"y"}', [400]],
			["empty", "", [400]],
			["whitespace", "  \n ", [400]],
			["null", "null", [400]],
			["array", "[]", [400]],
			["string", '"hello"', [400]],
			["number", "42", [400]],
			["proto pollution", '{"__proto__": {"admin": true}, "name": "x", "type": "reusable"}', [400]],
			[
				"constructor pollution",
				'{"constructor": {"prototype": {"x": 1}}, "name": "x", "type": "reusable"}',
				[400],
			],
			["invalid utf-8", Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), [400]],
			["deep array", `${"[".repeat(30_000)}${"]".repeat(30_000)}`, [400]],
			["deep object", `${'{"a":'.repeat(10_000)}1${"}".repeat(10_000)}`, [400]],
			["huge", JSON.stringify({ name: "x".repeat(BODY_LIMIT), type: "reusable" }), [413]],
			["huge garbage", "x".repeat(BODY_LIMIT * 4), [413]],
		];
		await unchanged(async () => {
			for (const route of bodyRoutes()) {
				for (const [what, raw, statuses] of raws) {
					const res = await h.request(route.method, route.url, { raw });
					expectRefused(res, `${what}: ${route.method} ${route.url}`, statuses);
				}
				const none = await h.request(route.method, route.url);
				expectRefused(none, `no body: ${route.method} ${route.url}`);
			}
		});
	});

	it("anything but application/json is a 415 on every route that takes a body", async () => {
		const types = [
			"text/plain",
			"application/x-www-form-urlencoded",
			"multipart/form-data; boundary=x",
			"application/xml",
			"application/jsonx",
			"application/octet-stream",
			"json",
		];
		await unchanged(async () => {
			for (const route of routes.filter((r) => r.method !== "GET")) {
				for (const type of types) {
					const res = await h.request(route.method, route.url, {
						raw: JSON.stringify(route.body ?? {}),
						headers: { "content-type": type },
					});
					expectRefused(res, `${type}: ${route.method} ${route.url}`, [415]);
				}
			}
		});
	});

	it("application/json with a charset parameter is fine", async () => {
		const res = await h.request("POST", `/api/users/${h.owner.user.id}/tokens`, {
			raw: JSON.stringify({ name: "charset", expires_in: 1 }),
			headers: { "content-type": "application/json; charset=utf-8" },
		});
		expect(res.status).toBe(200);
		await h.request(
			"DELETE",
			`/api/users/${h.owner.user.id}/tokens/${res.json.personal_access_token.id}`,
		);
	});
});

describe("bad ids and URLs", () => {
	const badIds = [
		"x".repeat(65),
		"a%20b",
		"%00",
		"..",
		"%2e%2e",
		"%2F",
		"'%3B%20DROP%20TABLE%20peers%3B--",
		"%C3%BC",
		"*",
		"%",
		"%ZZ",
		"x".repeat(500),
	];

	it("malformed ids are 400 (or 404, or 414 when too long), on every route with an id", async () => {
		await unchanged(async () => {
			for (const route of routes.filter((r) => r.pattern.includes(":"))) {
				for (const bad of badIds) {
					const url = route.pattern.replace(/:[A-Za-z]+/g, bad);
					const res = await h.request(route.method, url, { body: route.body });
					expectRefused(res, `${route.method} ${url}`, [400, 404, 414]);
				}
			}
		});
	});

	it("well-formed ids that name nothing are 404", async () => {
		await unchanged(async () => {
			for (const route of routes.filter((r) => r.pattern.includes(":"))) {
				const url = route.pattern.replace(/:[A-Za-z]+/g, "Nothing0000000000000");
				const res = await h.request(route.method, url, { body: route.body });
				expectRefused(res, `${route.method} ${url}`, [404]);
			}
		});
	});

	it("unknown routes and methods are 404 in the error shape, with or without a token", async () => {
		for (const [method, url] of [
			["GET", "/api/nope"],
			["GET", "/api"],
			["GET", "/"],
			["POST", "/api/peers"],
			["PATCH", "/api/setup-keys"],
			["DELETE", "/api/users"],
			["PATCH", "/api/users/current"],
			["PUT", "/api/groups"],
			["GET", "/api/setup-keys/a/b"],
		] as const) {
			for (const token of [undefined, null]) {
				const res = await h.request(method, url, { token });
				expectRefused(res, `${method} ${url}`, [404]);
			}
		}
	});

	it("bad query strings are 400; unknown parameters are ignored", async () => {
		for (const url of [
			`/api/peers?name=${"x".repeat(300)}`,
			"/api/peers?ip=a&ip=b",
			`/api/peers?ip=${"1".repeat(100)}`,
			"/api/events/audit?limit=0",
			"/api/events/audit?limit=abc",
			"/api/events/audit?limit=100001",
			"/api/events/audit?limit=1&limit=2",
		]) {
			expectRefused(await h.request("GET", url), url);
		}
		expect((await h.request("GET", "/api/peers?unknown=1")).status).toBe(200);
		expect((await h.request("GET", "/api/setup-keys?x=%ZZ")).status).toBeLessThan(500);
	});
});

describe("fuzzing", () => {
	// Chosen when generated (the fixture exists by then), not when the test is declared.
	const knownIds = () =>
		fc.integer({ min: 0, max: 3 }).map((i) => [keyId, peerId, groupId, "Unknown000000000000"][i]!);
	const ruleValue = fc.record(
		{
			name: fc.oneof(fc.constant("r"), fc.string({ maxLength: 5 })),
			enabled: fc.boolean(),
			action: fc.constantFrom("accept", "drop", "allow"),
			bidirectional: fc.oneof(fc.boolean(), fc.constant("yes")),
			protocol: fc.constantFrom("all", "tcp", "udp", "icmp", "sctp"),
			ports: fc.array(fc.oneof(fc.constantFrom("22", "0", "65536", "-1", "8o"), fc.integer()), {
				maxLength: 3,
			}),
			port_ranges: fc.array(
				fc.record({ start: fc.integer({ min: -1, max: 70000 }), end: fc.integer() }),
				{ maxLength: 2 },
			),
			sources: fc.array(knownIds(), { maxLength: 2 }),
			destinations: fc.array(knownIds(), { maxLength: 2 }),
		},
		{ requiredKeys: [] },
	);
	const fieldValue = fc.oneof(
		fc.jsonValue({ maxDepth: 2 }),
		fc.string({ maxLength: 80 }),
		fc.integer(),
		fc.double(),
		fc.boolean(),
		fc.constantFrom(
			"reusable",
			"one-off",
			"",
			" ",
			"\u0000",
			"x".repeat(300),
			"owner",
			"admin",
			"user",
			"tcp",
			"icmp",
			"100.64.0.0/16",
			"10.0.0.0/8",
			"198.18.10.1",
			"300.1.1.1",
			"0.0.0.0/0",
			"198.18.7.0/24",
			"198.18.7.9",
			"fd00::/8",
			"db.example.com",
		),
		fc.array(knownIds(), { maxLength: 3 }),
		fc.array(ruleValue, { maxLength: 2 }),
		knownIds(),
		fc.record(
			{
				peer_login_expiration_enabled: fc.oneof(fc.boolean(), fc.constant(1)),
				peer_login_expiration: fc.integer({ min: -1, max: 20_000_000 }),
				network_range: fc.constantFrom("100.64.0.0/16", "nope", "100.64.0.1/16"),
				regular_users_view_blocked: fc.boolean(),
			},
			{ requiredKeys: [] },
		),
		fc.constant(undefined),
	);
	const fieldNames = fc.constantFrom(
		"name",
		"type",
		"expires_in",
		"auto_groups",
		"usage_limit",
		"ephemeral",
		"allow_extra_dns_labels",
		"revoked",
		"ssh_enabled",
		"login_expiration_enabled",
		"inactivity_expiration_enabled",
		"peers",
		"resources",
		"rules",
		"enabled",
		"description",
		"source_posture_checks",
		"role",
		"is_blocked",
		"is_service_user",
		"email",
		"settings",
		"source_peer_id",
		"destination_peer_id",
		"peer_id",
		"protocol",
		"port",
		"network_id",
		"peer",
		"peer_groups",
		"network",
		"domains",
		"metric",
		"masquerade",
		"groups",
		"keep_route",
		"access_control_groups",
		"skip_auto_apply",
		"address",
		"__proto__",
		"constructor",
		"junk",
	);
	const objectBody = fc
		.dictionary(fieldNames, fieldValue, { maxKeys: 8 })
		.map((o) => JSON.stringify(o));
	const rawBody = fc.oneof(
		objectBody,
		objectBody,
		fc.jsonValue().map((v) => JSON.stringify(v) ?? "null"),
		fc.string({ maxLength: 200 }),
		fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString("latin1")),
	);

	it("POST and PUT bodies: never a 500; a refusal is {message, code} and changes nothing", async () => {
		let accepted = 0;
		for (const route of bodyRoutes()) {
			// Near misses too: the route's valid body with a couple of fields changed or added.
			const nearMiss = fc
				.dictionary(fieldNames, fieldValue, { maxKeys: 2 })
				.map((changes) => JSON.stringify({ ...route.body, ...changes }));
			await fc.assert(
				fc.asyncProperty(fc.oneof(rawBody, nearMiss), async (raw) => {
					const before = await h.snapshot();
					const events = h.sink.total;
					const res = await h.request(route.method, route.url, { raw });
					expect(res.status).toBeLessThan(500);
					if (res.status === 200) {
						accepted++;
						expect(res.json).toBeTypeOf("object");
						// Keep the fixture usable: the peer keeps its name, the key its groups.
						if (route.pattern === "/api/users/:userId/tokens") {
							await h.request("DELETE", `${route.url}/${res.json.personal_access_token.id}`);
						} else if (route.pattern === "/api/setup-keys" && route.method === "POST") {
							await h.request("DELETE", `/api/setup-keys/${res.json.id}`);
						} else if (route.pattern === "/api/groups" && route.method === "POST") {
							await h.request("DELETE", `/api/groups/${res.json.id}`);
						} else if (route.pattern === "/api/policies" && route.method === "POST") {
							await h.request("DELETE", `/api/policies/${res.json.id}`);
						} else if (route.method === "POST" && route.pattern.startsWith("/api/routes")) {
							await h.request("DELETE", `/api/routes/${res.json.id}`);
						} else if (route.method === "POST" && route.pattern.startsWith("/api/networks")) {
							await h.request("DELETE", `${route.url}/${res.json.id}`);
						}
						return;
					}
					// 404: the body names an object (a peer, a group) that does not exist.
					expect([400, 404, 409, 413, 415, 422]).toContain(res.status);
					expect(isErrorBody(res), res.text).toBe(true);
					expect(await h.snapshot()).toBe(before);
					expect(h.sink.total).toBe(events);
				}),
				// The ten routing routes share their shapes (routes, resources, routers):
				// fewer runs each keeps the file inside the suite's time budget.
				{ numRuns: isRoutingRoute(route) ? 80 : 200 },
			);
		}
		// The generators reach the success path as well as the refusals.
		expect(accepted).toBeGreaterThan(0);
	}, 180_000);

	it("ids in paths: never a 500", async () => {
		const idRoutes = routes.filter((r) => r.pattern.includes(":"));
		await fc.assert(
			fc.asyncProperty(
				fc.constantFrom(...idRoutes),
				fc.string({ maxLength: 120 }),
				async (route, id) => {
					const before = await h.snapshot();
					const url = route.pattern.replace(/:[A-Za-z]+/g, encodeURIComponent(id));
					const res = await h.request(route.method, url, { body: route.body });
					expect(res.status, `${route.method} ${url}: ${res.text}`).toBeLessThan(500);
					if (res.status !== 200) {
						expect(isErrorBody(res), res.text).toBe(true);
						expect(await h.snapshot()).toBe(before);
					}
				},
			),
			{ numRuns: 300 },
		);
	}, 120_000);

	it("query strings: never a 500", async () => {
		await fc.assert(
			fc.asyncProperty(
				fc.constantFrom(
					"/api/peers",
					"/api/setup-keys",
					"/api/users",
					"/api/users/current",
					"/api/groups",
					"/api/policies",
					"/api/accounts",
					"/api/events/audit",
				),
				fc.array(fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 300 })), {
					maxLength: 4,
				}),
				async (path, pairs) => {
					const qs = pairs
						.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
						.join("&");
					const res = await h.request("GET", `${path}?${qs}`);
					expect(res.status).toBeLessThan(500);
					if (res.status !== 200) expect(isErrorBody(res), res.text).toBe(true);
				},
			),
			{ numRuns: 200 },
		);
	}, 120_000);

	it("nothing above was logged as an internal error, and no secret was logged", () => {
		expect(h.logs.filter((l) => l.includes('"level":50'))).toEqual([]);
		expect(h.logsContain(h.owner.token)).toBe(false);
	});
});
