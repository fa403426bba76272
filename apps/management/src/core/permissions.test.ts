import { describe, expect, it } from "vitest";
import { PERMISSION_MODULES, permissionsOf } from "./permissions.js";

describe("permissionsOf", () => {
	it("owners and admins may do everything, unrestricted", () => {
		for (const role of ["owner", "admin"] as const) {
			const p = permissionsOf(role);
			expect(p.isRestricted).toBe(false);
			for (const m of PERMISSION_MODULES) {
				expect(p.modules[m]).toEqual({ read: true, create: true, update: true, delete: true });
			}
		}
	});

	it("a user is restricted to their own tokens", () => {
		const p = permissionsOf("user");
		expect(p.isRestricted).toBe(true);
		expect(p.modules.pats).toEqual({ read: true, create: true, update: false, delete: true });
		for (const m of PERMISSION_MODULES.filter((m) => m !== "pats")) {
			expect(Object.values(p.modules[m]).some(Boolean), m).toBe(false);
		}
	});
});
