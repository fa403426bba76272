import { afterEach, describe, expect, it } from "vitest";
import { type Store, StoreUnavailableError } from "../src/store/store.js";
import { RestHarness } from "./helpers-rest.js";

// Bugs and outages: a bare 500 {message: "internal error"} for the client,
// the error (without secrets) in the log.

let h: RestHarness | undefined;
afterEach(async () => {
	await h?.close();
	h = undefined;
});

/** `store` with `method` replaced. */
function override<K extends keyof Store>(method: K, impl: Store[K]): (store: Store) => Store {
	return (store) =>
		new Proxy(store, {
			get(target, prop, receiver) {
				if (prop === method) return impl;
				const value = Reflect.get(target, prop, receiver);
				return typeof value === "function" ? value.bind(target) : value;
			},
		});
}

describe("internal errors", () => {
	it("a throwing store is a 500 'internal error', logged at error level without details for the client", async () => {
		h = await RestHarness.create({
			wrapStore: override("listSetupKeys", async () => {
				throw new Error("disk on fire");
			}),
		});
		const res = await h.request("GET", "/api/setup-keys");
		expect(res.status).toBe(500);
		expect(res.json).toEqual({ message: "internal error", code: 500 });
		expect(res.text).not.toContain("disk on fire");
		const errors = h.logs.filter((l) => l.includes('"level":50'));
		expect(errors).toHaveLength(1);
		expect(errors[0]).toContain("disk on fire");
		expect(errors[0]).not.toContain(h.owner.token);
	});

	it("an unreachable database is a 503 {message, code} saying so, not logged per request as a bug", async () => {
		h = await RestHarness.create({
			wrapStore: override("listSetupKeys", async () => {
				throw new StoreUnavailableError("the database is unavailable (PostgreSQL at db:5432)");
			}),
		});
		const res = await h.request("GET", "/api/setup-keys");
		expect(res.status).toBe(503);
		expect(res.json).toEqual({
			message: "the database is unavailable; try again later",
			code: 503,
		});
		expect(h.logs.filter((l) => l.includes('"level":50'))).toHaveLength(0);
	});

	// Answers are not checked against their schema on the way out
	// (rest/serializer.ts): a wrong enum value or a null string is written as
	// fast-json-stringify coerces it; a missing required field is refused.
	it("an answer missing a field its schema requires is a 500, never a partial answer", async () => {
		h = await RestHarness.create({
			wrapStore: override("listUsers", async () => [
				// biome-ignore lint/suspicious/noExplicitAny: deliberately malformed
				{ id: 5, name: null, role: "superuser" } as any,
			]),
		});
		const res = await h.request("GET", "/api/users");
		expect(res.status).toBe(500);
		expect(res.json).toEqual({ message: "internal error", code: 500 });
		expect(h.logs.filter((l) => l.includes('"level":50'))).toHaveLength(1);
	});

	it("a store failing during authentication is a 500, not a 401", async () => {
		h = await RestHarness.create({
			wrapStore: override("getTokenByHash", async () => {
				throw new Error("database is locked");
			}),
		});
		const res = await h.request("GET", "/api/users/current");
		expect(res.status).toBe(500);
		expect(res.json).toEqual({ message: "internal error", code: 500 });
	});
});
