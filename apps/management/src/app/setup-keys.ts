import { auditEvent, type Initiator } from "../core/audit.js";
import { newId } from "../core/random.js";
import { hashSecret, newSetupKeySecret } from "../core/secrets.js";
import { effectiveUsageLimit } from "../core/setup-keys.js";
import type { NewAuditEvent, SetupKey, SetupKeyType } from "../domain/types.js";
import type { Store } from "../store/store.js";
import { deleteAudited } from "./audit.js";
import { AppError, notFound, stored } from "./errors.js";
import { assertGroupsExist } from "./references.js";

export interface NewSetupKeyInput {
	name: string;
	type: SetupKeyType;
	/** Seconds until expiry; 0 = never expires. */
	expiresInSeconds: number;
	autoGroups: string[];
	usageLimit: number;
	ephemeral: boolean;
}

/** Creates a key; auto-groups must be groups of the account (422 otherwise). */
export async function createSetupKey(
	store: Store,
	accountId: string,
	input: NewSetupKeyInput,
	now: Date,
	initiator?: Initiator,
): Promise<{ plainKey: string; key: SetupKey }> {
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
	const audit = initiator
		? [
				auditEvent(accountId, initiator, "setupkey.add", key.id, now, {
					name: key.name,
					type: key.type,
				}),
			]
		: [];
	await stored(
		store.write(async (tx) => {
			await assertGroupsExist(tx, accountId, key.autoGroups);
			await tx.insertSetupKey(key);
			await tx.appendEvents(audit);
		}),
	);
	return { plainKey, key };
}

export interface SetupKeyChange {
	/** true revokes; false leaves the key as it is (a revoked key stays revoked). */
	revoke: boolean;
	autoGroups: string[];
	name?: string;
}

export async function updateSetupKey(
	store: Store,
	accountId: string,
	keyId: string,
	change: SetupKeyChange,
	now: Date,
	initiator: Initiator,
): Promise<SetupKey> {
	const updated = await stored(
		store.write(async (tx) => {
			const before = await tx.getSetupKey(accountId, keyId);
			if (!before) return undefined;
			await assertGroupsExist(tx, accountId, change.autoGroups);
			const after: SetupKey = {
				...before,
				revoked: change.revoke || before.revoked,
				autoGroups: change.autoGroups,
				name: change.name ?? before.name,
				updatedAt: now,
			};
			await tx.updateSetupKey(after);
			await tx.appendEvents(setupKeyChangeEvents(initiator, before, after, now));
			return after;
		}),
	);
	if (!updated) throw notFound("setup key");
	return updated;
}

function setupKeyChangeEvents(
	initiator: Initiator,
	before: SetupKey,
	after: SetupKey,
	now: Date,
): NewAuditEvent[] {
	const out: NewAuditEvent[] = [];
	if (!before.revoked && after.revoked)
		out.push(
			auditEvent(after.accountId, initiator, "setupkey.revoke", after.id, now, {
				name: after.name,
			}),
		);
	if (
		before.name !== after.name ||
		JSON.stringify(before.autoGroups) !== JSON.stringify(after.autoGroups)
	) {
		out.push(
			auditEvent(after.accountId, initiator, "setupkey.update", after.id, now, {
				name: after.name,
				auto_groups: after.autoGroups.join(","),
			}),
		);
	}
	return out;
}

export async function deleteSetupKey(
	store: Store,
	accountId: string,
	keyId: string,
	now: Date,
	initiator: Initiator,
): Promise<void> {
	const deleted = await deleteAudited(
		store,
		(tx) => tx.getSetupKey(accountId, keyId),
		(tx) => tx.deleteSetupKey(accountId, keyId),
		(key) => auditEvent(accountId, initiator, "setupkey.delete", keyId, now, { name: key.name }),
	);
	if (!deleted) throw notFound("setup key");
}

/** A revoked key stays revoked. */
export function assertNotUnrevoking(key: SetupKey, revoked: boolean): void {
	if (key.revoked && !revoked) {
		throw new AppError(422, "a revoked setup key cannot be un-revoked; create a new key");
	}
}
