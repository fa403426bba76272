import { newId } from "../core/random.js";
import { hashSecret, newSetupKeySecret } from "../core/secrets.js";
import { effectiveUsageLimit } from "../core/setup-keys.js";
import type { SetupKey, SetupKeyType } from "../domain/types.js";
import type { Store } from "../store/store.js";
import { AppError } from "./errors.js";

export interface NewSetupKeyInput {
	name: string;
	type: SetupKeyType;
	/** Seconds until expiry; 0 = never expires. */
	expiresInSeconds: number;
	autoGroups: string[];
	usageLimit: number;
	ephemeral: boolean;
}

export async function createSetupKey(
	store: Store,
	accountId: string,
	input: NewSetupKeyInput,
	now: Date,
): Promise<{ plainKey: string; key: SetupKey }> {
	await assertGroupsExist(store, accountId, input.autoGroups);
	const plainKey = newSetupKeySecret();
	const key: SetupKey = {
		id: newId(),
		accountId,
		name: input.name,
		hashedKey: hashSecret(plainKey),
		keyPrefix: plainKey.slice(0, 5),
		type: input.type,
		createdAt: now,
		updatedAt: now,
		expiresAt:
			input.expiresInSeconds > 0 ? new Date(now.getTime() + input.expiresInSeconds * 1000) : null,
		revoked: false,
		usedTimes: 0,
		lastUsed: null,
		usageLimit: effectiveUsageLimit(input.type, input.usageLimit),
		autoGroups: input.autoGroups,
		ephemeral: input.ephemeral,
	};
	await store.createSetupKey(key);
	return { plainKey, key };
}

export async function assertGroupsExist(
	store: Store,
	accountId: string,
	groupIds: string[],
): Promise<void> {
	if (groupIds.length === 0) return;
	const known = new Set((await store.listGroups(accountId)).map((g) => g.id));
	const missing = groupIds.filter((id) => !known.has(id));
	if (missing.length > 0) throw new AppError(422, `unknown group id(s): ${missing.join(", ")}`);
}
