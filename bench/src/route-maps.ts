// Routes in network maps, in process (pure, no I/O): what routes add to the
// computation of every peer's map, and what a route change costs the sync
// hub (recompute and every peer's delta), each beside a baseline doing the
// same work in the same run.
//
// The account: 5,000 peers in 100 groups with 200 policies (the generator of
// policy-maps, same seed), plus routes: 20 subnet networks served by an HA
// pair each (two routes with one network_id, metrics 10 and 20), received by
// 1-2 groups, one in three behind access control groups; an exit node pair
// for All (skip_auto_apply); 2 Networks of 5 resources each, with 2 routers.
//
// Figures (median of 5):
//   all_maps: build the index and every peer's full map, with the routes,
//     against the same account without routes (baseline).
//   route_change: one route's metric (or masquerade) changes; build the next
//     index and every peer's delta, as the hub does on push; against one
//     policy's port change on the same account (baseline, same work).
//
// Usage: pnpm bench route-maps [peers=5000] [groups=100] [policies=200] [networks=20]
import { loadavg } from "node:os";
import { encodeKey, generateKeyPair } from "@starling/crypto";
import {
	type AccessConfig,
	AccessIndex,
	accountFixture,
	computeNetworkMap,
	deltaForViewer,
	type Group,
	MapTransition,
	type NetworkResource,
	type NetworkRouter,
	type Peer,
	peerFixture,
	type Route,
	type RoutingConfig,
	routeFixture,
	type ServiceEndpoints,
} from "@starling/management";
import { NetworkMapDelta } from "@starling/proto";
import { log, numberArg, round } from "./lib-control-plane.js";
import { syntheticAccess } from "./lib-synthetic-access.js";

const peerCount = numberArg(1, "peers", 5000);
const groupCount = numberArg(2, "groups", 100);
const policyCount = numberArg(3, "policies", 200);
const networkCount = numberArg(4, "networks", 20);
const RUNS = 5;

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
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

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

