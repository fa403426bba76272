import { auditEvent, type Initiator } from "../core/audit.js";
import { newId } from "../core/random.js";
import type { NewAuditEvent, User, UserRole } from "../domain/types.js";
import type { Store } from "../store/store.js";
import { AppError, notFound, stored } from "./errors.js";
import { assertGroupsExist } from "./references.js";

// Users of an account. Roles: one owner (made with the account; ownership
// cannot be given away), admins and users. Owners and admins manage users;
// an admin cannot change, block or delete the owner, and nobody can block,
// demote or delete themselves out of the account.

export interface NewUserInput {
	name: string;
	email: string;
	role: UserRole;
	autoGroups: string[];
	isServiceUser: boolean;
}

export async function createUser(
	store: Store,
	actor: User,
	input: NewUserInput,
	now: Date,
	initiator: Initiator,
): Promise<User> {
	if (input.role === "owner") {
		throw new AppError(422, "there is one owner per account: create an admin or a user");
	}
	const user: User = {
		id: newId(),
		accountId: actor.accountId,
		name: input.name,
		email: input.email,
		role: input.role,
		isServiceUser: input.isServiceUser,
		blocked: false,
		autoGroups: [...new Set(input.autoGroups)],
		createdAt: now,
	};
	await stored(
		store.write(async (tx) => {
			await assertGroupsExist(tx, user.accountId, user.autoGroups);
			const email = user.email.toLowerCase();
			if (
				email !== "" &&
				(await tx.listUsers(user.accountId)).some((u) => u.email.toLowerCase() === email)
			) {
				throw new AppError(409, `a user with email ${user.email} already exists`);
			}
			await tx.insertUser(user);
			await tx.appendEvents([
				auditEvent(
					actor.accountId,
					initiator,
					user.isServiceUser ? "service.user.create" : "user.create",
					user.id,
					now,
					{ name: user.name, email: user.email, role: user.role },
				),
			]);
		}),
	);
	return user;
}

export interface UserChange {
	role: UserRole;
	autoGroups: string[];
	blocked: boolean;
}

export async function updateUser(
	store: Store,
	actor: User,
	userId: string,
	change: UserChange,
	now: Date,
	initiator: Initiator,
): Promise<User> {
	const updated = await stored(
		store.write(async (tx) => {
			const target = await tx.getUser(userId);
			if (!target || target.accountId !== actor.accountId) return undefined;
			assertMayChange(actor, target, change);
			await assertGroupsExist(tx, actor.accountId, change.autoGroups);
			const after: User = {
				...target,
				role: change.role,
				autoGroups: [...new Set(change.autoGroups)],
				blocked: change.blocked,
			};
			await tx.updateUser(after);
			await tx.appendEvents(userChangeEvents(actor.accountId, initiator, target, after, now));
			return after;
		}),
	);
	if (!updated) throw notFound("user");
	return updated;
}

function assertMayChange(actor: User, target: User, change: UserChange): void {
	if (target.role === "owner") {
		if (actor.role !== "owner") throw new AppError(403, "only the owner may change the owner");
		if (change.role !== "owner") {
			throw new AppError(422, "the owner cannot be demoted: an account needs its owner");
		}
	} else if (change.role === "owner") {
		throw new AppError(
			actor.role === "owner" ? 422 : 403,
			"the owner role cannot be given: there is one owner per account",
		);
	}
	if (target.id === actor.id && change.blocked) {
		throw new AppError(422, "you cannot block yourself");
	}
}

function userChangeEvents(
	accountId: string,
	initiator: Initiator,
	before: User,
	after: User,
	now: Date,
): NewAuditEvent[] {
	const out: NewAuditEvent[] = [];
	const ev = (code: NewAuditEvent["activityCode"], meta: Record<string, string>) =>
		out.push(auditEvent(accountId, initiator, code, after.id, now, meta));
	if (before.role !== after.role)
		ev("user.role.update", { name: after.name, old_role: before.role, role: after.role });
	if (before.blocked !== after.blocked)
		ev(after.blocked ? "user.block" : "user.unblock", { name: after.name });
	// One event per group added or removed, as NetBird records them.
	for (const g of after.autoGroups.filter((g) => !before.autoGroups.includes(g)))
		ev("user.group.add", { name: after.name, group_id: g });
	for (const g of before.autoGroups.filter((g) => !after.autoGroups.includes(g)))
		ev("user.group.delete", { name: after.name, group_id: g });
	return out;
}

/** Deletes a user and its tokens. */
export async function deleteUser(
	store: Store,
	actor: User,
	userId: string,
	now: Date,
	initiator: Initiator,
): Promise<void> {
	const deleted = await store.write(async (tx) => {
		const target = await tx.getUser(userId);
		if (!target || target.accountId !== actor.accountId) return false;
		if (target.id === actor.id) throw new AppError(422, "you cannot delete yourself");
		if (target.role === "owner") throw new AppError(403, "the owner cannot be deleted");
		if (!(await tx.deleteUser(actor.accountId, userId))) return false;
		await tx.appendEvents([
			auditEvent(
				actor.accountId,
				initiator,
				target.isServiceUser ? "service.user.delete" : "user.delete",
				userId,
				now,
				{ name: target.name, email: target.email },
			),
		]);
		return true;
	});
	if (!deleted) throw notFound("user");
}
