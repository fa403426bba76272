import type { Initiator } from "../core/audit.js";
import type { User } from "../domain/types.js";

export { auditEvent, type Initiator } from "../core/audit.js";

/** A user as the initiator of an audit event. */
export function initiatorOf(user: User): Initiator {
	return { id: user.id, name: user.name, email: user.email };
}