function makeAccess(peers: Peer[], random: () => number): AccessConfig {
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

function makeRouting(peers: Peer[], random: () => number): RoutingConfig {
	const pick = (n: number) => Math.floor(random() * n);
	const someGroups = () => [
		...new Set(Array.from({ length: 1 + pick(2) }, () => `g${pick(groupCount)}`)),
	];
	const route = (over: Partial<Route> & Pick<Route, "id" | "networkId" | "network">): Route =>
		routeFixture({ accountId: account.id, description: over.id, metric: 10, ...over });
	const routes: Route[] = [];
	for (let n = 0; n < networkCount; n++) {
		const groups = someGroups();
		const accessControlGroups = n % 3 === 0 ? [`g${pick(groupCount)}`] : [];
		for (const [k, metric] of [10, 20].entries()) {
			routes.push(
				route({
					id: `net${n}-r${k}`,
					networkId: `net${n}`,
					network: `198.18.${n}.0/24`,
					peerId: peers[pick(peers.length)]!.id,
					metric,
					groups,
					accessControlGroups,
				}),
			);
		}
	}
	for (const [k, metric] of [10, 20].entries()) {
		routes.push(
			route({
				id: `exit-r${k}`,
				networkId: "exit",
				network: "0.0.0.0/0",
				peerId: peers[pick(peers.length)]!.id,
				metric,
				groups: ["all"],
				skipAutoApply: true,
			}),
		);
	}
	const networks = ["office", "lab"].map((id) => ({
		id,
		accountId: account.id,
		name: id,
		description: "",
	}));
	const networkResources: NetworkResource[] = networks.flatMap((net, j) =>
		Array.from({ length: 5 }, (_, k) => ({
			id: `${net.id}-res${k}`,
			accountId: account.id,
			networkId: net.id,
			name: `${net.id}-res${k}`,
			description: "",
			address: `198.19.${j}.${k + 1}`,
			type: "host" as const,
			prefix: `198.19.${j}.${k + 1}/32`,
			enabled: true,
			// The groups the synthetic policies name as destinations reach them.
			groups: [`g${pick(groupCount)}`],
		})),
	);
	const networkRouters: NetworkRouter[] = networks.flatMap((net) =>
		[10, 20].map((metric, k) => ({
			id: `${net.id}-router${k}`,
			accountId: account.id,
			networkId: net.id,
			peerId: peers[pick(peers.length)]!.id,
			peerGroups: [],
			metric,
			masquerade: true,
			enabled: true,
		})),
	);
	return { routes, networks, networkResources, networkRouters };
}

/** Builds the index and every peer's full map (dropped as made); returns ms and sizes. */
function allMaps(peers: Peer[], config: AccessConfig) {
	const c0 = process.cpuUsage();
	const t0 = performance.now();
	const index = AccessIndex.build(account, peers, config);
	let visible = 0;
	let routes = 0;
	let served = 0;
	for (let i = 0; i < index.size; i++) {
		const map = computeNetworkMap(index, i, endpoints, 1);
		visible += map.peers.length;
		routes += map.routes.length;
		served += map.servedRoutes.length;
	}
	return { ms: performance.now() - t0, cpuMs: cpuMsSince(c0), index, visible, routes, served };
}

/** The next index after a change and every peer's delta, as the hub pushes (timed); then their bytes (untimed). */
function changeAndDeltas(base: AccessIndex, peers: Peer[], config: AccessConfig) {
	const c0 = process.cpuUsage();
	const t0 = performance.now();
	const next = AccessIndex.build(account, peers, config, base);
	const t = new MapTransition(base, next, new Map());
	let updated = 0;
	for (let i = 0; i < next.size; i++) {
		if (deltaForViewer(next.peerAt(i).wgPublicKey, t, undefined, 1, 2, true)) updated++;
	}
	const ms = performance.now() - t0;
	const cpuMs = cpuMsSince(c0);
	let bytes = 0;
	for (let i = 0; i < next.size; i++) {
		const delta = deltaForViewer(next.peerAt(i).wgPublicKey, t, undefined, 1, 2, true);
		if (delta) bytes += NetworkMapDelta.encode(delta).finish().length;
	}
	return { ms, cpuMs, updated, bytes, routeScope: t.routeScope.size };
}

/** CPU time of this process since `start`: less disturbed than wall time by the machine's other load. */
function cpuMsSince(start: NodeJS.CpuUsage): number {
	const used = process.cpuUsage(start);
	return (used.user + used.system) / 1000;
}

function gc(): void {
	(globalThis as { gc?: () => void }).gc?.();
}

function main() {
	const loadAtStart = round(loadavg()[0]!, 2);
	const random = prng(42);
	const peers = makePeers(peerCount);
	const access = makeAccess(peers, random);
	const routing = makeRouting(peers, random);
	const withRoutes: AccessConfig = { ...access, routing };

	log(
		`all maps: ${peerCount} peers, ${routing.routes.length} routes, 10 resources; baseline without routes`,
	);
	const mapsMs: number[] = [];
	const baseMs: number[] = [];
	const mapsCpu: number[] = [];
	const baseCpu: number[] = [];
	let sample = allMaps(peers, withRoutes);
	let baseSample = allMaps(peers, access);
	for (let r = 0; r < RUNS; r++) {
		gc();
		sample = allMaps(peers, withRoutes);
		mapsMs.push(sample.ms);
		mapsCpu.push(sample.cpuMs);
		gc();
		baseSample = allMaps(peers, access);
		baseMs.push(baseSample.ms);
		baseCpu.push(baseSample.cpuMs);
	}

	log("one route changes (metric, then masquerade); baseline: one policy's port changes");
	const routeMs: number[] = [];
	const policyMs: number[] = [];
	const routeCpu: number[] = [];
	const policyCpu: number[] = [];
	const routeRuns: {
		change: string;
		ms: number;
		peers_updated: number;
		route_scope: number;
		bytes: number;
	}[] = [];
	const policyRuns: { change: string; ms: number; peers_updated: number; bytes: number }[] = [];
	for (let r = 0; r < RUNS; r++) {
		const target = (r * 7) % routing.routes.length;
		const metric = r % 2 === 0;
		const routes = routing.routes.map((route, i) =>
			i !== target
				? route
				: metric
					? { ...route, metric: route.metric + 1 }
					: { ...route, masquerade: !route.masquerade },
		);
		const fresh = allMaps(peers, withRoutes).index;
		gc();
		const c = changeAndDeltas(fresh, peers, { ...access, routing: { ...routing, routes } });
		routeMs.push(c.ms);
		routeCpu.push(c.cpuMs);
		routeRuns.push({
			change: `${routing.routes[target]!.id}: ${metric ? "metric" : "masquerade"}`,
			ms: round(c.ms),
			peers_updated: c.updated,
			route_scope: c.routeScope,
			bytes: c.bytes,
		});

		const policyTarget = r % policyCount;
		const policies = access.policies.map((p, i) =>
			i !== policyTarget
				? p
				: {
						...p,
						rules: p.rules.map((rule, k) =>
							k > 0
								? rule
								: {
										...rule,
										protocol: "tcp" as const,
										ports: [rule.ports[0] === 2222 ? 2223 : 2222],
									},
						),
					},
		);
		const freshBase = allMaps(peers, withRoutes).index;
		gc();
		const b = changeAndDeltas(freshBase, peers, { ...access, policies, routing });
		policyMs.push(b.ms);
		policyCpu.push(b.cpuMs);
		policyRuns.push({
			change: `${access.policies[policyTarget]!.id} rule 0: port`,
			ms: round(b.ms),
			peers_updated: b.updated,
			bytes: b.bytes,
		});
	}

	return {
		bench: "route-maps",
		node: process.version,
		peers: peerCount,
		groups: groupCount,
		policies: policyCount,
		routes: routing.routes.length,
		network_resources: routing.networkResources.length,
		loadavg_1m_at_start: loadAtStart,
		loadavg_1m_at_end: round(loadavg()[0]!, 2),
		all_maps_ms: round(median(mapsMs)),
		all_maps_runs_ms: mapsMs.map((ms) => round(ms)),
		all_maps_without_routes_ms: round(median(baseMs)),
		all_maps_without_routes_runs_ms: baseMs.map((ms) => round(ms)),
		all_maps_ratio: round(median(mapsMs) / median(baseMs), 2),
		all_maps_cpu_ms: round(median(mapsCpu)),
		all_maps_without_routes_cpu_ms: round(median(baseCpu)),
		all_maps_cpu_ratio: round(median(mapsCpu) / median(baseCpu), 2),
		avg_client_routes: round(sample.routes / peerCount, 1),
		avg_served_routes: round(sample.served / peerCount, 2),
		avg_visible_peers: round(sample.visible / peerCount, 1),
		avg_visible_peers_without_routes: round(baseSample.visible / peerCount, 1),
		route_change_ms: round(median(routeMs)),
		route_change_runs: routeRuns,
		policy_change_ms: round(median(policyMs)),
		policy_change_runs: policyRuns,
		route_change_to_policy_change_ratio: round(median(routeMs) / median(policyMs), 2),
		route_change_cpu_ms: round(median(routeCpu)),
		policy_change_cpu_ms: round(median(policyCpu)),
		route_change_to_policy_change_cpu_ratio: round(median(routeCpu) / median(policyCpu), 2),
		baselines:
			"all_maps_without_routes: the same account and maps without its routes; policy_change: one policy's port change on the same account with routes, same work (next index + every peer's delta)",
	};
}

console.log(JSON.stringify(main()));
