import { auditEvent, type Initiator } from "../core/audit.js";
import { newId } from "../core/random.js";
import type { Group } from "../domain/types.js";
import type { Store } from "../store/store.js";
import { AppError, notFound, stored } from "./errors.js";
import type { NetworkChangeSink } from "./events.js";

// Groups: the built-in All group (every peer, read-only) and groups that
// admins make. Peers join groups through the group's peer list, as in
// NetBird, or on registration through a setup key's auto-groups.

export interface GroupInput {
	name: string;
	peerIds: string[];
}

function refuseAll(group: Group, what: string): void {
	if (group.issued === "all") {
		throw new AppError(422, `the All group holds every peer and cannot be ${what}`);
	}
}

export async function createGroup(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	input: GroupInput,
	initiator: Initiator,
	now: Date,
): Promise<Group> {
	const group: Group = {
		id: newId(),
		accountId,
		name: input.name,
		issued: "api",
		peerIds: [...new Set(input.peerIds)].sort(),
	};
	await stored(
		store.createGroup(group, [
			auditEvent(accountId, initiator, "group.add", group.id, now, {
				name: group.name,
				peers: String(group.peerIds.length),
			}),
		]),
	);
	if (group.peerIds.length > 0) sink.accessChanged(accountId);
	return group;
}

export async function updateGroup(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	groupId: string,
	input: GroupInput,
	initiator: Initiator,
	now: Date,
): Promise<Group> {
	const existing = await store.getGroup(accountId, groupId);
	if (!existing) throw notFound("group");
	refuseAll(existing, "changed");
	let membershipChanged = false;
	const updated = await stored(
		store.updateGroup(accountId, groupId, input, (before, after) => {
			const added = after.peerIds.filter((p) => !before.peerIds.includes(p));
			const removed = before.peerIds.filter((p) => !after.peerIds.includes(p));
			membershipChanged = added.length > 0 || removed.length > 0;
			if (!membershipChanged && before.name === after.name) return [];
			return [
				auditEvent(accountId, initiator, "group.update", groupId, now, {
					name: after.name,
					...(before.name !== after.name ? { old_name: before.name } : {}),
					peers_added: added.join(","),
					peers_removed: removed.join(","),
				}),
			];
		}),
	);
	if (!updated) throw notFound("group");
	if (membershipChanged) sink.accessChanged(accountId);
	return updated;
}

/** No map changes: a group that can be deleted is named by no policy. */
export async function deleteGroup(
	store: Store,
	_sink: NetworkChangeSink,
	accountId: string,
	groupId: string,
	initiator: Initiator,
	now: Date,
): Promise<void> {
	const existing = await store.getGroup(accountId, groupId);
	if (!existing) throw notFound("group");
	refuseAll(existing, "deleted");
	const deleted = await stored(
		store.deleteGroup(accountId, groupId, (g) => [
			auditEvent(accountId, initiator, "group.delete", groupId, now, { name: g.name }),
		]),
	);
	if (!deleted) throw notFound("group");
}
