import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Policy, SetupKey, User } from "../domain/types.js";
import {
	groupInUseMessage,
	groupNameTaken,
	groupsOfPolicy,
	groupUsers,
	missingIds,
} from "./group-rules.js";

const policy = (name: string, sources: string[], destinations: string[]) =>
	({ name, rules: [{ sources, destinations }] }) as unknown as Policy;
const key = (name: string, autoGroups: string[]) => ({ name, autoGroups }) as SetupKey;
const user = (name: string, autoGroups: string[]) => ({ name, autoGroups }) as User;

describe("missingIds", () => {
	it("is every wanted id not known, each once, in the order first wanted (model)", () => {
		const id = fc.constantFrom("a", "b", "c", "d", "e");
		fc.assert(
			fc.property(fc.array(id), fc.array(id), (wanted, known) => {
				const model: string[] = [];
				for (const w of wanted) if (!known.includes(w) && !model.includes(w)) model.push(w);
				expect(missingIds(wanted, known)).toEqual(model);
			}),
		);
	});
});

describe("groupNameTaken", () => {
	const groups = [
		{ id: "1", accountId: "a", name: "web", issued: "api" as const, peerIds: [] },
		{ id: "2", accountId: "a", name: "db", issued: "api" as const, peerIds: [] },
	];
	it("is taken by another group, not by the group itself", () => {
		expect(groupNameTaken(groups, "web")).toBe(true);
		expect(groupNameTaken(groups, "web", "1")).toBe(false);
		expect(groupNameTaken(groups, "web", "2")).toBe(true);
		expect(groupNameTaken(groups, "Web")).toBe(false);
	});
});

describe("groupUsers", () => {
	it("lists policies (source or destination), setup keys and users naming the group, in that order", () => {
		const users = groupUsers("g", {
			policies: [policy("to", [], ["g"]), policy("none", ["x"], ["y"]), policy("from", ["g"], [])],
			setupKeys: [key("k", ["g"]), key("other", [])],
			users: [user("ann", ["x", "g"])],
		});
		expect(users).toEqual(['policy "to"', 'policy "from"', 'setup key "k"', 'user "ann"']);
		expect(groupUsers("unused", { policies: [], setupKeys: [key("k", ["g"])], users: [] })).toEqual(
			[],
		);
	});

	it("groupsOfPolicy lists every source and destination of every rule", () => {
		expect(groupsOfPolicy(policy("p", ["a", "b"], ["c"]))).toEqual(["a", "b", "c"]);
	});
});

describe("groupInUseMessage", () => {
	it("names up to five users, then counts the rest", () => {
		expect(groupInUseMessage("web", ['policy "a"'])).toBe(
			'group "web" is still used by policy "a"',
		);
		const seven = Array.from({ length: 7 }, (_, i) => `user "${i}"`);
		expect(groupInUseMessage("web", seven)).toBe(
			'group "web" is still used by user "0", user "1", user "2", user "3", user "4" and 2 more',
		);
	});
});
