import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import {
	HEALTHY_NETWORK,
	type NetworkConditions,
	type SideName,
	SimulatedNetwork,
	seededRandom,
} from "./simulated-network.js";

/** CONN_SIM_RUNS_SCALE=20 pnpm vitest run ... soaks the properties with 20 times the runs. */
const RUNS_SCALE = Math.max(1, Number(process.env["CONN_SIM_RUNS_SCALE"] ?? 1) || 1);

/** After the network turns healthy, both sides must be connected within this. */
const CONVERGE_WITHIN_MS = 10 * 60_000;

const lossyNetworkArb: fc.Arbitrary<NetworkConditions> = fc.record({
	lossRate: fc.double({ min: 0, max: 0.95, noNaN: true }),
	duplicateRate: fc.double({ min: 0, max: 0.3, noNaN: true }),
	sendErrorRate: fc.double({ min: 0, max: 0.1, noNaN: true }),
	minDelayMs: fc.integer({ min: 0, max: 50 }),
	maxDelayMs: fc.integer({ min: 50, max: 3_000 }),
	fifo: fc.boolean(),
});

/** No loss, but any delay, duplication and reordering. */
const lossFreeNetworkArb: fc.Arbitrary<NetworkConditions> = lossyNetworkArb.map((network) => ({
	...network,
	lossRate: 0,
	sendErrorRate: 0,
}));

/** Still duplicating and reordering, but nothing is lost any more. */
const healthyButMessy = (network: NetworkConditions): NetworkConditions => ({
	...network,
	lossRate: 0,
	sendErrorRate: 0,
});

const otherSide = (side: SideName): SideName => (side === "a" ? "b" : "a");

/** Simulated ms from "network healthy" to both sides connected, per run, for the summary. */
const convergenceTimes: number[] = [];
/** Sessions the controlling side started per run, to show the lossy phase did bite. */
const sessionsPerRun: number[] = [];

function explain(sim: SimulatedNetwork): string {
	return [...sim.violations, "--- last trace lines ---", ...sim.trace.slice(-40)].join("\n");
}

function expectConnectedOnOneSession(sim: SimulatedNetwork): void {
	const a = sim.snapshot("a");
	const b = sim.snapshot("b");
	expect(sim.violations, explain(sim)).toEqual([]);
	expect(a?.state, explain(sim)).toBe("connected");
	expect(b?.state, explain(sim)).toBe("connected");
	expect(a?.sessionId).toBe(b?.sessionId);
	expect(a?.path?.local).toEqual(b?.path?.remote);
	expect(a?.path?.remote).toEqual(b?.path?.local);
	expect(sim.connectedOnOneSession()).toBe(true);
	for (const side of ["a", "b"] as const) {
		expect(sim.armedTimers(side)).toEqual([]);
		expect(sim.openIceSessions(side)).toEqual([]);
	}
}

/** Random peer-online flaps on both sides before `untilMs`; both flags end true at `untilMs`. */
function scheduleFlaps(sim: SimulatedNetwork, seed: number, untilMs: number): void {
	const random = seededRandom(seed ^ 0x5eed);
	const flaps = Math.floor(random() * 6);
	for (let flap = 0; flap < flaps; flap++) {
		const side: SideName = random() < 0.5 ? "a" : "b";
		const online = random() < 0.5;
		sim.at(random() * untilMs, () => sim.setPeerOnline(side, online));
	}
	sim.at(untilMs, () => {
		for (const side of ["a", "b"] as const) {
			if (sim.snapshot(side)?.peerOnline === false) sim.setPeerOnline(side, true);
		}
	});
}

