import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { backoffDelay, DEFAULT_BACKOFF, resolveBackoff } from "./backoff.js";

describe("backoffDelay", () => {
	const noJitter = resolveBackoff({
		initialDelayMs: 100,
		maxDelayMs: 1_000,
		multiplier: 2,
		jitter: 0,
	});

	it("doubles from the initial delay up to the ceiling", () => {
		const delays = [0, 1, 2, 3, 4, 5, 50].map((attempt) => backoffDelay(attempt, noJitter));
		expect(delays).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
	});

	it("stays finite for absurd attempt counts", () => {
		expect(backoffDelay(10_000, noJitter)).toBe(1_000);
		expect(backoffDelay(Number.POSITIVE_INFINITY, noJitter)).toBe(1_000);
	});

	it("takes off at most the jitter fraction", () => {
		const options = resolveBackoff({ initialDelayMs: 1_000, maxDelayMs: 1_000, jitter: 0.2 });
		expect(backoffDelay(0, options, () => 0)).toBe(1_000);
		expect(backoffDelay(0, options, () => 0.999_999)).toBe(800);
		expect(backoffDelay(0, options, () => 0.5)).toBe(900);
	});

	it("is always within [capped * (1 - jitter), capped]", () => {
		fc.assert(
			fc.property(
				fc.nat(100),
				fc.integer({ min: 0, max: 10_000 }),
				fc.integer({ min: 0, max: 100_000 }),
				fc.double({ min: 1, max: 10, noNaN: true }),
				fc.double({ min: 0, max: 1, noNaN: true }),
				fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
				(attempt, initialDelayMs, extra, multiplier, jitter, random) => {
					const options = resolveBackoff({
						initialDelayMs,
						maxDelayMs: initialDelayMs + extra,
						multiplier,
						jitter,
					});
					const capped = Math.min(options.maxDelayMs, initialDelayMs * multiplier ** attempt);
					const delay = backoffDelay(attempt, options, () => random);
					expect(delay).toBeLessThanOrEqual(Math.round(capped));
					expect(delay).toBeGreaterThanOrEqual(Math.floor(capped * (1 - jitter)));
				},
			),
		);
	});

	it("ignores a random source that misbehaves", () => {
		expect(backoffDelay(0, DEFAULT_BACKOFF, () => Number.NaN)).toBe(DEFAULT_BACKOFF.initialDelayMs);
		expect(backoffDelay(0, noJitter, () => 7)).toBe(100);
	});
});

describe("resolveBackoff", () => {
	it("fills in defaults, keeping given fields", () => {
		expect(resolveBackoff()).toEqual(DEFAULT_BACKOFF);
		expect(resolveBackoff({ initialDelayMs: 10, maxDelayMs: undefined })).toEqual({
			...DEFAULT_BACKOFF,
			initialDelayMs: 10,
		});
	});

	it("names the field that is out of range", () => {
		expect(() => resolveBackoff({ initialDelayMs: -1 })).toThrow(/initialDelayMs/);
		expect(() => resolveBackoff({ initialDelayMs: 500, maxDelayMs: 100 })).toThrow(/maxDelayMs/);
		expect(() => resolveBackoff({ multiplier: 0.5 })).toThrow(/multiplier/);
		expect(() => resolveBackoff({ jitter: 1.5 })).toThrow(/jitter/);
		expect(() => resolveBackoff({ jitter: Number.NaN })).toThrow(/jitter/);
	});
});
