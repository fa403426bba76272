import { missingIds } from "../core/group-rules.js";
import type { StoreReader } from "../store/store.js";
import { AppError } from "./errors.js";

/**
 * 422 naming the ids that are not among `list()`'s; the list is read only
 * when there is something to check.
 */
async function assertIdsExist(
	kind: string,
	ids: readonly string[],
	list: () => Promise<readonly { id: string }[]>,
): Promise<void> {
	if (ids.length === 0) return;
	const known = (await list()).map((x) => x.id);
	const missing = missingIds(ids, known);
	if (missing.length > 0) throw new AppError(422, `unknown ${kind} id(s): ${missing.join(", ")}`);
}

/** 422 naming the ids that are not groups of the account. */
export function assertGroupsExist(
	tx: StoreReader,
	accountId: string,
	ids: readonly string[],
): Promise<void> {
	return assertIdsExist("group", ids, () => tx.listGroups(accountId));
}

/** 422 naming the ids that are not peers of the account. */
export function assertPeersExist(
	tx: StoreReader,
	accountId: string,
	ids: readonly string[],
): Promise<void> {
	return assertIdsExist("peer", ids, () => tx.listPeers(accountId));
}
