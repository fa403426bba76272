import type { Policy } from "../domain/types.js";
import { cidrContains, parseCidr } from "./ipam.js";

// Rules of an account that every store backend shares: what a new account
// starts with, and which network ranges may coexist.

export interface DefaultPolicyIds {
	accountId: string;
	allGroupId: string;
	policyId: string;
	ruleId: string;
}

/** The Default policy of a new account: All to All, both ways, every protocol. */
export function defaultPolicy(ids: DefaultPolicyIds, at: Date): Policy {
	return {
		id: ids.policyId,
		accountId: ids.accountId,
		name: "Default",
		description: "This is a default policy that allows connections between all the resources",
		enabled: true,
		rules: [
			{
				id: ids.ruleId,
				name: "Default",
				description: "This is a default rule that allows connections between all the resources",
				enabled: true,
				action: "accept",
				bidirectional: true,
				protocol: "all",
				ports: [],
				portRanges: [],
				sources: [ids.allGroupId],
				destinations: [ids.allGroupId],
			},
		],
		createdAt: at,
	};
}

/** Whether two CIDR ranges share at least one address. */
export function networksOverlap(a: string, b: string): boolean {
	const x = parseCidr(a);
	const y = parseCidr(b);
	return cidrContains(x, y) || cidrContains(y, x);
}

/** The first of `others` that shares an address with `wanted`, if any. */
export function overlappingNetwork(wanted: string, others: readonly string[]): string | undefined {
	return others.find((o) => networksOverlap(wanted, o));
}
