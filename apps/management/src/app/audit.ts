import type { Initiator } from "../core/audit.js";
import type { NewAuditEvent, User } from "../domain/types.js";
import type { Store, StoreWriter } from "../store/store.js";

export { auditEvent, type Initiator } from "../core/audit.js";

/** A user as the initiator of an audit event. */
export function initiatorOf(user: User): Initiator {
	return { id: user.id, name: user.name, email: user.email };
}

/**
 * Deletes one record and records its audit event in one write transaction:
 * reads it, deletes it, appends the event `event` makes of what was deleted
 * (none when it gives undefined). Undefined when there was nothing to delete.
 */
export function deleteAudited<T>(
	store: Store,
	get: (tx: StoreWriter) => Promise<T | undefined>,
	remove: (tx: StoreWriter) => Promise<boolean>,
	event: (deleted: T) => NewAuditEvent | undefined,
): Promise<T | undefined> {
	return store.write(async (tx) => {
		const found = await get(tx);
		if (found === undefined || !(await remove(tx))) return undefined;
		const made = event(found);
		if (made) await tx.appendEvents([made]);
		return found;
	});
}
