import { auditEvent, type Initiator } from "../core/audit.js";
import { groupsOfPolicy } from "../core/group-rules.js";
import { AccessIndex, type CheckProtocol } from "../core/policy.js";
import { newId } from "../core/random.js";
import type { Account, Policy, PolicyRule } from "../domain/types.js";
import type { Store } from "../store/store.js";
import { deleteAudited } from "./audit.js";
import { AppError, notFound, stored } from "./errors.js";
import type { NetworkChangeSink } from "./events.js";
import { assertGroupsExist } from "./references.js";

/** A rule as an admin writes it: `id` names an existing rule of the policy (update) or is absent. */
export type RuleInput = Omit<PolicyRule, "id"> & { id?: string | undefined };

export interface PolicyInput {
	name: string;
	description: string;
	enabled: boolean;
	rules: RuleInput[];
}

function withRuleIds(rules: RuleInput[], existing: readonly PolicyRule[]): PolicyRule[] {
	const known = new Set(existing.map((r) => r.id));
	const seen = new Set<string>();
	return rules.map((r) => {
		if (r.id !== undefined) {
			if (!known.has(r.id)) {
				throw new AppError(
					422,
					`rule id ${r.id} is not a rule of this policy (omit it for a new rule)`,
				);
			}
			if (seen.has(r.id)) throw new AppError(422, `rule id ${r.id} appears twice`);
			seen.add(r.id);
		}
		return { ...r, id: r.id ?? newId() };
	});
}

export async function createPolicy(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	input: PolicyInput,
	initiator: Initiator,
	now: Date,
): Promise<Policy> {
	const policy: Policy = {
		id: newId(),
		accountId,
		name: input.name,
		description: input.description,
		enabled: input.enabled,
		rules: withRuleIds(input.rules, []),
		createdAt: now,
	};
	await stored(
		store.write(async (tx) => {
			await assertGroupsExist(tx, accountId, groupsOfPolicy(policy));
			await tx.insertPolicy(policy);
			await tx.appendEvents([
				auditEvent(accountId, initiator, "policy.add", policy.id, now, {
					name: policy.name,
					enabled: String(policy.enabled),
				}),
			]);
		}),
	);
	sink.accessChanged(accountId);
	return policy;
}

export async function updatePolicy(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	policyId: string,
	input: PolicyInput,
	initiator: Initiator,
	now: Date,
): Promise<Policy> {
	const updated = await stored(
		store.write(async (tx) => {
			const before = await tx.getPolicy(accountId, policyId);
			if (!before) return undefined;
			const after: Policy = { ...before, ...input, rules: withRuleIds(input.rules, before.rules) };
			await assertGroupsExist(tx, accountId, groupsOfPolicy(after));
			await tx.updatePolicy(after);
			await tx.appendEvents([
				auditEvent(accountId, initiator, "policy.update", policyId, now, {
					name: after.name,
					...(before.name !== after.name ? { old_name: before.name } : {}),
					enabled: String(after.enabled),
				}),
			]);
			return after;
		}),
	);
	if (!updated) throw notFound("policy");
	sink.accessChanged(accountId);
	return updated;
}

export async function deletePolicy(
	store: Store,
	sink: NetworkChangeSink,
	accountId: string,
	policyId: string,
	initiator: Initiator,
	now: Date,
): Promise<void> {
	const deleted = await deleteAudited(
		store,
		(tx) => tx.getPolicy(accountId, policyId),
		(tx) => tx.deletePolicy(accountId, policyId),
		(policy) =>
			auditEvent(accountId, initiator, "policy.delete", policyId, now, { name: policy.name }),
	);
	if (!deleted) throw notFound("policy");
	sink.accessChanged(accountId);
}

export interface CheckInput {
	sourcePeerId: string;
	destinationPeerId: string;
	protocol: CheckProtocol;
	/** Ignored for icmp. */
	port: number;
}

export interface CheckResult {
	allowed: boolean;
	rule: { policyId: string; policyName: string; ruleId: string; ruleName: string } | null;
	reason: string;
}

/** Evaluates the account's current policies for one connection, changing nothing. */
export async function checkPolicy(
	store: Store,
	account: Account,
	input: CheckInput,
): Promise<CheckResult> {
	const { peers, groups, policies } = await store.read(async (tx) => ({
		peers: await tx.listPeers(account.id),
		groups: await tx.listGroups(account.id),
		policies: await tx.listPolicies(account.id),
	}));
	const index = AccessIndex.build(account, peers, { groups, policies });
	const src = index.indexOfId(input.sourcePeerId);
	if (src === undefined) throw notFound("source peer");
	const dst = index.indexOfId(input.destinationPeerId);
	if (dst === undefined) throw notFound("destination peer");
	const from = index.peerAt(src);
	const to = index.peerAt(dst);
	const what = input.protocol === "icmp" ? "icmp" : `${input.protocol} port ${input.port}`;
	const path = `from ${from.name} (${from.ip}) to ${to.name} (${to.ip})`;
	if (src === dst) {
		return { allowed: false, rule: null, reason: "source and destination are the same peer" };
	}
	const result = index.check(src, dst, input.protocol, input.port);
	if (result.allowed) {
		return {
			allowed: true,
			rule: {
				policyId: result.policy.id,
				policyName: result.policy.name,
				ruleId: result.rule.id,
				ruleName: result.rule.name,
			},
			reason: `${what} ${path} is allowed by rule "${result.rule.name}" of policy "${result.policy.name}"`,
		};
	}
	return {
		allowed: false,
		rule: null,
		reason: result.connected
			? `no enabled rule allows ${what} ${path}; the peers are connected by other rules, which do not allow it`
			: `no enabled rule allows ${what} ${path}; no enabled rule connects the two peers, so neither sees the other`,
	};
}
