import type { PortRange, Protocol } from "../domain/types.js";

// What a policy rule grants, as protocol and ports: shared by access policies
// (core/policy.ts) and route filtering (core/routes.ts). Pure.

/** Ports of a rule, canonical: sorted, merged, disjoint; empty = every port. */
export function canonicalPorts(
	protocol: Protocol,
	ports: readonly number[],
	ranges: readonly PortRange[],
): PortRange[] {
	if (protocol !== "tcp" && protocol !== "udp") return [];
	const all = [...ports.map((p) => ({ start: p, end: p })), ...ranges.map((r) => ({ ...r }))].sort(
		(a, b) => a.start - b.start || a.end - b.end,
	);
	const out: PortRange[] = [];
	for (const r of all) {
		const last = out.at(-1);
		if (last && r.start <= last.end + 1) last.end = Math.max(last.end, r.end);
		else out.push(r);
	}
	return out;
}

/** Whether a grant of `protocol`/`ports` (empty = all) allows `wanted` to `port`. */
export function grantAllows(
	protocol: Protocol,
	ports: readonly PortRange[],
	wanted: Exclude<Protocol, "all">,
	port: number,
): boolean {
	if (protocol !== "all" && protocol !== wanted) return false;
	if (wanted === "icmp" || ports.length === 0) return true;
	return ports.some((r) => port >= r.start && port <= r.end);
}
