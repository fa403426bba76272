import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
	EMPTY_MEMORY,
	EXIT_NETWORK,
	type ExitNodeChoice,
	overlaps,
	type RouteEntry,
	type RouterHealth,
	type SelectionMemory,
	selectRoutes,
} from "./selection.js";

const R1 = "r1-key";
const R2 = "r2-key";
const R3 = "r3-key";

function route(routerKey: string, metric: number, extra: Partial<RouteEntry> = {}): RouteEntry {
	return {
		id: `route-a:${routerKey}`,
		networkId: "lan",
		network: "198.18.10.0/24",
		routerKey,
		metric,
		keepRoute: false,
		skipAutoApply: false,
		description: "",
		...extra,
	};
}

const up = (direct = true, latencyMs?: number): RouterHealth => ({
	reachable: true,
	direct,
	latencyMs,
});
const down: RouterHealth = { reachable: false, direct: false };

function run(
	routes: RouteEntry[],
	health: Record<string, RouterHealth>,
	now: number,
	memory: SelectionMemory = EMPTY_MEMORY,
	exitNode: ExitNodeChoice = { mode: "auto" },
	localNetworks: string[] = [],
) {
	return selectRoutes({
		routes,
		health: (k) => health[k],
		now,
		memory,
		exitNode,
		localNetworks,
		holdMs: 3_000,
	});
}

