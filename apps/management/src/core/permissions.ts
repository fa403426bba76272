import type { UserRole } from "../domain/types.js";

// What a role may do, in the vocabulary NetBird's clients read from
// GET /api/users/current (`permissions`): per module, per operation. It
// restates the REST API's real rules (rest/server.ts): owners and admins use
// the whole admin surface; users of role "user" only reach their own tokens.

export const PERMISSION_MODULES = [
	"accounts",
	"events",
	"groups",
	"pats",
	"peers",
	"policies",
	"settings",
	"setup_keys",
	"users",
] as const;
export type PermissionModule = (typeof PERMISSION_MODULES)[number];

export const OPERATIONS = ["read", "create", "update", "delete"] as const;
export type Operation = (typeof OPERATIONS)[number];

export interface Permissions {
	/** true: the user sees only what concerns them. */
	isRestricted: boolean;
	modules: Record<PermissionModule, Record<Operation, boolean>>;
}

/** Operations of a role "user": their own tokens (list, show, create, delete). */
const USER_OWN: Partial<Record<PermissionModule, readonly Operation[]>> = {
	pats: ["read", "create", "delete"],
};

export function permissionsOf(role: UserRole): Permissions {
	const admin = role === "owner" || role === "admin";
	const modules = {} as Permissions["modules"];
	for (const m of PERMISSION_MODULES) {
		const own = USER_OWN[m] ?? [];
		modules[m] = {
			read: admin || own.includes("read"),
			create: admin || own.includes("create"),
			update: admin || own.includes("update"),
			delete: admin || own.includes("delete"),
		};
	}
	return { isRestricted: !admin, modules };
}
