// Network maps from access policies, and the REST API listing many peers.
//
// In process (pure, no I/O): an account of 5,000 peers in 100 groups with
// 200 policies. Figures: time to compute every peer's full map (visible
// peers and inbound firewall rules), beside the same with the Default policy
// (All to All) as the only policy, as baseline; time to recompute after a
// change to one rule of one policy and produce the delta of every peer (as
// the sync hub does), and the bytes of those deltas per updated peer, with
// incremental firewall changes and, as baseline, with whole firewall lists.
//
// Through management's REST API (its own process): requests per second for
// GET /api/peers of an account of that size (autocannon), against a bare route on the
// same server answering the same bytes, in the same run (lib-rest-scale.ts).
//
// Usage: pnpm bench policy-maps [peers=5000] [groups=100] [policies=200]
//        POLICY_MAPS_ONLY=1 pnpm bench policy-maps   # the in-process map figures only
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { encodeKey, generateKeyPair } from "@starling/crypto";
import {
	type AccessConfig,
	AccessIndex,
	accountFixture,
	computeNetworkMap,
	defaultPolicy,
	deltaForViewer,
	type Group,
	MapTransition,
	type Peer,
	peerFixture,
	type ServiceEndpoints,
} from "@starling/management";
import {
	FirewallRuleChanges,
	FirewallRuleList,
	NetworkMap,
	NetworkMapDelta,
} from "@starling/proto";
import { log, numberArg, round } from "./lib-control-plane.js";
import { compareWithBare, seedAccount, startRestScaleServer } from "./lib-rest-scale.js";
import { syntheticAccess } from "./lib-synthetic-access.js";

const peerCount = numberArg(1, "peers", 5000);
const groupCount = numberArg(2, "groups", 100);
const policyCount = numberArg(3, "policies", 200);
const RUNS = 5;
const REST_SECONDS = 10;

