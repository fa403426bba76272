import { auditEvent, type Initiator } from "../core/audit.js";
import { groupInUseMessage, groupNameTaken, groupUsers } from "../core/group-rules.js";
import { newId } from "../core/random.js";
import type { Group } from "../domain/types.js";
import type { Store, StoreReader } from "../store/store.js";
import { AppError, notFound, stored } from "./errors.js";
import type { NetworkChangeSink } from "./events.js";
import { assertPeersExist } from "./references.js";
import { readRoutingConfig } from "./routing.js";

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
		store.write(async (tx) => {
			await assertNameFree(tx, accountId, group.name, group.id);
			await assertPeersExist(tx, accountId, group.peerIds);
			await tx.insertGroup(group);
			await tx.appendEvents([
				auditEvent(accountId, initiator, "group.add", group.id, now, {
					name: group.name,
					peers: String(group.peerIds.length),
				}),
			]);
		}),
	);
	if (group.peerIds.length > 0) sink.accessChanged(accountId);
	return group;
}

async function assertNameFree(
	tx: StoreReader,
	accountId: string,
	name: string,
	groupId: string,
): Promise<void> {
	if (groupNameTaken(await tx.listGroups(accountId), name, groupId)) {
		throw new AppError(409, `a group named "${name}" already exists`);
	}
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
	const result = await stored(
		store.write(async (tx) => {
			const before = await tx.getGroup(accountId, groupId);
			if (!before) return undefined;
			refuseAll(before, "changed");
			await assertNameFree(tx, accountId, input.name, groupId);
			await assertPeersExist(tx, accountId, input.peerIds);
			const after: Group = {
				...before,
				name: input.name,
				peerIds: [...new Set(input.peerIds)].sort(),
			};
			await tx.updateGroup(after);
			const added = after.peerIds.filter((p) => !before.peerIds.includes(p));
			const removed = before.peerIds.filter((p) => !after.peerIds.includes(p));
			const membershipChanged = added.length > 0 || removed.length > 0;
			if (membershipChanged || before.name !== after.name) {
				await tx.appendEvents([
					auditEvent(accountId, initiator, "group.update", groupId, now, {
						name: after.name,
						...(before.name !== after.name ? { old_name: before.name } : {}),
						peers_added: added.join(","),
						peers_removed: removed.join(","),
					}),
				]);
			}
			return { group: after, membershipChanged };
		}),
	);
	if (!result) throw notFound("group");
	if (result.membershipChanged) sink.accessChanged(accountId);
	return result.group;
}

/**
 * Refused (422) while a policy, setup key, user, route or network resource
 * or router names the group. No map
 * changes: a group that can be deleted is named by no policy.
 */
export async function deleteGroup(
	store: Store,
	_sink: NetworkChangeSink,
	accountId: string,
	groupId: string,
	initiator: Initiator,
	now: Date,
): Promise<void> {
	const deleted = await stored(
		store.write(async (tx) => {
			const group = await tx.getGroup(accountId, groupId);
			if (!group) return false;
			refuseAll(group, "deleted");
			const users = groupUsers(groupId, {
				policies: await tx.listPolicies(accountId),
				setupKeys: await tx.listSetupKeys(accountId),
				users: await tx.listUsers(accountId),
				routing: await readRoutingConfig(tx, accountId),
			});
			if (users.length > 0) throw new AppError(422, groupInUseMessage(group.name, users));
			await tx.deleteGroup(accountId, groupId);
			await tx.appendEvents([
				auditEvent(accountId, initiator, "group.delete", groupId, now, { name: group.name }),
			]);
			return true;
		}),
	);
	if (!deleted) throw notFound("group");
}
