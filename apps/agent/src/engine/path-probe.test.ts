import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_PATH_PROBE, PathProbe, type PathProbeOptions } from "./path-probe.js";

const OPTIONS: PathProbeOptions = { intervalMs: 2_000, lostAfterMs: 6_500, activeForMs: 15_000 };

function counterBytes(): (n: number) => Uint8Array {
	let next = 0;
	return (n) => {
		const out = new Uint8Array(n);
		new DataView(out.buffer).setUint32(0, next++);
		return out;
	};
}

describe("PathProbe", () => {
	it("sends nothing and never calls an idle path lost", () => {
		const probe = new PathProbe(0, OPTIONS, counterBytes());
		for (let t = 0; t <= 120_000; t += 1_000) expect(probe.tick(t)).toBeUndefined();
	});

	it("probes every interval while sending, and stays up while answers come", () => {
		const probe = new PathProbe(0, OPTIONS, counterBytes());
		let sent = 0;
		for (let t = 0; t <= 60_000; t += 1_000) {
			probe.noteSending(t);
			const action = probe.tick(t);
			expect(action?.type).not.toBe("lost");
			if (action?.type === "send") {
				sent++;
				expect(probe.onAnswer(action.transactionId, t + 30)).toBe(true);
			}
		}
		expect(sent).toBe(31);
		expect(probe.rttMs).toBe(30);
	});

	it("calls an active path lost once, lostAfterMs after the last answer", () => {
		const probe = new PathProbe(0, OPTIONS, counterBytes());
		const lost: number[] = [];
		for (let t = 0; t <= 30_000; t += 500) {
			probe.noteSending(t);
			const action = probe.tick(t);
			if (action?.type === "send" && t < 4_000) probe.onAnswer(action.transactionId, t + 10);
			if (action?.type === "lost") lost.push(t);
		}
		// Last answer at 2 s + 10 ms; 6.5 s of silence → lost at the first tick from 8.51 s.
		expect(lost).toEqual([9_000]);
	});

	it("counts silence from begin(), when probing could start, not from construction", () => {
		const probe = new PathProbe(0, OPTIONS, counterBytes());
		probe.noteSending(5_000);
		probe.begin(5_000);
		expect(probe.tick(5_000)?.type).toBe("send");
		expect(probe.tick(11_000)?.type).toBe("send");
		expect(probe.tick(11_500)?.type).toBe("lost");
	});

	it("ignores answers it did not ask for, and a second answer to the same probe", () => {
		const probe = new PathProbe(0, OPTIONS, counterBytes());
		probe.noteSending(0);
		const action = probe.tick(0);
		expect(action?.type).toBe("send");
		if (action?.type !== "send") return;
		expect(probe.onAnswer(new Uint8Array(12).fill(9), 5)).toBe(false);
		expect(probe.onAnswer(action.transactionId, 5)).toBe(true);
		expect(probe.onAnswer(action.transactionId, 6)).toBe(false);
	});

	it("judges a path that wakes up after a quiet spell afresh", () => {
		const probe = new PathProbe(0, OPTIONS, counterBytes());
		for (let t = 0; t < 100_000; t += 1_000) probe.tick(t);
		probe.noteSending(100_000);
		expect(probe.tick(100_000)?.type).toBe("send");
		expect(probe.tick(101_000)).toBeUndefined();
	});

	it("property: with answers lost at random, 'lost' comes exactly when silence reaches lostAfterMs", () => {
		fc.assert(
			fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 200 }), (delivered) => {
				const probe = new PathProbe(0, OPTIONS, counterBytes());
				let lastHeard = 0;
				let i = 0;
				for (let t = 0; t <= 200_000; t += 1_000) {
					probe.noteSending(t);
					const action = probe.tick(t);
					if (action?.type === "lost") {
						expect(t - lastHeard).toBeGreaterThanOrEqual(OPTIONS.lostAfterMs);
						expect(t - lastHeard).toBeLessThan(OPTIONS.lostAfterMs + 1_000);
						return;
					}
					expect(t - lastHeard).toBeLessThan(OPTIONS.lostAfterMs);
					if (action?.type === "send" && delivered[i++ % delivered.length]) {
						probe.onAnswer(action.transactionId, t);
						lastHeard = t;
					}
				}
			}),
		);
	});

	it("is active from the first traffic until activeForMs after the last, and not once lost", () => {
		const probe = new PathProbe(0, OPTIONS, counterBytes());
		expect(probe.isActive(0)).toBe(false);
		probe.noteSending(1_000);
		expect(probe.isActive(1_000)).toBe(true);
		expect(probe.isActive(1_000 + OPTIONS.activeForMs)).toBe(true);
		expect(probe.isActive(1_001 + OPTIONS.activeForMs)).toBe(false);
		expect(probe.silentMs(1_001 + OPTIONS.activeForMs)).toBe(0);
		// Idle until now: silence counts from here.
		expect(probe.tick(20_000)).toBeUndefined();
		probe.noteSending(20_000);
		expect(probe.tick(20_000)?.type).toBe("send");
		expect(probe.silentMs(20_700)).toBe(700);
		let t = 20_000;
		while (probe.tick(t)?.type !== "lost") t += 100;
		expect(probe.isActive(t)).toBe(false);
	});

	it("property (defaults, 100 ms ticks): traffic into a dead path is called lost within 1.3 s of its start", () => {
		fc.assert(
			fc.property(
				fc.integer({ min: 0, max: 60_000 }),
				fc.integer({ min: 0, max: 99 }),
				(idleMs, phase) => {
					const probe = new PathProbe(0, DEFAULT_PATH_PROBE, counterBytes());
					probe.begin(0);
					let t = phase;
					for (; t < idleMs; t += 100) expect(probe.tick(t)).toBeUndefined();
					// Traffic starts; nothing answers any more.
					probe.noteSending(t);
					const start = t;
					let sent = 0;
					for (;;) {
						const action = probe.tick(t);
						if (action?.type === "send") sent++;
						if (action?.type === "lost") break;
						t += 100;
					}
					expect(t - start).toBeGreaterThanOrEqual(DEFAULT_PATH_PROBE.lostAfterMs - 100);
					expect(t - start).toBeLessThanOrEqual(DEFAULT_PATH_PROBE.lostAfterMs + 100);
					expect(sent).toBe(4);
				},
			),
		);
	});

	it("property (defaults): a path answering within 0.4 s with one probe in three lost is never called lost", () => {
		fc.assert(
			fc.property(
				fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 3, maxLength: 300 }),
				(rtts) => {
					const probe = new PathProbe(0, DEFAULT_PATH_PROBE, counterBytes());
					probe.begin(0);
					const answers: { at: number; id: Uint8Array }[] = [];
					let i = 0;
					for (let t = 0; t <= 30_000; t += 100) {
						probe.noteSending(t);
						for (const a of answers.filter((x) => x.at <= t)) probe.onAnswer(a.id, a.at);
						answers.splice(0, answers.length, ...answers.filter((x) => x.at > t));
						const action = probe.tick(t);
						expect(action?.type).not.toBe("lost");
						if (action?.type === "send" && i++ % 3 !== 2) {
							answers.push({ at: t + rtts[i % rtts.length]!, id: action.transactionId });
						}
					}
				},
			),
		);
	});
});
