import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
	checkDirectPath,
	type DirectPathMemory,
	type DirectPathObservation,
	FRESH_TRAFFIC_WAKE,
	noticeTraffic,
	pathTypeOf,
	probeTarget,
	SILENT_PATH_MS,
	STALE_HANDSHAKE_MS,
	TRAFFIC_DUMP_MIN_INTERVAL_MS,
	type TrafficWakeMemory,
	trafficWake,
	type WireGuardPeerCounters,
} from "./path-health.js";

const FRESH: DirectPathMemory = { rx: undefined, lastTxBytes: undefined };

function wg(over: Partial<WireGuardPeerCounters> = {}): WireGuardPeerCounters {
	return {
		endpoint: "198.51.100.7:40000",
		rxBytes: 0,
		txBytes: 0,
		latestHandshakeUnixSeconds: 0,
		...over,
	};
}

function observe(now: number, over: Partial<DirectPathObservation> = {}): DirectPathObservation {
	return {
		now,
		wg: wg({ latestHandshakeUnixSeconds: Math.floor(now / 1000) }),
		endpointApplied: true,
		relayEndpoint: "127.0.0.1:50001",
		connectedSince: 0,
		...over,
	};
}

describe("checkDirectPath", () => {
	it("keeps a path whose received counter moves", () => {
		let memory = FRESH;
		for (let t = 0; t <= 120_000; t += 5_000) {
			const v = checkDirectPath(
				memory,
				observe(t, { wg: wg({ rxBytes: t, latestHandshakeUnixSeconds: t / 1000 }) }),
			);
			expect(v.lost).toBeUndefined();
			memory = v.memory;
		}
	});

	it("calls a path lost once nothing was received for longer than SILENT_PATH_MS", () => {
		let memory = FRESH;
		const lostAt: number[] = [];
		for (let t = 0; t <= 60_000; t += 5_000) {
			const v = checkDirectPath(
				memory,
				observe(t, { wg: wg({ rxBytes: 100, latestHandshakeUnixSeconds: t / 1000 }) }),
			);
			if (v.lost) lostAt.push(t);
			memory = v.memory;
			if (v.lost) break;
		}
		expect(lostAt).toEqual([40_000]);
		expect(memory.rx).toBeUndefined();
	});

	it("calls a path lost when its handshake is stale and it has been up long enough", () => {
		const now = 1_000_000;
		const stale = checkDirectPath(
			FRESH,
			observe(now, {
				wg: wg({
					rxBytes: 5,
					latestHandshakeUnixSeconds: (now - STALE_HANDSHAKE_MS - 1_000) / 1000,
				}),
				connectedSince: now - STALE_HANDSHAKE_MS - 1,
			}),
		);
		expect(stale.lost).toBe("no WireGuard handshake for over 3 minutes");
		// Just up: WireGuard has had no chance to handshake yet.
		const young = checkDirectPath(
			FRESH,
			observe(now, {
				wg: wg({ rxBytes: 5, latestHandshakeUnixSeconds: 0 }),
				connectedSince: now - 1_000,
			}),
		);
		expect(young.lost).toBeUndefined();
	});

	it("notices WireGuard roaming to the relay bridge, and only starts the transmit count", () => {
		const first = checkDirectPath(FRESH, observe(0, { wg: wg({ txBytes: 10 }) }));
		expect(first.memory.lastTxBytes).toBe(10);
		// Traffic is noticeTraffic's business: the check leaves a started count alone.
		const second = checkDirectPath(first.memory, observe(5_000, { wg: wg({ txBytes: 20 }) }));
		expect(second.memory.lastTxBytes).toBe(10);
		const roamed = checkDirectPath(
			second.memory,
			observe(10_000, { wg: wg({ endpoint: "127.0.0.1:50001" }) }),
		);
		expect(roamed.reapplyDirectEndpoint).toBe(true);
		const notYetApplied = checkDirectPath(
			second.memory,
			observe(10_000, {
				endpointApplied: false,
				wg: wg({ endpoint: "127.0.0.1:50001" }),
			}),
		);
		expect(notYetApplied.reapplyDirectEndpoint).toBe(false);
	});

	it("property: silence is reported exactly when the counter has not moved for more than SILENT_PATH_MS", () => {
		fc.assert(
			fc.property(
				fc.array(fc.record({ step: fc.integer({ min: 1, max: 20_000 }), moved: fc.boolean() }), {
					maxLength: 60,
				}),
				(checks) => {
					let memory = FRESH;
					let now = 0;
					let rx = 0;
					let movedAt: number | undefined;
					for (const c of checks) {
						now += c.step;
						if (c.moved) rx++;
						const v = checkDirectPath(
							memory,
							observe(now, { wg: wg({ rxBytes: rx, latestHandshakeUnixSeconds: now / 1000 }) }),
						);
						const expectSilent =
							memory.rx !== undefined &&
							memory.rx.bytes === rx &&
							movedAt !== undefined &&
							now - movedAt > SILENT_PATH_MS;
						expect(v.lost !== undefined).toBe(expectSilent);
						if (!memory.rx || memory.rx.bytes !== rx) movedAt = now;
						if (v.lost) movedAt = undefined;
						memory = v.memory;
					}
				},
			),
		);
	});
});

