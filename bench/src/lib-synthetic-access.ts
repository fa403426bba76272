// The synthetic groups and policies that policy-maps and rest-scale load into
// an account: every peer in 1-3 of `groups` random groups, `policies`
// policies of 1-2 accept rules between 1-2 random groups each (tcp, udp or
// all; common ports, now and then a port range). Drawn from `random`, so a
// seeded generator gives the same account every run.
import type { Group, Policy, PolicyRule } from "@starling/management";

export interface SyntheticAccess {
	/** The random groups `g0`…`g{n-1}` (no All group: the caller has its own). */
	groups: Group[];
	policies: Policy[];
}

export function syntheticAccess(
	accountId: string,
	peerIds: readonly string[],
	counts: { groups: number; policies: number },
	random: () => number,
): SyntheticAccess {
	const pick = (n: number) => Math.floor(random() * n);
	const members: Set<string>[] = Array.from({ length: counts.groups }, () => new Set());
	for (const id of peerIds) {
		for (let k = 1 + pick(3); k > 0; k--) members[pick(counts.groups)]!.add(id);
	}
	const groups: Group[] = members.map((ids, g) => ({
		id: `g${g}`,
		accountId,
		name: `group-${g}`,
		issued: "api",
		peerIds: [...ids].sort(),
	}));
	const someGroups = () => [
		...new Set(Array.from({ length: 1 + pick(2) }, () => `g${pick(counts.groups)}`)),
	];
	const policies: Policy[] = Array.from({ length: counts.policies }, (_, i) => ({
		id: `pol${i}`,
		accountId,
		name: `policy-${i}`,
		description: "",
		enabled: true,
		createdAt: new Date(1_700_000_000_000 + i),
		rules: Array.from({ length: 1 + pick(2) }, (_, r): PolicyRule => {
			const protocol = (["tcp", "udp", "all", "tcp"] as const)[pick(4)]!;
			return {
				id: `pol${i}-r${r}`,
				name: `rule-${r}`,
				description: "",
				enabled: true,
				action: "accept",
				bidirectional: random() < 0.3,
				protocol,
				ports: protocol === "all" ? [] : [[22, 80, 443, 5432, 8080][pick(5)]!],
				portRanges: protocol === "tcp" && random() < 0.2 ? [{ start: 9000, end: 9100 }] : [],
				sources: someGroups(),
				destinations: someGroups(),
			};
		}),
	}));
	return { groups, policies };
}
