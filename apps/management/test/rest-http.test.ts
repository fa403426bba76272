import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BODY_LIMIT } from "../src/rest/index.js";
import { RestHarness } from "./helpers-rest.js";

// The API over a real listening socket, with fetch.

let h: RestHarness;
let base: string;
let port: number;

beforeAll(async () => {
	h = await RestHarness.create();
	base = await h.app.listen({ host: "127.0.0.1", port: 0 });
	port = Number(new URL(base).port);
});
afterAll(async () => {
	await h.close();
});

const auth = () => ({ authorization: `Token ${h.owner.token}` });

async function send(
	method: string,
	path: string,
	init: { headers?: Record<string, string>; body?: string } = {},
) {
	const res = await fetch(`${base}${path}`, { method, headers: init.headers, body: init.body });
	const text = await res.text();
	return {
		status: res.status,
		type: res.headers.get("content-type") ?? "",
		text,
		json: text ? JSON.parse(text) : undefined,
	};
}

/** Writes raw bytes and reads the whole answer (the server closes the connection). */
function rawExchange(payload: string): Promise<string> {
	return new Promise((resolve, reject) => {
		const socket = connect(port, "127.0.0.1");
		let out = "";
		socket.setEncoding("utf8");
		socket.on("data", (d) => {
			out += d;
		});
		socket.on("end", () => resolve(out));
		socket.on("close", () => resolve(out));
		socket.on("error", reject);
		socket.write(payload);
	});
}

describe("over HTTP", () => {
	it("serves the OpenAPI document without a token", async () => {
		const res = await send("GET", "/api/openapi.json");
		expect(res.status).toBe(200);
		expect(res.type).toMatch(/^application\/json/);
		expect(res.json.paths["/api/setup-keys"]).toBeDefined();
	});

	it("creates, lists, revokes and deletes a setup key", async () => {
		const created = await send("POST", "/api/setup-keys", {
			headers: { ...auth(), "content-type": "application/json" },
			body: JSON.stringify({ name: "over http", type: "one-off", expires_in: 3600 }),
		});
		expect(created.status).toBe(200);
		expect(created.json).toMatchObject({
			name: "over http",
			type: "one-off",
			usage_limit: 1,
			state: "valid",
		});
		const plain: string = created.json.key;

		const list = await send("GET", "/api/setup-keys", { headers: auth() });
		expect(list.status).toBe(200);
		expect(list.json).toEqual([
			expect.objectContaining({ id: created.json.id, key: `${plain.slice(0, 5)}****` }),
		]);
		expect(list.text).not.toContain(plain);

		const revoked = await send("PUT", `/api/setup-keys/${created.json.id}`, {
			headers: { ...auth(), "content-type": "application/json" },
			body: JSON.stringify({ revoked: true, auto_groups: [] }),
		});
		expect(revoked.status).toBe(200);
		expect(revoked.json.state).toBe("revoked");

		const deleted = await send("DELETE", `/api/setup-keys/${created.json.id}`, {
			headers: { ...auth(), "content-type": "application/json" },
		});
		expect(deleted.status).toBe(200);
		expect(deleted.json).toEqual({});
		expect(h.logsContain(plain)).toBe(false);
		expect(h.logsContain(h.owner.token)).toBe(false);
	});

	it("answers errors as JSON {message, code}", async () => {
		const cases: [string, string, { headers?: Record<string, string>; body?: string }, number][] = [
			["GET", "/api/peers", {}, 401],
			["GET", "/api/peers", { headers: { authorization: "Token nope" } }, 401],
			["GET", "/api/unknown", { headers: auth() }, 404],
			[
				"POST",
				"/api/setup-keys",
				{ headers: { ...auth(), "content-type": "application/json" }, body: "{oops" },
				400,
			],
			[
				"POST",
				"/api/setup-keys",
				{ headers: { ...auth(), "content-type": "text/plain" }, body: "hello" },
				415,
			],
			[
				"POST",
				"/api/setup-keys",
				{
					headers: { ...auth(), "content-type": "application/json" },
					body: "x".repeat(BODY_LIMIT + 1),
				},
				413,
			],
			["GET", "/api/setup-keys/%ZZ", { headers: auth() }, 400],
		];
		for (const [method, path, init, status] of cases) {
			const res = await send(method, path, init);
			expect(res.status, `${method} ${path}`).toBe(status);
			expect(res.type).toMatch(/^application\/json/);
			expect(res.json).toEqual({ message: expect.any(String), code: status });
		}
	});

	it("answers unparseable HTTP with a JSON 400", async () => {
		const answer = await rawExchange("THIS IS NOT HTTP\r\n\r\n");
		expect(answer).toMatch(/^HTTP\/1\.1 400 /);
		const body = answer.slice(answer.indexOf("\r\n\r\n") + 4);
		expect(JSON.parse(body)).toEqual({ message: "malformed HTTP request", code: 400 });
	});

	it("handles concurrent creations", async () => {
		const before = await h.count("setup_keys");
		const results = await Promise.all(
			Array.from({ length: 20 }, (_, i) =>
				send("POST", "/api/setup-keys", {
					headers: { ...auth(), "content-type": "application/json" },
					body: JSON.stringify({ name: `parallel ${i}`, type: "reusable" }),
				}),
			),
		);
		expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
		expect(new Set(results.map((r) => r.json.key)).size).toBe(20);
		expect(await h.count("setup_keys")).toBe(before + 20);
	});

	it("while closing, a request still arriving gets a JSON 503", async () => {
		const other = await RestHarness.create();
		const url = await other.app.listen({ host: "127.0.0.1", port: 0 });
		const socket = connect(Number(new URL(url).port), "127.0.0.1");
		await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
		let answer = "";
		socket.setEncoding("utf8");
		socket.on("data", (d) => {
			answer += d;
		});
		const ended = new Promise<void>((resolve) => socket.once("close", () => resolve()));
		// Half a request: the connection is busy, so closing waits for it.
		socket.write("GET /api/users/current HTTP/1.1\r\nHost: localhost\r\n");
		await new Promise((r) => setTimeout(r, 50));
		const closed = other.app.close();
		await new Promise((r) => setTimeout(r, 50));
		socket.write(`Authorization: Token ${other.owner.token}\r\n\r\n`);
		await ended;
		await closed;
		await other.close();
		expect(answer).toMatch(/^HTTP\/1\.1 503 /);
		expect(JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4))).toEqual({
			message: "shutting down",
			code: 503,
		});
	});
});
