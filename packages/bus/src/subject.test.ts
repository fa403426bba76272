import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isPublishSubject, isSubscribeSubject, subjectMatches } from "./subject.js";

/** Reference model: a wildcard pattern as a regular expression over the whole subject. */
function reference(pattern: string, subject: string): boolean {
	const re = pattern
		.split(".")
		.map((t) => (t === "*" ? "[^.]+" : t === ">" ? "[^.]+(?:\\.[^.]+)*" : t))
		.join("\\.");
	return new RegExp(`^${re}$`).test(subject);
}

describe("subjects", () => {
	it("matches like NATS", () => {
		expect(subjectMatches("a.b", "a.b")).toBe(true);
		expect(subjectMatches("a.*", "a.b")).toBe(true);
		expect(subjectMatches("a.*", "a.b.c")).toBe(false);
		expect(subjectMatches("a.>", "a.b.c")).toBe(true);
		expect(subjectMatches("a.>", "a")).toBe(false);
		expect(subjectMatches("a.b.c", "a.b")).toBe(false);
	});

	it("agrees with a regular-expression model", () => {
		const token = fc.constantFrom("a", "b", "c");
		const subject = fc.array(token, { minLength: 1, maxLength: 4 }).map((t) => t.join("."));
		const pattern = fc
			.tuple(fc.array(fc.constantFrom("a", "b", "*"), { minLength: 0, maxLength: 3 }), fc.boolean())
			.filter(([t, tail]) => t.length > 0 || tail)
			.map(([t, tail]) => [...t, ...(tail ? [">"] : [])].join("."));
		fc.assert(
			fc.property(pattern, subject, (p, s) => {
				expect(subjectMatches(p, s)).toBe(reference(p, s));
			}),
		);
	});

	it("validates", () => {
		expect(isPublishSubject("mgmt.account.x")).toBe(true);
		for (const bad of ["", "a..b", "a.*", "a.>", "a b", ".a"])
			expect(isPublishSubject(bad)).toBe(false);
		expect(isSubscribeSubject("a.*.c")).toBe(true);
		expect(isSubscribeSubject("a.>")).toBe(true);
		for (const bad of ["", "a.>.c", "a..b", "a b"]) expect(isSubscribeSubject(bad)).toBe(false);
	});
});
