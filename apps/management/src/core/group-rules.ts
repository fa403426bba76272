import type { Group, Policy, RoutingConfig, SetupKey, User } from "../domain/types.js";
import { groupsOfResource, groupsOfRoute, groupsOfRouter } from "./route-rules.js";

// Rules about groups that every store backend shares: names are unique in an
// account, members and references must exist, and a group still named by a
// policy, a setup key, a user, a route or a network resource or router cannot
// be deleted.

/** Group ids a policy's rules name (sources and destinations). */
export function groupsOfPolicy(p: Policy): string[] {
	return p.rules.flatMap((r) => [...r.sources, ...r.destinations]);
}

/** The ids of `wanted` (each once, in order) that are not in `known`. */
export function missingIds(wanted: readonly string[], known: Iterable<string>): string[] {
	const have = new Set(known);
	return [...new Set(wanted)].filter((id) => !have.has(id));
}

/** Whether another group of the account (not `exceptId`) already has `name`. */
export function groupNameTaken(groups: readonly Group[], name: string, exceptId?: string): boolean {
	return groups.some((g) => g.name === name && g.id !== exceptId);
}

export interface GroupReferrers {
	policies: readonly Policy[];
	setupKeys: readonly SetupKey[];
	users: readonly User[];
	/** Routes, network resources and routers (absent: none). */
	routing?: RoutingConfig;
}

/** What still names the group, as readable descriptions ("policy \"web\""), policies first. */
export function groupUsers(groupId: string, from: GroupReferrers): string[] {
	const out: string[] = [];
	for (const p of from.policies)
		if (groupsOfPolicy(p).includes(groupId)) out.push(`policy "${p.name}"`);
	for (const k of from.setupKeys)
		if (k.autoGroups.includes(groupId)) out.push(`setup key "${k.name}"`);
	for (const u of from.users) if (u.autoGroups.includes(groupId)) out.push(`user "${u.name}"`);
	const routing = from.routing;
	if (routing) {
		for (const r of routing.routes)
			if (groupsOfRoute(r).includes(groupId)) out.push(`route "${r.networkId}" (${r.id})`);
		const networkName = new Map(routing.networks.map((n) => [n.id, n.name]));
		for (const r of routing.networkResources)
			if (groupsOfResource(r).includes(groupId)) out.push(`network resource "${r.name}"`);
		for (const r of routing.networkRouters)
			if (groupsOfRouter(r).includes(groupId))
				out.push(`router of network "${networkName.get(r.networkId) ?? r.networkId}"`);
	}
	return out;
}

/** The refusal for deleting a group still in use: the first five users, then a count. */
export function groupInUseMessage(groupName: string, users: readonly string[]): string {
	const more = users.length > 5 ? ` and ${users.length - 5} more` : "";
	return `group "${groupName}" is still used by ${users.slice(0, 5).join(", ")}${more}`;
}
