import type { FirewallRule } from "@starling/proto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
	applyFirewallRuleChanges,
	diffFirewallRules,
	firewallChangeSize,
} from "./firewall-changes.js";

const ruleArb: fc.Arbitrary<FirewallRule> = fc.record({
	source: fc.constantFrom("100.64.0.1/32", "100.64.0.2/32", "100.64.0.3/32", "100.64.0.0/16"),
	protocol: fc.constantFrom("tcp", "udp", "all"),
	ports: fc.constantFrom(
		[],
		[{ start: 22, end: 22 }],
		[
			{ start: 80, end: 80 },
			{ start: 9000, end: 9100 },
		],
	),
	policyId: fc.constantFrom("p1", "p2", "p3"),
});

const key = (r: FirewallRule) =>
	`${r.policyId}|${r.protocol}|${r.ports.map((p) => `${p.start}-${p.end}`).join(",")}|${r.source}`;
/** A rule list as the set of rules it holds. */
const asSet = (rules: readonly FirewallRule[]) => [...new Set(rules.map(key))].sort();
const rulesArb = fc.uniqueArray(ruleArb, { selector: key, maxLength: 20 });

describe("firewall rule changes", () => {
	it("property: apply(before, diff(before, after)) holds the rules of after", () => {
		fc.assert(
			fc.property(
				rulesArb,
				rulesArb,
				fc.array(fc.boolean()),
				fc.boolean(),
				(before, extra, keep, copy) => {
					// As management makes them: the next list shares the objects of rules
					// that did not change, in the same order, with new rules among them.
					const kept = before.filter((_, i) => keep[i] ?? true);
					const middle = Math.floor(kept.length / 2);
					const seen = new Set<string>();
					const after = [...kept.slice(0, middle), ...extra, ...kept.slice(middle)].filter((r) => {
						const k = key(r);
						if (seen.has(k)) return false;
						seen.add(k);
						return true;
					});
					const changes = diffFirewallRules(before, after);
					// The agent folds into its own copy.
					const held = copy ? structuredClone(before) : before;
					const folded = changes ? applyFirewallRuleChanges(held, changes) : held;
					expect(asSet(folded)).toEqual(asSet(after));
					expect(folded.length).toBe(asSet(folded).length);
					if (changes === undefined) expect(asSet(before)).toEqual(asSet(after));
				},
			),
			{ numRuns: 1000 },
		);
	});

	it("property: the same for unrelated lists (no shared objects)", () => {
		fc.assert(
			fc.property(rulesArb, rulesArb, (before, after) => {
				const changes = diffFirewallRules(before, after);
				const folded = changes ? applyFirewallRuleChanges(before, changes) : before;
				expect(asSet(folded)).toEqual(asSet(after));
			}),
			{ numRuns: 500 },
		);
	});

	it("names a grant that is gone without its sources, and lists only what changed", () => {
		const grant = { protocol: "tcp", ports: [{ start: 22, end: 22 }], policyId: "p1" };
		const before: FirewallRule[] = ["100.64.0.1/32", "100.64.0.2/32", "100.64.0.3/32"].map(
			(source) => ({ source, ...grant }),
		);
		const kept: FirewallRule = {
			source: "100.64.0.9/32",
			protocol: "udp",
			ports: [],
			policyId: "p2",
		};
		const moved = before.map((r) => ({ ...r, ports: [{ start: 2222, end: 2222 }] }));
		const changes = diffFirewallRules([...before, kept], [kept, ...moved]);
		expect(changes).toEqual({
			removedGrants: [grant],
			removed: [],
			added: [
				{
					grant: { ...grant, ports: [{ start: 2222, end: 2222 }] },
					sources: ["100.64.0.1/32", "100.64.0.2/32", "100.64.0.3/32"],
				},
			],
		});
		expect(firewallChangeSize(changes!)).toBe(4);
		const one = diffFirewallRules(before, before.slice(1));
		expect(one).toEqual({
			removedGrants: [],
			removed: [{ grant, sources: ["100.64.0.1/32"] }],
			added: [],
		});
	});

	it("an equal rule in another object is no change", () => {
		const rule: FirewallRule = {
			source: "100.64.0.1/32",
			protocol: "all",
			ports: [],
			policyId: "p",
		};
		expect(diffFirewallRules([rule], [{ ...rule }])).toBeUndefined();
	});
});
