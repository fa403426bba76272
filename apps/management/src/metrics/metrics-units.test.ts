import { status } from "@grpc/grpc-js";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LOGIN_RESULTS, loginFailure } from "./login-result.js";
import { instrumentStore, timeStoreTransaction } from "./store-timing.js";

/** A clock that moves only when told to. */
function steppingClock(steps: number[]): () => number {
	let i = 0;
	return () => steps[Math.min(i++, steps.length - 1)] ?? 0;
}

describe("timeStoreTransaction", () => {
	it("times a synchronous call and returns its value", () => {
		const seen: [string, number][] = [];
		const value = timeStoreTransaction(
			(op, s) => seen.push([op, s]),
			"listPeers",
			() => 42,
			steppingClock([1000, 1250]),
		);
		expect(value).toBe(42);
		expect(seen).toEqual([["listPeers", 0.25]]);
	});

	it("times a promise until it settles, failures included", async () => {
		const seen: [string, number][] = [];
		const observe = (op: string, s: number) => seen.push([op, s]);
		await expect(
			timeStoreTransaction(observe, "write", async () => "ok", steppingClock([0, 5])),
		).resolves.toBe("ok");
		await expect(
			timeStoreTransaction(
				observe,
				"write",
				async () => {
					throw new Error("conflict");
				},
				steppingClock([10, 40]),
			),
		).rejects.toThrow("conflict");
		expect(() =>
			timeStoreTransaction(
				observe,
				"read",
				() => {
					throw new Error("closed");
				},
				steppingClock([0, 1]),
			),
		).toThrow("closed");
		expect(seen).toEqual([
			["write", 0.005],
			["write", 0.03],
			["read", 0.001],
		]);
	});
});

describe("instrumentStore", () => {
	class FakeStore {
		readonly db = { name: "sqlite" };
		calls = 0;
		async getPeer(id: string) {
			this.calls++;
			return `peer ${id}`;
		}
		async registerPeer() {
			// Calls another method on itself: timed once, as registerPeer.
			return this.getPeer("inner");
		}
	}

	it("times each method once under its name and passes properties through", async () => {
		const seen: string[] = [];
		const store = instrumentStore(new FakeStore(), (op) => seen.push(op));
		expect(await store.getPeer("a")).toBe("peer a");
		expect(await store.registerPeer()).toBe("peer inner");
		expect(store.db).toEqual({ name: "sqlite" });
		expect(store.calls).toBe(2);
		expect(seen).toEqual(["getPeer", "registerPeer"]);
		expect(store.getPeer).toBe(store.getPeer);
	});
});

describe("loginFailure", () => {
	it("tells a missing setup key from a refused one", () => {
		expect(loginFailure(status.PERMISSION_DENIED, false)).toBe("setup_key_missing");
		expect(loginFailure(status.PERMISSION_DENIED, true)).toBe("setup_key_refused");
		expect(loginFailure(status.INVALID_ARGUMENT, true)).toBe("bad_request");
		expect(loginFailure(status.UNAUTHENTICATED, false)).toBe("bad_seal");
		expect(loginFailure(status.NOT_FOUND, false)).toBe("account_missing");
		expect(loginFailure(status.INTERNAL, false)).toBe("error");
		expect(loginFailure(undefined, false)).toBe("error");
	});

	it("always answers a label of the fixed set (bounded cardinality)", () => {
		fc.assert(
			fc.property(fc.integer({ min: 0, max: 16 }), fc.boolean(), (code, given) => {
				expect(LOGIN_RESULTS).toContain(loginFailure(code as status, given));
			}),
		);
	});
});
