// Network maps from access policies, and the REST API listing many peers.
//
// In process (pure, no I/O): an account of 5,000 peers in 100 groups with
// 200 policies. Figures: time to compute every peer's full map (visible
// peers and inbound firewall rules); time to recompute after one policy
// change and produce the delta of every peer (as the sync hub does); the
// same with the Default policy (All to All) as the only policy, as baseline.
//
// Through management's REST API (its own process): requests per second for
// GET /api/peers of an account of that size (autocannon), against a bare route on the
// same server answering the same bytes, in the same run (lib-rest-scale.ts).
//
// Usage: pnpm bench policy-maps [peers=5000] [groups=100] [policies=200]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
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
	type Policy,
	type PolicyRule,
	peerFixture,
	type ServiceEndpoints,
} from "@starling/management";
import { NetworkMap, NetworkMapDelta } from "@starling/proto";
import { log, numberArg, round } from "./lib-control-plane.js";
import { compareWithBare, seedAccount, startRestScaleServer } from "./lib-rest-scale.js";

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
	const pick = (n: number) => Math.floor(random() * n);
	const members: string[][] = Array.from({ length: groupCount }, () => []);
	for (const p of peers) {
		const k = 1 + pick(3);
		for (let j = 0; j < k; j++) members[pick(groupCount)]!.push(p.id);
	}
	const groups: Group[] = [
		{
			id: "all",
			accountId: account.id,
			name: "All",
			issued: "all",
			peerIds: peers.map((p) => p.id),
		},
		...members.map(
			(ids, g): Group => ({
				id: `g${g}`,
				accountId: account.id,
				name: `group-${g}`,
				issued: "api",
				peerIds: [...new Set(ids)],
			}),
		),
	];
	const someGroups = () => [
		...new Set(Array.from({ length: 1 + pick(2) }, () => `g${pick(groupCount)}`)),
	];
	const policies: Policy[] = Array.from({ length: policyCount }, (_, i) => ({
		id: `pol${i}`,
		accountId: account.id,
		name: `policy-${i}`,
		description: "",
		enabled: true,
		createdAt: new Date(i),
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
	let sampleBytes = 0;
	let sampled = 0;
	for (let i = 0; i < index.size; i += 50) {
		sampleBytes += NetworkMap.encode(computeNetworkMap(index, i, endpoints, 1)).finish().length;
		sampled++;
	}
	return { ms, index, visible, rules, mapBytes: sampled ? sampleBytes / sampled : 0 };
}

/** Recomputes after a config change and makes every peer's delta, as the hub does on push. */
function changeAndDeltas(base: AccessIndex, peers: Peer[], config: AccessConfig) {
	const t0 = performance.now();
	const next = AccessIndex.build(account, peers, config, base);
	const t = new MapTransition(base, next, new Map());
	let affected = 0;
	let bytes = 0;
	const deltas = [];
	for (let i = 0; i < next.size; i++) {
		const delta = deltaForViewer(next.peerAt(i).wgPublicKey, t, undefined, 1, 2);
		if (delta) {
			affected++;
			deltas.push(delta);
		}
	}
	const ms = performance.now() - t0;
	for (const d of deltas) bytes += NetworkMapDelta.encode(d).finish().length;
	return { ms, affected, bytes, scope: t.scope === "all" ? peers.length : t.scope.size };
}

function gc(): void {
	(globalThis as { gc?: () => void }).gc?.();
}

function pureFigures() {
	const random = prng(42);
	const peers = makePeers(peerCount);
	const config = makeConfig(peers, random);
	const base = defaultOnly(config);

	log(`computing all maps: ${peerCount} peers, ${groupCount} groups, ${policyCount} policies`);
	const withPolicies: number[] = [];
	const baseline: number[] = [];
	let sample = allMaps(peers, config);
	let baseSample = allMaps(peers, base);
	for (let r = 0; r < RUNS; r++) {
		gc();
		sample = allMaps(peers, config);
		withPolicies.push(sample.ms);
		gc();
		baseSample = allMaps(peers, base);
		baseline.push(baseSample.ms);
	}
	const fullBytes = sample.mapBytes;

	log("one policy changes (a port, then its destination groups)");
	const changeMs: number[] = [];
	let change = changeAndDeltas(sample.index, peers, config);
	for (let r = 0; r < RUNS; r++) {
		const target = r % policyCount;
		const policies = config.policies.map((p, i) =>
			i !== target
				? p
				: {
						...p,
						rules: p.rules.map((rule) =>
							r % 2 === 0
								? {
										...rule,
										protocol: "tcp" as const,
										ports: [rule.ports[0] === 2222 ? 2223 : 2222],
									}
								: {
										...rule,
										destinations: [`g${(Number(rule.destinations[0]!.slice(1)) + 1) % groupCount}`],
									},
						),
					},
		);
		const fresh = allMaps(peers, config).index;
		gc();
		change = changeAndDeltas(fresh, peers, { groups: config.groups, policies });
		changeMs.push(change.ms);
	}

	log("baseline: disabling the Default policy of the Default-only account (every peer affected)");
	gc();
	const disable = changeAndDeltas(baseSample.index, peers, {
		groups: base.groups,
		policies: base.policies.map((p) => ({ ...p, enabled: false })),
	});

	return {
		all_maps_ms: round(median(withPolicies)),
		all_maps_default_only_ms: round(median(baseline)),
		all_maps_ratio: round(median(withPolicies) / median(baseline), 2),
		avg_visible_peers: round(sample.visible / peerCount, 1),
		avg_firewall_rules: round(sample.rules / peerCount, 1),
		avg_full_map_bytes: round(fullBytes, 0),
		policy_change_ms: round(median(changeMs)),
		policy_change_peers_in_scope: change.scope,
		policy_change_peers_updated: change.affected,
		policy_change_delta_bytes: change.bytes,
		disable_default_ms: round(disable.ms),
		disable_default_peers_updated: disable.affected,
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
	const rest = await restFigures();
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
