import type { SetupKey } from "../domain/types.js";

export type SetupKeyState = "valid" | "expired" | "revoked" | "overused";

/** NetBird's `state` field: why a key can or cannot register peers now. */
export function setupKeyState(key: SetupKey, now: Date): SetupKeyState {
	if (key.revoked) return "revoked";
	if (key.expiresAt !== null && key.expiresAt.getTime() <= now.getTime()) return "expired";
	if (key.usageLimit > 0 && key.usedTimes >= key.usageLimit) return "overused";
	return "valid";
}

export type SetupKeyCheck = { ok: true } | { ok: false; reason: string };

/** Whether `key` may register one more peer; the reason is shown to the agent. */
export function checkSetupKeyUsable(key: SetupKey, now: Date): SetupKeyCheck {
	switch (setupKeyState(key, now)) {
		case "valid":
			return { ok: true };
		case "revoked":
			return { ok: false, reason: "setup key has been revoked" };
		case "expired":
			return { ok: false, reason: `setup key expired at ${key.expiresAt?.toISOString()}` };
		case "overused":
			return {
				ok: false,
				reason:
					key.type === "one-off"
						? "one-off setup key has already been used"
						: `setup key reached its usage limit of ${key.usageLimit}`,
			};
	}
}

/** One-off keys register exactly one peer; reusable keys up to usageLimit (0 = no limit). */
export function effectiveUsageLimit(type: SetupKey["type"], requested: number): number {
	return type === "one-off" ? 1 : requested;
}
