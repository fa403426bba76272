import { missingIds } from "../core/group-rules.js";
import type { StoreReader } from "../store/store.js";
import { AppError } from "./errors.js";

/** 422 naming the ids that are not groups of the account. */
export async function assertGroupsExist(
	tx: StoreReader,
	accountId: string,
	ids: readonly string[],
): Promise<void> {
	if (ids.length === 0) return;
	const missing = missingIds(
		ids,
		(await tx.listGroups(accountId)).map((g) => g.id),
	);
	if (missing.length > 0) throw new AppError(422, `unknown group id(s): ${missing.join(", ")}`);
}

/** 422 naming the ids that are not peers of the account. */
export async function assertPeersExist(
	tx: StoreReader,
	accountId: string,
	ids: readonly string[],
): Promise<void> {
	if (ids.length === 0) return;
	const missing = missingIds(
		ids,
		(await tx.listPeers(accountId)).map((p) => p.id),
	);
	if (missing.length > 0) throw new AppError(422, `unknown peer id(s): ${missing.join(", ")}`);
}