describe("pathTypeOf", () => {
	const now = 10_000_000;
	const relayEndpoint = "127.0.0.1:50001";
	it("is p2p with a direct path, relayed through a fresh bridge handshake, else none", () => {
		expect(
			pathTypeOf({ now, directUp: true, peerOnline: false, relayEndpoint, wg: undefined }),
		).toBe("p2p");
		const relayedWg = wg({
			endpoint: relayEndpoint,
			latestHandshakeUnixSeconds: (now - 5_000) / 1000,
		});
		expect(
			pathTypeOf({ now, directUp: false, peerOnline: true, relayEndpoint, wg: relayedWg }),
		).toBe("relayed");
		// Offline per management, a stale handshake, or WireGuard not on the bridge: not connected.
		expect(
			pathTypeOf({ now, directUp: false, peerOnline: false, relayEndpoint, wg: relayedWg }),
		).toBe("");
		expect(
			pathTypeOf({
				now,
				directUp: false,
				peerOnline: true,
				relayEndpoint,
				wg: { ...relayedWg, latestHandshakeUnixSeconds: (now - STALE_HANDSHAKE_MS - 1_000) / 1000 },
			}),
		).toBe("");
		expect(pathTypeOf({ now, directUp: false, peerOnline: true, relayEndpoint, wg: wg() })).toBe(
			"",
		);
	});

	it("property: never relayed without a bridge, never anything but p2p with a direct path", () => {
		fc.assert(
			fc.property(
				fc.boolean(),
				fc.boolean(),
				fc.option(fc.constantFrom("127.0.0.1:50001", "127.0.0.1:50002"), { nil: undefined }),
				fc.option(fc.constantFrom("127.0.0.1:50001", "198.51.100.7:1"), { nil: undefined }),
				fc.integer({ min: 0, max: 400_000 }),
				(directUp, peerOnline, bridge, endpoint, age) => {
					const type = pathTypeOf({
						now,
						directUp,
						peerOnline,
						relayEndpoint: bridge,
						wg: wg({ endpoint, latestHandshakeUnixSeconds: Math.floor((now - age) / 1000) }),
					});
					if (directUp) expect(type).toBe("p2p");
					else if (type === "relayed") {
						expect(bridge).toBeDefined();
						expect(endpoint).toBe(bridge);
						expect(peerOnline).toBe(true);
					}
				},
			),
		);
	});
});

describe("probeTarget", () => {
	const iceRemote = { address: "203.0.113.9", port: 41000 };
	it("follows WireGuard, not the relay bridge, and falls back to ICE's address", () => {
		expect(
			probeTarget({
				wgEndpoint: "198.51.100.7:40000",
				relayEndpoint: "127.0.0.1:1",
				lastDirectEndpoint: undefined,
				iceRemote,
			}),
		).toEqual({ address: "198.51.100.7", port: 40000 });
		expect(
			probeTarget({
				wgEndpoint: "127.0.0.1:1",
				relayEndpoint: "127.0.0.1:1",
				lastDirectEndpoint: "198.51.100.8:1",
				iceRemote,
			}),
		).toEqual({ address: "198.51.100.8", port: 1 });
		expect(
			probeTarget({
				wgEndpoint: "[2001:db8::1]:5",
				relayEndpoint: undefined,
				lastDirectEndpoint: undefined,
				iceRemote,
			}),
		).toEqual(iceRemote);
		expect(
			probeTarget({
				wgEndpoint: undefined,
				relayEndpoint: undefined,
				lastDirectEndpoint: undefined,
				iceRemote,
			}),
		).toEqual(iceRemote);
	});
});