describe("two peers over a simulated network", () => {
	afterAll(() => {
		if (convergenceTimes.length === 0) return;
		const sorted = [...convergenceTimes].sort((left, right) => left - right);
		const at = (fraction: number) =>
			sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))];
		const sessions = [...sessionsPerRun].sort((left, right) => left - right);
		const round = (value: number | undefined) => Math.round(value ?? 0);
		console.info(
			`simulated convergence after the network turned healthy (${sorted.length} runs): ` +
				`median ${round(at(0.5))} ms, p95 ${round(at(0.95))} ms, max ${round(sorted.at(-1))} ms; ` +
				`sessions per run: median ${sessions[Math.floor(sessions.length / 2)]}, max ${sessions.at(-1)}`,
		);
	});

	it("a clean start connects both sides on one session, starting at once, with one session", () => {
		const sim = new SimulatedNetwork({ seed: 7 });
		sim.at(0, () => sim.start("a"));
		sim.at(0, () => sim.start("b"));
		expect(sim.runUntilQuiet(60_000)).toBe(true);
		expectConnectedOnOneSession(sim);
		expect(sim.snapshot("a")?.sessionId).toBe(sim.sessionsStartedBy(sim.controllingSide())[0]);
		expect(sim.sessionsStartedBy("a")).toHaveLength(1);
		expect(sim.sessionsStartedBy("b")).toHaveLength(1);
		expect(sim.lastPathUpAtMs()).toBeLessThan(2_000);
	});

	it("property: a FIFO network without loss connects on the very first session", () => {
		fc.assert(
			fc.property(fc.integer(), lossFreeNetworkArb, (seed, network) => {
				const sim = new SimulatedNetwork({
					seed,
					network: { ...network, fifo: true, duplicateRate: 0 },
				});
				sim.at(0, () => sim.start("a"));
				sim.at(0, () => sim.start("b"));
				expect(sim.runUntilQuiet(120_000), explain(sim)).toBe(true);
				expectConnectedOnOneSession(sim);
				expect(sim.sessionsStartedBy("a")).toHaveLength(1);
				expect(sim.sessionsStartedBy("b")).toHaveLength(1);
			}),
			{ numRuns: 200 * RUNS_SCALE },
		);
	});

	it("property: FIFO without loss (duplicated, staggered starts): no ICE attempt starves", () => {
		fc.assert(
			fc.property(
				fc.integer(),
				lossFreeNetworkArb,
				fc.integer({ min: 0, max: 5_000 }),
				fc.boolean(),
				(seed, network, startGapMs, controlledFirst) => {
					// Random session ids carry no order: an offer overtaken by a newer one can still
					// be adopted (the offer timeout recovers), so this one needs ordered delivery.
					const sim = new SimulatedNetwork({ seed, network: { ...network, fifo: true } });
					const first = controlledFirst ? otherSide(sim.controllingSide()) : sim.controllingSide();
					sim.at(0, () => sim.start(first));
					sim.at(startGapMs, () => sim.start(otherSide(first)));
					expect(sim.runUntilQuiet(120_000), explain(sim)).toBe(true);
					expectConnectedOnOneSession(sim);
					expect(sim.iceTimeoutCount(), explain(sim)).toBe(0);
					expect(sim.lastPathUpAtMs()).toBeLessThan(startGapMs + 15_000);
				},
			),
			{ numRuns: 300 * RUNS_SCALE },
		);
	});

	it("property: after any lossy period, a healthy network connects both sides on one session", () => {
		fc.assert(
			fc.property(
				fc.integer(),
				lossyNetworkArb,
				fc.integer({ min: 0, max: 120_000 }),
				fc.integer({ min: 0, max: 3 }),
				fc.integer({ min: 0, max: 5_000 }),
				fc.boolean(),
				fc.boolean(),
				(seed, network, lossyForMs, iceFailures, startGapMs, controlledFirst, flapPeerOnline) => {
					const sim = new SimulatedNetwork({ seed, network, iceFailFirstSessions: iceFailures });
					const first = controlledFirst ? otherSide(sim.controllingSide()) : sim.controllingSide();
					sim.at(0, () => sim.start(first));
					sim.at(startGapMs, () => sim.start(otherSide(first)));
					if (flapPeerOnline) scheduleFlaps(sim, seed, lossyForMs);
					sim.at(lossyForMs, () => sim.setNetwork(healthyButMessy(network)));
					const quiet = sim.runUntilQuiet(lossyForMs + CONVERGE_WITHIN_MS);
					expect(quiet, explain(sim)).toBe(true);
					expectConnectedOnOneSession(sim);
					convergenceTimes.push(Math.max(0, sim.lastPathUpAtMs() - lossyForMs));
					sessionsPerRun.push(sim.sessionsStartedBy(sim.controllingSide()).length);
				},
			),
			{ numRuns: 300 * RUNS_SCALE },
		);
	});

	it("property: a restarted peer (fresh PeerConnection) leads back to connected, on a new session", () => {
		fc.assert(
			fc.property(
				fc.integer(),
				lossyNetworkArb,
				fc.constantFrom<SideName>("a", "b"),
				fc.boolean(),
				fc.integer({ min: 0, max: 20_000 }),
				fc.boolean(),
				fc.integer({ min: 0, max: 60_000 }),
				fc.option(fc.integer({ min: 0, max: 30_000 }), { nil: undefined }),
				(
					seed,
					network,
					restarting,
					graceful,
					gapMs,
					managementNotices,
					lossyForMs,
					restartMidwayAt,
				) => {
					const sim = new SimulatedNetwork({ seed, network: HEALTHY_NETWORK });
					sim.at(0, () => sim.start("a"));
					sim.at(0, () => sim.start("b"));
					let restartAt = restartMidwayAt;
					let before: number | undefined;
					if (restartAt === undefined) {
						expect(sim.runUntilQuiet(60_000), explain(sim)).toBe(true);
						expectConnectedOnOneSession(sim);
						before = sim.snapshot("a")?.sessionId;
						restartAt = sim.nowMs + 1_000;
					}
					const healthyAt = restartAt + lossyForMs;
					sim.at(restartAt, () => {
						sim.setNetwork(network);
						sim.restart(restarting, { graceful, gapMs });
						if (managementNotices) sim.setPeerOnline(otherSide(restarting), false);
					});
					if (managementNotices) {
						sim.at(restartAt + gapMs, () => sim.setPeerOnline(otherSide(restarting), true));
					}
					sim.at(healthyAt, () => sim.setNetwork(healthyButMessy(network)));
					const quiet = sim.runUntilQuiet(
						Math.max(healthyAt, restartAt + gapMs) + CONVERGE_WITHIN_MS,
					);
					expect(quiet, explain(sim)).toBe(true);
					expectConnectedOnOneSession(sim);
					if (before !== undefined) expect(sim.snapshot("a")?.sessionId).not.toBe(before);
					convergenceTimes.push(Math.max(0, sim.lastPathUpAtMs() - healthyAt));
					sessionsPerRun.push(sim.sessionsStartedBy(sim.controllingSide()).length);
				},
			),
			{ numRuns: 200 * RUNS_SCALE },
		);
	});

	it("property: a restart on a healthy network reconnects through signal alone, promptly", () => {
		fc.assert(
			fc.property(
				fc.integer(),
				fc.constantFrom<SideName>("a", "b"),
				fc.boolean(),
				fc.integer({ min: 0, max: 10_000 }),
				fc.boolean(),
				(seed, restarting, graceful, gapMs, managementNotices) => {
					// Stale-handshake detection effectively off: recovery must not wait for it.
					const sim = new SimulatedNetwork({
						seed,
						network: { fifo: true },
						pathLostAfterMs: 3_600_000,
					});
					sim.at(0, () => sim.start("a"));
					sim.at(0, () => sim.start("b"));
					expect(sim.runUntilQuiet(60_000)).toBe(true);
					const before = sim.snapshot("a")?.sessionId;
					const restartAt = sim.nowMs + 1_000;
					sim.at(restartAt, () => {
						sim.restart(restarting, { graceful, gapMs });
						if (managementNotices) sim.setPeerOnline(otherSide(restarting), false);
					});
					if (managementNotices) {
						sim.at(restartAt + gapMs, () => sim.setPeerOnline(otherSide(restarting), true));
					}
					sim.runUntil(restartAt + gapMs + 5_000);
					expect(sim.connectedOnOneSession(), explain(sim)).toBe(true);
					expect(sim.snapshot("a")?.sessionId).not.toBe(before);
					expect(sim.violations, explain(sim)).toEqual([]);
				},
			),
			{ numRuns: 200 * RUNS_SCALE },
		);
	});

	it("property: a path that stops working is renegotiated, whatever signal does meanwhile", () => {
		fc.assert(
			fc.property(
				fc.integer(),
				lossyNetworkArb,
				fc.integer({ min: 0, max: 120_000 }),
				fc.integer({ min: 0, max: 3 }),
				(seed, network, lossyForMs, iceFailures) => {
					const sim = new SimulatedNetwork({ seed });
					sim.at(0, () => sim.start("a"));
					sim.at(0, () => sim.start("b"));
					expect(sim.runUntilQuiet(60_000)).toBe(true);
					const before = sim.snapshot("a")?.sessionId;
					const breakAt = sim.nowMs + 60_000;
					sim.at(breakAt, () => {
						sim.setNetwork(network);
						sim.failNextIceSessions(iceFailures);
						sim.breakPath();
					});
					sim.at(breakAt + lossyForMs, () => sim.setNetwork(healthyButMessy(network)));
					const quiet = sim.runUntilQuiet(breakAt + lossyForMs + CONVERGE_WITHIN_MS);
					expect(quiet, explain(sim)).toBe(true);
					expectConnectedOnOneSession(sim);
					expect(sim.snapshot("a")?.sessionId).not.toBe(before);
				},
			),
			{ numRuns: 200 * RUNS_SCALE },
		);
	});

	it("property: stop on both sides leaves no timers, ICE sessions or paths, and silence", () => {
		fc.assert(
			fc.property(
				fc.integer(),
				lossyNetworkArb,
				fc.integer({ min: 0, max: 90_000 }),
				fc.integer({ min: 0, max: 90_000 }),
				fc.boolean(),
				fc.boolean(),
				(seed, network, stopAAt, stopBAt, shutdownA, shutdownB) => {
					const sim = new SimulatedNetwork({ seed, network, iceFailFirstSessions: 1 });
					sim.at(0, () => sim.start("a"));
					sim.at(0, () => sim.start("b"));
					sim.at(stopAAt, () => sim.stop("a", shutdownA));
					sim.at(stopBAt, () => sim.stop("b", shutdownB));
					const quiet = sim.runUntilQuiet(Math.max(stopAAt, stopBAt) + 60_000);
					expect(quiet, explain(sim)).toBe(true);
					expect(sim.violations, explain(sim)).toEqual([]);
					for (const side of ["a", "b"] as const) {
						expect(sim.snapshot(side)?.state).toBe("closed");
						expect(sim.armedTimers(side)).toEqual([]);
						expect(sim.openIceSessions(side)).toEqual([]);
						expect(sim.path(side)).toBeUndefined();
					}
				},
			),
			{ numRuns: 200 * RUNS_SCALE },
		);
	});

	it("one side stopping sends the other to wait quietly, without retry traffic", () => {
		const sim = new SimulatedNetwork({ seed: 11 });
		sim.at(0, () => sim.start("a"));
		sim.at(0, () => sim.start("b"));
		expect(sim.runUntilQuiet(60_000)).toBe(true);
		const stopping = sim.controllingSide();
		const staying = otherSide(stopping);
		sim.at(sim.nowMs + 1_000, () => sim.stop(stopping, true));
		expect(sim.runUntilQuiet(sim.nowMs + 120_000), explain(sim)).toBe(true);
		expect(sim.violations).toEqual([]);
		expect(sim.snapshot(staying)).toMatchObject({ state: "waiting-for-peer", timers: {} });
		expect(sim.openIceSessions(staying)).toEqual([]);
		expect(sim.path(staying)).toBeUndefined();
	});
});
