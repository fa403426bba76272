import { describe, expect, it } from "vitest";
import { setupKeyFixture } from "../domain/fixtures.js";
import type { SetupKey } from "../domain/types.js";
import { checkSetupKeyUsable, effectiveUsageLimit, setupKeyState } from "./setup-keys.js";

const now = new Date("2026-11-29T12:00:00Z");
const key = (over: Partial<SetupKey>): SetupKey =>
	setupKeyFixture({ createdAt: now, updatedAt: now, ...over });

describe("setup key validity", () => {
	it("valid: unlimited reusable key that never expires", () => {
		expect(setupKeyState(key({ usedTimes: 10_000 }), now)).toBe("valid");
		expect(checkSetupKeyUsable(key({}), now)).toEqual({ ok: true });
	});

	it("expired exactly at its expiry time", () => {
		expect(setupKeyState(key({ expiresAt: new Date(now.getTime() + 1) }), now)).toBe("valid");
		expect(setupKeyState(key({ expiresAt: now }), now)).toBe("expired");
		const check = checkSetupKeyUsable(key({ expiresAt: now }), now);
		expect(check.ok).toBe(false);
	});

	it("revoked wins over everything", () => {
		expect(
			setupKeyState(key({ revoked: true, expiresAt: now, usageLimit: 1, usedTimes: 1 }), now),
		).toBe("revoked");
	});

	it("usage limits: one-off after one use, reusable at its limit", () => {
		expect(setupKeyState(key({ type: "one-off", usageLimit: 1, usedTimes: 0 }), now)).toBe("valid");
		expect(setupKeyState(key({ type: "one-off", usageLimit: 1, usedTimes: 1 }), now)).toBe(
			"overused",
		);
		expect(setupKeyState(key({ usageLimit: 3, usedTimes: 2 }), now)).toBe("valid");
		expect(setupKeyState(key({ usageLimit: 3, usedTimes: 3 }), now)).toBe("overused");
		const oneOff = checkSetupKeyUsable(key({ type: "one-off", usageLimit: 1, usedTimes: 1 }), now);
		expect(oneOff).toEqual({ ok: false, reason: "one-off setup key has already been used" });
	});

	it("one-off keys always have a limit of one", () => {
		expect(effectiveUsageLimit("one-off", 0)).toBe(1);
		expect(effectiveUsageLimit("one-off", 7)).toBe(1);
		expect(effectiveUsageLimit("reusable", 0)).toBe(0);
		expect(effectiveUsageLimit("reusable", 7)).toBe(7);
	});
});