describe("selectRoutes", () => {
	const routes = [route(R1, 10), route(R2, 20)];

	it("uses the lowest metric among reachable routers and gives it the network", () => {
		const out = run(routes, { [R1]: up(), [R2]: up() }, 0);
		expect(out.networks[0]?.routerKey).toBe(R1);
		expect(out.allowedIps.get(R1)).toEqual(["198.18.10.0/24"]);
		expect(out.allowedIps.has(R2)).toBe(false);
		expect(out.kernelRoutes).toEqual(["198.18.10.0/24"]);
		expect(out.networks[0]?.reason).toMatch(/best reachable: metric 10/);
	});

	it("fails over at once, moves back only after the hold time, and only once", () => {
		const first = run(routes, { [R1]: up(), [R2]: up() }, 0);
		const failed = run(routes, { [R1]: down, [R2]: up() }, 1_000, first.memory);
		expect(failed.networks[0]?.routerKey).toBe(R2);
		expect(failed.networks[0]?.reason).toMatch(/failover/);
		expect(failed.allowedIps.get(R2)).toEqual(["198.18.10.0/24"]);
		// R1 back at t=5000: kept on R2 until it has been reachable for 3 s.
		const back = run(routes, { [R1]: up(), [R2]: up() }, 5_000, failed.memory);
		expect(back.networks[0]?.routerKey).toBe(R2);
		const held = run(routes, { [R1]: up(), [R2]: up() }, 7_999, back.memory);
		expect(held.networks[0]?.routerKey).toBe(R2);
		const moved = run(routes, { [R1]: up(), [R2]: up() }, 8_000, held.memory);
		expect(moved.networks[0]?.routerKey).toBe(R1);
		expect(moved.networks[0]?.reason).toMatch(/moved back/);
		expect(moved.moves).toEqual([{ key: "lan|198.18.10.0/24", from: R2, to: R1 }]);
	});

	it("a router that flaps is not moved back to while it flaps", () => {
		let out = run(routes, { [R1]: down, [R2]: up() }, 0);
		for (let t = 500; t < 20_000; t += 500) {
			const r1 = Math.floor(t / 1_000) % 2 === 0 ? up() : down;
			out = run(routes, { [R1]: r1, [R2]: up() }, t, out.memory);
			expect(out.networks[0]?.routerKey).toBe(R2);
		}
	});

	it("prefers a direct path over a relayed one at equal metric, latency only to break ties", () => {
		const equal = [route(R1, 10), route(R2, 10), route(R3, 10)];
		const out = run(equal, { [R1]: up(false, 1), [R2]: up(true, 30), [R3]: up(true, 5) }, 0);
		expect(out.networks[0]?.routerKey).toBe(R3);
		// Latency changes later do not move the network.
		const later = run(
			equal,
			{ [R1]: up(false, 1), [R2]: up(true, 1), [R3]: up(true, 50) },
			60_000,
			out.memory,
		);
		expect(later.networks[0]?.routerKey).toBe(R3);
	});

	it("no router reachable: not routed, unless keep_route", () => {
		const first = run(routes, { [R1]: up(), [R2]: up() }, 0);
		const none = run(routes, { [R1]: down, [R2]: down }, 1, first.memory);
		expect(none.kernelRoutes).toEqual([]);
		expect(none.networks[0]?.reason).toBe("not routed: no router reachable");
		const kept = routes.map((r) => ({ ...r, keepRoute: true }));
		const k1 = run(kept, { [R1]: up(), [R2]: up() }, 0);
		const k2 = run(kept, { [R1]: down, [R2]: down }, 1, k1.memory);
		expect(k2.networks[0]?.routerKey).toBe(R1);
		expect(k2.kernelRoutes).toEqual(["198.18.10.0/24"]);
	});

	it("does not route a network this machine is attached to", () => {
		const out = run(routes, { [R1]: up(), [R2]: up() }, 0, EMPTY_MEMORY, { mode: "auto" }, [
			"198.18.10.0/25",
		]);
		expect(out.kernelRoutes).toEqual([]);
		expect(out.allowedIps.size).toBe(0);
		expect(out.networks[0]?.reason).toMatch(/attached to 198.18.10.0\/25/);
	});

	describe("exit nodes", () => {
		const exit = (key: string, metric: number, skipAutoApply: boolean, networkId = "exit") =>
			route(key, metric, { networkId, network: EXIT_NETWORK, skipAutoApply });
		const health = { [R1]: up(), [R2]: up() };
		const names = { [R1]: { ...up(), name: "exit-a" }, [R2]: { ...up(), name: "exit-b" } };

		it("applies an auto one, offers a skip_auto_apply one until selected", () => {
			expect(run([exit(R1, 10, false)], health, 0).kernelRoutes).toEqual([EXIT_NETWORK]);
			const offered = run([exit(R1, 10, true)], health, 0);
			expect(offered.kernelRoutes).toEqual([]);
			expect(offered.networks[0]?.reason).toMatch(/offered, not applied/);
			const used = run([exit(R1, 10, true)], names, 0, EMPTY_MEMORY, {
				mode: "use",
				name: "exit-a",
			});
			expect(used.allowedIps.get(R1)).toEqual([EXIT_NETWORK]);
		});

		it("'use NAME' pins that router; 'off' uses none", () => {
			const both = [exit(R1, 10, true), exit(R2, 20, true)];
			const pinned = run(both, names, 0, EMPTY_MEMORY, { mode: "use", name: "exit-b" });
			expect(pinned.networks[0]?.routerKey).toBe(R2);
			const off = run([exit(R1, 10, false)], names, 0, EMPTY_MEMORY, { mode: "off" });
			expect(off.kernelRoutes).toEqual([]);
		});

		it("two exit networks: one default route, on the lower metric", () => {
			const out = run([exit(R1, 30, false, "x1"), exit(R2, 20, false, "x2")], health, 0);
			expect([...out.allowedIps]).toEqual([[R2, [EXIT_NETWORK]]]);
			expect(out.networks.find((n) => n.networkId === "x1")?.reason).toMatch(/carried by/);
		});
	});

	describe("properties", () => {
		const keys = [R1, R2, R3];
		const arbRoutes = fc
			.array(
				fc.record({
					router: fc.constantFrom(...keys),
					metric: fc.integer({ min: 1, max: 50 }),
					net: fc.constantFrom("198.18.10.0/24", "198.18.20.0/24", EXIT_NETWORK),
					keepRoute: fc.boolean(),
					skip: fc.boolean(),
				}),
				{ maxLength: 8 },
			)
			.map((list) => {
				const seen = new Set<string>();
				return list
					.filter((r) => {
						const k = `${r.router}|${r.net}`;
						if (seen.has(k)) return false;
						seen.add(k);
						return true;
					})
					.map((r) =>
						route(r.router, r.metric, {
							network: r.net,
							networkId: r.net,
							keepRoute: r.keepRoute,
							skipAutoApply: r.skip,
						}),
					);
			});
		const arbHealth = fc.record({
			reachable: fc.boolean(),
			direct: fc.boolean(),
			latencyMs: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
		});
		const arbSnapshot = fc.tuple(arbHealth, arbHealth, arbHealth);

		it("each prefix goes to one router; kernel routes are exactly the allowed IPs", () => {
			fc.assert(
				fc.property(
					arbRoutes,
					fc.array(arbSnapshot, { minLength: 1, maxLength: 10 }),
					(routes, steps) => {
						let memory = EMPTY_MEMORY;
						steps.forEach((snapshot, i) => {
							const health = Object.fromEntries(keys.map((k, j) => [k, snapshot[j]!]));
							const out = run(routes, health, i * 700, memory);
							memory = out.memory;
							const all = [...out.allowedIps.values()].flat();
							expect(new Set(all).size).toBe(all.length);
							expect([...all].sort()).toEqual(out.kernelRoutes);
							// A network without keep_route is only on a reachable router.
							for (const n of out.networks) {
								if (n.routerKey === undefined) continue;
								const keep = routes.some((r) => r.network === n.network && r.keepRoute);
								if (!keep) expect(health[n.routerKey]?.reachable).toBe(true);
								expect(
									routes.some((r) => r.routerKey === n.routerKey && r.network === n.network),
								).toBe(true);
							}
							// skip_auto_apply exit nodes are never used in auto mode.
							for (const [key, prefixes] of out.allowedIps) {
								if (!prefixes.includes(EXIT_NETWORK)) continue;
								const r = routes.find((x) => x.routerKey === key && x.network === EXIT_NETWORK);
								expect(r?.skipAutoApply).toBe(false);
							}
						});
					},
				),
			);
		});

		it("with a fixed set of reachable routers the choice changes at most once, whatever latencies do", () => {
			fc.assert(
				fc.property(
					fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 3, maxLength: 3 }),
					fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
					fc.array(fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 3, maxLength: 3 }), {
						minLength: 2,
						maxLength: 30,
					}),
					fc.constantFrom(...keys),
					(metrics, reach, latencySteps, startOn) => {
						const routes = keys.map((k, i) => route(k, metrics[i]!));
						if (!reach.some(Boolean)) return;
						let memory: SelectionMemory = {
							chosen: new Map([["lan|198.18.10.0/24", startOn]]),
							reachableSince: new Map(),
						};
						let changes = 0;
						let last: string | undefined;
						latencySteps.forEach((latencies, i) => {
							const health = Object.fromEntries(
								keys.map((k, j) => [k, reach[j] ? up(true, latencies[j]) : down]),
							);
							const out = run(routes, health, i * 500, memory);
							const now = out.networks[0]?.routerKey;
							if (i > 0 && now !== last) changes++;
							last = now;
							memory = out.memory;
						});
						expect(changes).toBeLessThanOrEqual(1);
					},
				),
			);
		});

		it("never routes a prefix overlapping a local network (except the exit route)", () => {
			fc.assert(
				fc.property(
					arbRoutes,
					fc.constantFrom("198.18.10.0/26", "198.18.0.0/16", "10.0.0.0/8"),
					(routes, local) => {
						const health = { [R1]: up(), [R2]: up(), [R3]: up() };
						const out = selectRoutes({
							routes,
							health: (k) => health[k],
							now: 0,
							memory: EMPTY_MEMORY,
							exitNode: { mode: "auto" },
							localNetworks: [local],
						});
						for (const prefix of out.kernelRoutes)
							if (prefix !== EXIT_NETWORK) expect(overlaps(prefix, local)).toBe(false);
					},
				),
			);
		});
	});
});
