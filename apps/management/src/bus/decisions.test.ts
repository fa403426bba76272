import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { accountsBehind, reloadForMessage, streamOpenedElsewhere } from "./decisions.js";
import {
	accountSubject,
	decodeAccountChanged,
	decodeStreamOpened,
	encodeAccountChanged,
	encodeStreamOpened,
} from "./messages.js";

describe("reloadForMessage", () => {
	const held = new Map([["acc", 10]]);
	it("reloads a held account on a newer or unknown revision from another instance", () => {
		expect(reloadForMessage({ instance: "b", accountId: "acc", revision: 11 }, "a", held)).toBe(
			true,
		);
		expect(reloadForMessage({ instance: "b", accountId: "acc", revision: null }, "a", held)).toBe(
			true,
		);
	});
	it("ignores its own messages, accounts it does not hold, and revisions it already loaded", () => {
		expect(reloadForMessage({ instance: "a", accountId: "acc", revision: 11 }, "a", held)).toBe(
			false,
		);
		expect(reloadForMessage({ instance: "b", accountId: "other", revision: 11 }, "a", held)).toBe(
			false,
		);
		expect(reloadForMessage({ instance: "b", accountId: "acc", revision: 10 }, "a", held)).toBe(
			false,
		);
		expect(reloadForMessage({ instance: "b", accountId: "acc", revision: 3 }, "a", held)).toBe(
			false,
		);
	});
	it("property: reloads exactly when foreign, held, and not already loaded", () => {
		fc.assert(
			fc.property(
				fc.dictionary(fc.constantFrom("x", "y", "z"), fc.nat(20)),
				fc.constantFrom("x", "y", "z", "w"),
				fc.option(fc.nat(20)),
				fc.boolean(),
				(heldObj, accountId, revision, own) => {
					const heldMap = new Map(Object.entries(heldObj));
					const got = reloadForMessage(
						{ instance: own ? "self" : "peer", accountId, revision },
						"self",
						heldMap,
					);
					const loaded = heldMap.get(accountId);
					const model = !own && loaded !== undefined && (revision === null || revision > loaded);
					expect(got).toBe(model);
				},
			),
		);
	});
});

describe("accountsBehind", () => {
	it("lists held accounts whose stored revision differs, skipping unreadable or deleted ones", () => {
		const held = new Map([
			["same", 5],
			["moved", 5],
			["gone", 5],
			["back", 9],
		]);
		const stored = new Map<string, number | undefined>([
			["same", 5],
			["moved", 7],
			["gone", undefined],
			["back", 4],
		]);
		expect(accountsBehind(held, stored)).toEqual(["moved", "back"]);
	});
	it("property: every listed account is held and differs; every held differing one is listed", () => {
		fc.assert(
			fc.property(
				fc.dictionary(fc.string({ maxLength: 3 }), fc.nat(5)),
				fc.dictionary(fc.string({ maxLength: 3 }), fc.option(fc.nat(5), { nil: undefined })),
				(h, st) => {
					const held = new Map(Object.entries(h));
					const stored = new Map(Object.entries(st));
					const out = new Set(accountsBehind(held, stored));
					for (const [id, loaded] of held) {
						const now = stored.get(id);
						expect(out.has(id)).toBe(now !== undefined && now !== loaded);
					}
					for (const id of out) expect(held.has(id)).toBe(true);
				},
			),
		);
	});
});

describe("messages", () => {
	it("account changes round-trip through subject and payload; malformed ones decode to undefined", () => {
		const subject = accountSubject("AbC123");
		expect(subject).toBe("starling.mgmt.account.AbC123");
		const payload = encodeAccountChanged({ instance: "i1", revision: 42 });
		expect(decodeAccountChanged(subject, payload)).toEqual({
			instance: "i1",
			accountId: "AbC123",
			revision: 42,
		});
		const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
		expect(decodeAccountChanged(subject, enc({ instance: "i", revision: null }))?.revision).toBe(
			null,
		);
		expect(decodeAccountChanged(subject, enc({ instance: "i", revision: 1.5 }))).toBeUndefined();
		expect(decodeAccountChanged(subject, enc({ revision: 1 }))).toBeUndefined();
		expect(decodeAccountChanged(subject, new TextEncoder().encode("{"))).toBeUndefined();
		expect(decodeAccountChanged("starling.mgmt.stream.opened", payload)).toBeUndefined();
		expect(decodeAccountChanged("starling.mgmt.account.a.b", payload)).toBeUndefined();
	});
	it("stream openings round-trip; only other instances' count", () => {
		const m = { instance: "b", peerKey: "k+/=", streamId: "s", since: 123 };
		expect(decodeStreamOpened(encodeStreamOpened(m))).toEqual(m);
		expect(decodeStreamOpened(new TextEncoder().encode('{"instance":"b"}'))).toBeUndefined();
		expect(streamOpenedElsewhere(m, "a")).toBe(true);
		expect(streamOpenedElsewhere(m, "b")).toBe(false);
	});
});
