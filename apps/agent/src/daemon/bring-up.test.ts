import { describe, expect, it } from "vitest";
import { bringUp } from "./bring-up.js";

describe("bringUp", () => {
	it("returns what the steps built, and its undo takes them down last first, once", async () => {
		const log: string[] = [];
		const up = await bringUp(
			async (steps) => {
				const a = await steps.run(
					"a",
					() => "A",
					(made) => void log.push(`undo a (${made})`),
				);
				const b = await steps.run(
					"b",
					async () => "B",
					async () => void log.push("undo b"),
				);
				await steps.run("no undo", () => undefined);
				steps.onUndo("c", () => void log.push("undo c"));
				return `${a}${b}`;
			},
			() => undefined,
		);
		expect(up.running).toBe("AB");
		expect(log).toEqual([]);
		await up.undo();
		expect(log).toEqual(["undo c", "undo b", "undo a (A)"]);
		await up.undo();
		expect(log).toHaveLength(3);
	});

	it("when step N fails, undoes N-1..1 in reverse and rethrows the step's error", async () => {
		for (let failAt = 1; failAt <= 4; failAt++) {
			const log: string[] = [];
			const outcome = bringUp(
				async (steps) => {
					for (let n = 1; n <= 4; n++) {
						await steps.run(
							`step ${n}`,
							() => {
								if (n === failAt) throw new Error(`step ${n} failed`);
								log.push(`do ${n}`);
							},
							() => void log.push(`undo ${n}`),
						);
					}
				},
				() => undefined,
			);
			await expect(outcome).rejects.toThrow(`step ${failAt} failed`);
			const done = Array.from({ length: failAt - 1 }, (_, i) => i + 1);
			expect(log).toEqual([
				...done.map((n) => `do ${n}`),
				...done.reverse().map((n) => `undo ${n}`),
			]);
		}
	});

	it("a failing undo is reported and the others still run", async () => {
		const log: string[] = [];
		const failures: string[] = [];
		const up = await bringUp(
			async (steps) => {
				steps.onUndo("first", () => void log.push("undo first"));
				steps.onUndo("broken", () => {
					throw new Error("busy");
				});
				steps.onUndo("last", () => void log.push("undo last"));
			},
			(step, err) => failures.push(`${step}: ${(err as Error).message}`),
		);
		await up.undo();
		expect(log).toEqual(["undo last", "undo first"]);
		expect(failures).toEqual(["broken: busy"]);
	});
});