describe("trafficWake", () => {
	const counters = (txBytes: number) => ({ rxBytes: 0, txBytes });

	it("reads the dump as soon as traffic leaves while a direct path is unwatched", () => {
		const first = trafficWake(FRESH_TRAFFIC_WAKE, {
			now: 0,
			counters: counters(100),
			unwatchedDirectPath: true,
		});
		// The first read only starts the count.
		expect(first.readDump).toBe(false);
		const quiet = trafficWake(first.memory, {
			now: 200,
			counters: counters(100),
			unwatchedDirectPath: true,
		});
		expect(quiet.readDump).toBe(false);
		const moved = trafficWake(quiet.memory, {
			now: 400,
			counters: counters(184),
			unwatchedDirectPath: true,
		});
		expect(moved.readDump).toBe(true);
		expect(moved.memory).toEqual({ txBytes: 184, lastDumpAt: 400 });
	});

	it("reads nothing when every direct path is already watched, or the counters are unreadable", () => {
		const start: TrafficWakeMemory = { txBytes: 100, lastDumpAt: Number.NEGATIVE_INFINITY };
		const watched = trafficWake(start, {
			now: 0,
			counters: counters(500),
			unwatchedDirectPath: false,
		});
		expect(watched.readDump).toBe(false);
		expect(watched.memory.txBytes).toBe(500);
		const unreadable = trafficWake(start, {
			now: 0,
			counters: undefined,
			unwatchedDirectPath: true,
		});
		expect(unreadable).toEqual({ memory: start, readDump: false });
	});

	it("reads the dump once when a probe goes unanswered, traffic or not", () => {
		const start: TrafficWakeMemory = { txBytes: 100, lastDumpAt: 0 };
		const o = { counters: counters(100), unwatchedDirectPath: false, probeUnansweredSince: 700 };
		// The rate limit holds…
		expect(trafficWake(start, { ...o, now: 300 }).readDump).toBe(false);
		const r = trafficWake(start, { ...o, now: 800 });
		expect(r.readDump).toBe(true);
		// …and once read after the silence began, not again for the same silence.
		expect(trafficWake(r.memory, { ...o, now: 2_000, counters: undefined }).readDump).toBe(false);
		// A new silence (another probe, or this one after an answer) reads again.
		expect(trafficWake(r.memory, { ...o, now: 2_000, probeUnansweredSince: 1_900 }).readDump).toBe(
			true,
		);
	});

	it("keeps a movement it did not act on (rate limit) for the next read", () => {
		const start: TrafficWakeMemory = { txBytes: 100, lastDumpAt: 1_000 };
		const limited = trafficWake(start, {
			now: 1_200,
			counters: counters(200),
			unwatchedDirectPath: true,
		});
		expect(limited.readDump).toBe(false);
		// No more traffic since, but the earlier packet still counts.
		const later = trafficWake(limited.memory, {
			now: 1_000 + TRAFFIC_DUMP_MIN_INTERVAL_MS,
			counters: counters(200),
			unwatchedDirectPath: true,
		});
		expect(later.readDump).toBe(true);
	});

	it("property: never two dumps closer than the minimum interval; every movement is acted on within it", () => {
		fc.assert(
			fc.property(
				fc.array(
					fc.record({
						stepMs: fc.integer({ min: 1, max: 400 }),
						sent: fc.integer({ min: 0, max: 3 }),
						unwatched: fc.boolean(),
					}),
					{ maxLength: 200 },
				),
				(steps) => {
					let memory = FRESH_TRAFFIC_WAKE;
					let now = 0;
					let tx = 0;
					let lastDump = Number.NEGATIVE_INFINITY;
					/** When the oldest movement not yet looked at happened while unwatched. */
					let pendingSince: number | undefined;
					trafficWake(memory, { now, counters: counters(tx), unwatchedDirectPath: true });
					memory = { txBytes: tx, lastDumpAt: Number.NEGATIVE_INFINITY };
					for (const step of steps) {
						now += step.stepMs;
						tx += step.sent;
						const r = trafficWake(memory, {
							now,
							counters: counters(tx),
							unwatchedDirectPath: step.unwatched,
						});
						if (r.readDump) {
							expect(now - lastDump).toBeGreaterThanOrEqual(TRAFFIC_DUMP_MIN_INTERVAL_MS);
							lastDump = now;
							pendingSince = undefined;
						} else if (step.unwatched && tx !== memory.txBytes) {
							pendingSince ??= now;
							expect(now - Math.max(pendingSince, lastDump)).toBeLessThan(
								TRAFFIC_DUMP_MIN_INTERVAL_MS,
							);
						} else if (!step.unwatched) pendingSince = undefined;
						memory = r.memory;
					}
				},
			),
		);
	});
});

describe("noticeTraffic", () => {
	it("says sending only when the peer's transmit counter grew since the last look", () => {
		const first = noticeTraffic(FRESH, wg({ txBytes: 1_000 }));
		expect(first.sending).toBe(false);
		const same = noticeTraffic(first.memory, wg({ txBytes: 1_000 }));
		expect(same.sending).toBe(false);
		const grew = noticeTraffic(same.memory, wg({ txBytes: 1_148 }));
		expect(grew.sending).toBe(true);
		// Re-added peer: the counter restarts; that alone is not traffic.
		const reset = noticeTraffic(grew.memory, wg({ txBytes: 32 }));
		expect(reset.sending).toBe(false);
		expect(reset.memory.lastTxBytes).toBe(32);
		expect(noticeTraffic(reset.memory, undefined)).toEqual({
			memory: reset.memory,
			sending: false,
		});
	});
});
