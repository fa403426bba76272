import type {
	FirewallGrant,
	FirewallRule,
	FirewallRuleChanges,
	FirewallRuleGroup,
} from "@starling/proto";

// Firewall rules change rule by rule. A rule is identified by its whole
// value (source, protocol, ports, policy id): the agent holds a set of rules,
// and a change removes some and adds some. On the wire the rules of a change
// are grouped by grant (protocol, ports, policy id), so a grant is written
// once with the list of its sources (about 16 bytes each), and a grant the
// peer loses entirely is named once without its sources.

/** The grant (rule without its source) as a map key. Ports are compared as listed. */
export function grantKey(rule: FirewallGrant): string {
	let ports = "";
	for (const p of rule.ports) ports += `${p.start}-${p.end},`;
	return `${rule.policyId}|${rule.protocol}|${ports}`;
}

function ruleKey(rule: FirewallRule): string {
	return `${grantKey(rule)}|${rule.source}`;
}

const NO_GRANT: FirewallGrant = { protocol: "", ports: [], policyId: "" };

function grantOf(rule: FirewallRule): FirewallGrant {
	return { protocol: rule.protocol, ports: rule.ports, policyId: rule.policyId };
}

/** Rules grouped by grant, in order of first appearance. */
function grouped(rules: readonly FirewallRule[]): FirewallRuleGroup[] {
	const groups = new Map<string, FirewallRuleGroup>();
	for (const r of rules) {
		const key = grantKey(r);
		let g = groups.get(key);
		if (!g) {
			g = { grant: grantOf(r), sources: [] };
			groups.set(key, g);
		}
		g.sources.push(r.source);
	}
	return [...groups.values()];
}

/** How many rules (sources) a change lists; a removed grant counts as one. */
export function firewallChangeSize(changes: FirewallRuleChanges): number {
	let n = changes.removedGrants.length;
	for (const g of changes.removed) n += g.sources.length;
	for (const g of changes.added) n += g.sources.length;
	return n;
}

/**
 * The change that turns the rule set `before` into `after`, or undefined when
 * they hold the same rules. Each list must hold a rule once (management's
 * lists do). Rule objects shared by both lists are unchanged without
 * comparing them (management shares the objects of unchanged grants between
 * snapshots, and keeps its lists in one order, so a one-rule change leaves a
 * long common head and tail that are skipped by reference); the others are
 * compared by value.
 */
export function diffFirewallRules(
	before: readonly FirewallRule[],
	after: readonly FirewallRule[],
): FirewallRuleChanges | undefined {
	let head = 0;
	while (head < before.length && head < after.length && before[head] === after[head]) head++;
	let tail = 0;
	while (
		tail < before.length - head &&
		tail < after.length - head &&
		before[before.length - 1 - tail] === after[after.length - 1 - tail]
	)
		tail++;
	const beforeMiddle = before.slice(head, before.length - tail);
	const afterMiddle = after.slice(head, after.length - tail);
	const beforeObjects = new Set(beforeMiddle);
	const afterObjects = new Set(afterMiddle);
	let gone = beforeMiddle.filter((r) => !afterObjects.has(r));
	let come = afterMiddle.filter((r) => !beforeObjects.has(r));
	if (gone.length === 0 && come.length === 0) return undefined;
	// Equal values held in different objects are no change.
	const goneKeys = new Set(gone.map(ruleKey));
	const comeKeys = new Set(come.map(ruleKey));
	gone = gone.filter((r) => !comeKeys.has(ruleKey(r)));
	come = come.filter((r) => !goneKeys.has(ruleKey(r)));
	if (gone.length === 0 && come.length === 0) return undefined;

	// Grants still held, among the policies that lost rules (no key for every rule held).
	const policies = new Set(gone.map((r) => r.policyId));
	const grantsAfter = new Set(after.filter((r) => policies.has(r.policyId)).map(grantKey));
	const removedGrants: FirewallGrant[] = [];
	const removed: FirewallRuleGroup[] = [];
	for (const group of grouped(gone)) {
		// No rule of the grant is left: name the grant, not its sources.
		if (grantsAfter.has(grantKey(group.grant!))) removed.push(group);
		else removedGrants.push(group.grant!);
	}
	return { removedGrants, removed, added: grouped(come) };
}

/**
 * The rules after `changes`: removed grants and rules dropped, then added
 * rules appended (a rule already held is not held twice). The order of the
 * result is not meaningful: the firewall renders any order the same.
 */
export function applyFirewallRuleChanges(
	rules: readonly FirewallRule[],
	changes: FirewallRuleChanges,
): FirewallRule[] {
	const droppedGrants = new Set(changes.removedGrants.map(grantKey));
	const dropped = new Set<string>();
	for (const g of changes.removed) {
		const key = grantKey(g.grant ?? NO_GRANT);
		for (const s of g.sources) dropped.add(`${key}|${s}`);
	}
	const out: FirewallRule[] = [];
	const held = new Set<string>();
	for (const r of rules) {
		const key = ruleKey(r);
		if (droppedGrants.has(grantKey(r)) || dropped.has(key) || held.has(key)) continue;
		held.add(key);
		out.push(r);
	}
	for (const g of changes.added) {
		const grant = g.grant ?? NO_GRANT;
		const key = grantKey(grant);
		for (const source of g.sources) {
			const k = `${key}|${source}`;
			if (held.has(k)) continue;
			held.add(k);
			out.push({ source, protocol: grant.protocol, ports: grant.ports, policyId: grant.policyId });
		}
	}
	return out;
}
