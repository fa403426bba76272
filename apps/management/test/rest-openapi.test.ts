import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiRoutes, RestHarness, type RouteCase } from "./helpers-rest.js";

let h: RestHarness;
// biome-ignore lint/suspicious/noExplicitAny: the document is walked generically
let doc: any;
let routes: RouteCase[];

beforeAll(async () => {
	h = await RestHarness.create();
	const res = await h.request("GET", "/api/openapi.json", { token: null });
	expect(res.status).toBe(200);
	doc = res.json;
	routes = apiRoutes({
		keyId: "k",
		peerId: "p",
		otherPeerId: "q",
		userId: "u",
		tokenId: "t",
		groupId: "g",
		policyId: "pol",
		accountId: "a",
		memberId: "m",
		routeId: "r",
		networkId: "n",
		resourceId: "res",
		routerId: "rtr",
	});
});
afterAll(async () => {
	await h.close();
});

const openApiPath = (pattern: string) => pattern.replace(/:([A-Za-z]+)/g, "{$1}");

describe("OpenAPI document", () => {
	it("is OpenAPI 3 with the Token security scheme, required by default", () => {
		expect(doc.openapi).toBe("3.1.0");
		expect(doc.components.securitySchemes.TokenAuth).toEqual({
			type: "apiKey",
			in: "header",
			name: "Authorization",
			description: expect.stringContaining("Token <token>"),
		});
		expect(doc.security).toEqual([{ TokenAuth: [] }]);
	});

	it("lists exactly every route, the document itself without security", () => {
		const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
			Object.keys(ops as object).map((m) => `${m.toUpperCase()} ${path}`),
		);
		const expected = [
			"GET /api/openapi.json",
			...routes.map((r) => `${r.method} ${openApiPath(r.pattern)}`),
		];
		expect(documented.sort()).toEqual(expected.sort());
		expect(doc.paths["/api/openapi.json"].get.security).toEqual([]);
	});

	it("documents parameters, bodies and responses of every authenticated route", () => {
		for (const route of routes) {
			const op = doc.paths[openApiPath(route.pattern)][route.method.toLowerCase()];
			const where = `${route.method} ${route.pattern}`;
			expect(op.summary, where).toBeTypeOf("string");
			expect(op.tags, where).toHaveLength(1);
			expect(op.security, where).toBeUndefined(); // the global TokenAuth applies
			const pathParams = [...route.pattern.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]);
			const documentedParams = (op.parameters ?? [])
				.filter((p: { in: string }) => p.in === "path")
				.map((p: { name: string }) => p.name);
			expect(documentedParams, where).toEqual(pathParams);
			if (route.body) {
				const schema = op.requestBody.content["application/json"].schema;
				expect(schema.type, where).toBe("object");
				expect(schema.additionalProperties, where).toBe(false);
				expect(Object.keys(schema.properties), where).toEqual(
					expect.arrayContaining(Object.keys(route.body)),
				);
			} else {
				expect(op.requestBody, where).toBeUndefined();
			}
			expect(op.responses["200"].content["application/json"].schema, where).toBeDefined();
			for (const status of ["400", "401"]) {
				expect(
					op.responses[status].content["application/json"].schema,
					`${where} ${status}`,
				).toEqual({
					$ref: "#/components/schemas/Error",
				});
			}
			if (route.adminOnly || route.pattern.includes(":userId")) {
				expect(op.responses["403"], `${where} 403`).toBeDefined();
			}
			if (route.pattern.includes(":")) expect(op.responses["404"], `${where} 404`).toBeDefined();
		}
	});

	it("has named components, every reference resolves, and no unused input copies", () => {
		const names = Object.keys(doc.components.schemas);
		expect(names).toEqual(
			expect.arrayContaining([
				"Error",
				"SetupKey",
				"Peer",
				"User",
				"PersonalAccessToken",
				"PersonalAccessTokenGenerated",
			]),
		);
		expect(names.filter((n) => n.endsWith("Input"))).toEqual([]);
		const refs = [
			...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g),
		].map((m) => m[1]);
		expect(refs.length).toBeGreaterThan(20);
		for (const ref of refs) expect(names, ref).toContain(ref);
		expect(doc.components.schemas.Error.required.sort()).toEqual(["code", "message"]);
	});

	it("describes the answers as they are", async () => {
		const key = await h.createSetupKey({ name: "doc" });
		expect(Object.keys(key).sort()).toEqual(
			Object.keys(doc.components.schemas.SetupKey.properties).sort(),
		);
		const peer = await h.registerPeer(key.key, "doc-peer");
		const peerJson = (await h.request("GET", `/api/peers/${peer.id}`)).json;
		expect(Object.keys(peerJson).sort()).toEqual(
			Object.keys(doc.components.schemas.Peer.properties).sort(),
		);
		const user = (await h.request("GET", "/api/users/current")).json;
		expect(Object.keys(user).sort()).toEqual(
			Object.keys(doc.components.schemas.User.properties).sort(),
		);
	});
});