/** Deterministic PRNG (mulberry32), so every run benchmarks the same account. */
function prng(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

const account = accountFixture({ id: "bench" });
const endpoints: ServiceEndpoints = { signal: { url: "http://127.0.0.1:10000" }, stunServers: [] };

function makePeers(n: number): Peer[] {
	return Array.from({ length: n }, (_, i) =>
		peerFixture({
			id: `peer${i}`,
			accountId: account.id,
			wgPublicKey: encodeKey(generateKeyPair().publicKey),
			name: `host-${i}`,
			ip: `100.64.${i >> 8}.${(i & 255) + 1}`,
			connected: true,
		}),
	);
}

/** Every peer in 1 to 3 of the groups; policies of 1 or 2 rules between 1 or 2 groups each side. */
function makeConfig(peers: Peer[], random: () => number): AccessConfig {
	const { groups, policies } = syntheticAccess(
		account.id,
		peers.map((p) => p.id),
		{ groups: groupCount, policies: policyCount },
		random,
	);
	const all: Group = {
		id: "all",
		accountId: account.id,
		name: "All",
		issued: "all",
		peerIds: peers.map((p) => p.id),
	};
	return { groups: [all, ...groups], policies };
}

/** The same groups with only the Default policy of a new account (All to All). */
function defaultOnly(config: AccessConfig): AccessConfig {
	const ids = { accountId: account.id, allGroupId: "all", policyId: "default", ruleId: "default" };
	return { groups: config.groups, policies: [defaultPolicy(ids, new Date(0))] };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Builds the index and every peer's full map; returns ms, map sizes and the
 * encoded size of a sample of maps. The maps are dropped: a benchmark that
 * kept 5,000 maps alive would measure the garbage collector walking them.
 */
function allMaps(peers: Peer[], config: AccessConfig) {
	const c0 = process.cpuUsage();
	const t0 = performance.now();
	const index = AccessIndex.build(account, peers, config);
	let visible = 0;
	let rules = 0;
	for (let i = 0; i < index.size; i++) {
		const map = computeNetworkMap(index, i, endpoints, 1);
		visible += map.peers.length;
		rules += map.firewallRules.length;
	}
	const ms = performance.now() - t0;
	const cpuMs = cpuMsSince(c0);
	let sampleBytes = 0;
	let sampled = 0;
	for (let i = 0; i < index.size; i += 50) {
		sampleBytes += NetworkMap.encode(computeNetworkMap(index, i, endpoints, 1)).finish().length;
		sampled++;
	}
	return { ms, cpuMs, index, visible, rules, mapBytes: sampled ? sampleBytes / sampled : 0 };
}

/**
 * Recomputes after a config change and makes every peer's delta, as the hub
 * does on push for agents that fold firewall changes (timed). The deltas are
 * dropped as they are made, as the hub drops each once written: keeping
 * 5,000 of them alive would time the garbage collector walking them. A second,
 * untimed pass encodes each peer's delta twice: with firewall changes, and
 * with the whole firewall list (what an agent that does not fold changes gets),
 * unless `measureBytes` is false.
 */
function changeAndDeltas(
	base: AccessIndex,
	peers: Peer[],
	config: AccessConfig,
	measureBytes = true,
) {
	const c0 = process.cpuUsage();
	const t0 = performance.now();
	const next = AccessIndex.build(account, peers, config, base);
	const t = new MapTransition(base, next, new Map());
	let affected = 0;
	for (let i = 0; i < next.size; i++) {
		if (deltaForViewer(next.peerAt(i).wgPublicKey, t, undefined, 1, 2, true)) affected++;
	}
	const ms = performance.now() - t0;
	const cpuMs = cpuMsSince(c0);
	let bytes = 0;
	let maxBytes = 0;
	let wholeListBytes = 0;
	let firewallBytes = 0;
	let wholeListFirewallBytes = 0;
	let firewallUpdated = 0;
	for (let i = 0; measureBytes && i < next.size; i++) {
		const key = next.peerAt(i).wgPublicKey;
		const delta = deltaForViewer(key, t, undefined, 1, 2, true);
		if (!delta) continue;
		const size = NetworkMapDelta.encode(delta).finish().length;
		bytes += size;
		maxBytes = Math.max(maxBytes, size);
		if (delta.firewallChanges || delta.firewallRules) firewallUpdated++;
		firewallBytes += firewallPartBytes(delta);
		const whole = deltaForViewer(key, t, undefined, 1, 2, false)!;
		wholeListBytes += NetworkMapDelta.encode(whole).finish().length;
		wholeListFirewallBytes += firewallPartBytes(whole);
	}
	return {
		ms,
		cpuMs,
		affected,
		firewallUpdated,
		bytes,
		maxBytes,
		wholeListBytes,
		firewallBytes,
		wholeListFirewallBytes,
		scope: t.scope === "all" ? peers.length : t.scope.size,
	};
}

/** The encoded size of a delta's firewall part (changes or whole list). */
function firewallPartBytes(delta: NetworkMapDelta): number {
	if (delta.firewallChanges)
		return FirewallRuleChanges.encode(delta.firewallChanges).finish().length;
	if (delta.firewallRules) return FirewallRuleList.encode(delta.firewallRules).finish().length;
	return 0;
}

/** CPU time of this process (all threads, garbage collector included) since `start`: less disturbed by other load than wall time. */
function cpuMsSince(start: NodeJS.CpuUsage): number {
	const used = process.cpuUsage(start);
	return (used.user + used.system) / 1000;
}

function gc(): void {
	(globalThis as { gc?: () => void }).gc?.();
}

function pureFigures() {
	const loadAtStart = round(loadavg()[0]!, 2);
	const random = prng(42);
	const peers = makePeers(peerCount);
	const config = makeConfig(peers, random);
	const base = defaultOnly(config);

	log(`computing all maps: ${peerCount} peers, ${groupCount} groups, ${policyCount} policies`);
	const withPolicies: number[] = [];
	const baseline: number[] = [];
	const withPoliciesCpu: number[] = [];
	const baselineCpu: number[] = [];
	let sample = allMaps(peers, config);
	let baseSample = allMaps(peers, base);
	for (let r = 0; r < RUNS; r++) {
		gc();
		sample = allMaps(peers, config);
		withPolicies.push(sample.ms);
		withPoliciesCpu.push(sample.cpuMs);
		gc();
		baseSample = allMaps(peers, base);
		baseline.push(baseSample.ms);
		baselineCpu.push(baseSample.cpuMs);
	}
	const fullBytes = sample.mapBytes;

	log("one rule of one policy changes (a port, then its destination groups)");
	const changeMs: number[] = [];
	const changeCpuMs: number[] = [];
	const changes: {
		change: string;
		ms: number;
		cpu_ms: number;
		peers_updated: number;
		firewall_updated: number;
		bytes_per_updated_peer: number;
		firewall_bytes_per_updated_peer: number;
		max_peer_bytes: number;
		whole_list_bytes_per_updated_peer: number;
		whole_list_firewall_bytes_per_updated_peer: number;
	}[] = [];
	changeAndDeltas(sample.index, peers, config);
	for (let r = 0; r < RUNS; r++) {
		const target = r % policyCount;
		const portChange = r % 2 === 0;
		const policies = config.policies.map((p, i) =>
			i !== target
				? p
				: {
						...p,
						// Only the policy's first rule changes.
						rules: p.rules.map((rule, k) =>
							k > 0
								? rule
								: portChange
									? {
											...rule,
											protocol: "tcp" as const,
											ports: [rule.ports[0] === 2222 ? 2223 : 2222],
										}
									: {
											...rule,
											destinations: [
												`g${(Number(rule.destinations[0]!.slice(1)) + 1) % groupCount}`,
											],
										},
						),
					},
		);
		const fresh = allMaps(peers, config).index;
		gc();
		const c = changeAndDeltas(fresh, peers, { groups: config.groups, policies });
		changeMs.push(c.ms);
		changeCpuMs.push(c.cpuMs);
		changes.push({
			change: `${config.policies[target]!.id} rule 0: ${portChange ? "port" : "destination group"}`,
			ms: round(c.ms),
			cpu_ms: round(c.cpuMs),
			peers_updated: c.affected,
			firewall_updated: c.firewallUpdated,
			bytes_per_updated_peer: round(c.bytes / Math.max(1, c.affected), 0),
			firewall_bytes_per_updated_peer: round(c.firewallBytes / Math.max(1, c.affected), 0),
			max_peer_bytes: c.maxBytes,
			whole_list_bytes_per_updated_peer: round(c.wholeListBytes / Math.max(1, c.affected), 0),
			whole_list_firewall_bytes_per_updated_peer: round(
				c.wholeListFirewallBytes / Math.max(1, c.affected),
				0,
			),
		});
	}
	const firewallPerPeer = changes.map((c) => c.firewall_bytes_per_updated_peer);
	const wholeFirewallPerPeer = changes.map((c) => c.whole_list_firewall_bytes_per_updated_peer);

	log("baseline: disabling the Default policy of the Default-only account (every peer affected)");
	const disabled = {
		groups: base.groups,
		policies: base.policies.map((p) => ({ ...p, enabled: false })),
	};
	const disables = [];
	for (let r = 0; r < 3; r++) {
		gc();
		disables.push(changeAndDeltas(baseSample.index, peers, disabled, false));
	}
	// The median run by wall time.
	const disable = [...disables].sort((a, b) => a.ms - b.ms)[1]!;

	return {
		loadavg_1m_at_start: loadAtStart,
		loadavg_1m_after_maps: round(loadavg()[0]!, 2),
		all_maps_ms: round(median(withPolicies)),
		all_maps_runs_ms: withPolicies.map((ms) => round(ms)),
		all_maps_default_only_ms: round(median(baseline)),
		all_maps_default_only_runs_ms: baseline.map((ms) => round(ms)),
		all_maps_ratio: round(median(withPolicies) / median(baseline), 2),
		all_maps_cpu_ms: round(median(withPoliciesCpu)),
		all_maps_default_only_cpu_ms: round(median(baselineCpu)),
		all_maps_cpu_ratio: round(median(withPoliciesCpu) / median(baselineCpu), 2),
		avg_visible_peers: round(sample.visible / peerCount, 1),
		avg_firewall_rules: round(sample.rules / peerCount, 1),
		avg_full_map_bytes: round(fullBytes, 0),
		policy_change_ms: round(median(changeMs)),
		policy_change_cpu_ms: round(median(changeCpuMs)),
		// Per change: deltas as sent to agents that fold firewall changes, and
		// (baseline, same change) with the whole firewall list instead. Bytes
		// are whole encoded deltas (peers seen or no longer seen included) and
		// their firewall part alone, averaged over the peers updated.
		one_rule_changes: changes,
		one_rule_change_firewall_bytes_per_updated_peer_max: Math.max(...firewallPerPeer),
		one_rule_change_whole_list_firewall_bytes_per_updated_peer_max: Math.max(
			...wholeFirewallPerPeer,
		),
		one_rule_change_bytes_ratio_to_whole_list: round(
			changes.reduce((n, c) => n + c.bytes_per_updated_peer * c.peers_updated, 0) /
				changes.reduce((n, c) => n + c.whole_list_bytes_per_updated_peer * c.peers_updated, 0),
			3,
		),
		disable_default_ms: round(disable.ms),
		disable_default_cpu_ms: round(disable.cpuMs),
		disable_default_peers_updated: disable.affected,
		disable_default_ratio_to_default_only_all_maps: round(disable.ms / median(baseline), 2),
		disable_default_cpu_ratio_to_default_only_all_maps: round(
			disable.cpuMs / median(baselineCpu),
			2,
		),
	};
}

/**
 * GET /api/peers of an account of the same size (peers, groups and policies
 * drawn by lib-rest-scale.ts, seeded into SQLite) through management's REST API, against a bare route on
 * the same server answering the same bytes from an array computed once
 * (lib-rest-scale-server.ts): the same work minus the token check, the store
 * and the schema serializer.
 */
async function restFigures() {
	const dataDir = mkdtempSync(join(tmpdir(), "starling-bench-seed-"));
	try {
		log(
			`seeding ${peerCount} peers, ${groupCount} groups, ${policyCount} policies into a fresh store`,
		);
		const seeded = await seedAccount(join(dataDir, "management.db"), {
			peers: peerCount,
			groups: groupCount,
			policies: policyCount,
		});
		const server = await startRestScaleServer(seeded);
		try {
			const peers = await compareWithBare(server, seeded.adminToken, "/api/peers", {
				seconds: REST_SECONDS,
				connections: 4,
				log,
			});
			return {
				rest_list_peers_rps: peers.rps,
				rest_list_peers_p50_ms: peers.p50_ms,
				rest_list_peers_p99_ms: peers.p99_ms,
				rest_list_peers_body_bytes: peers.body_bytes,
				rest_bare_peers_rps: peers.bare_rps,
				rest_list_to_bare_ratio: peers.ratio_to_bare,
			};
		} finally {
			await server.stop();
		}
	} finally {
		rmSync(dataDir, { recursive: true, force: true });
	}
}

async function main(): Promise<void> {
	const pure = pureFigures();
	log(JSON.stringify(pure));
	// The map figures alone (no store seeding, no REST): POLICY_MAPS_ONLY=1.
	const rest = process.env.POLICY_MAPS_ONLY === "1" ? { rest: "skipped" } : await restFigures();
	const result = {
		bench: "policy-maps",
		peers: peerCount,
		groups: groupCount,
		policies: policyCount,
		...pure,
		...rest,
	};
	process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err) => {
	console.error(err);
	process.exit(1);
});
