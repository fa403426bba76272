import { describe, expect, it } from "vitest";
import { OutputBudget } from "./output-budget.js";

describe("OutputBudget", () => {
	it("holds a stream back while its own queue is over the limit", () => {
		const budget = new OutputBudget(1000, 100);
		const s = budget.stream();
		const sent = s.queued(150);
		expect(s.writable()).toBe(false);
		let woken = 0;
		s.onWritable(() => woken++);
		expect(woken).toBe(0);
		sent();
		expect(woken).toBe(1);
		expect(s.writable()).toBe(true);
		sent();
		expect(budget.totalUnsent).toBe(0);
	});

	it("holds every stream back while the total is over the limit, and wakes them in order", () => {
		const budget = new OutputBudget(200, 1000);
		const [a, b, c] = [budget.stream(), budget.stream(), budget.stream()];
		const sentA = a.queued(250);
		expect(b.writable()).toBe(false);
		const order: string[] = [];
		b.onWritable(() => {
			order.push("b");
			b.queued(250);
		});
		c.onWritable(() => order.push("c"));
		sentA();
		// b wrote and filled the budget again, so c still waits.
		expect(order).toEqual(["b"]);
		expect(budget.waiters).toBe(1);
	});

	it("a closed stream's waiter is dropped", () => {
		const budget = new OutputBudget(10, 10);
		const a = budget.stream();
		const b = budget.stream();
		const sent = a.queued(50);
		let called = false;
		b.onWritable(() => {
			called = true;
		});
		b.close();
		sent();
		expect(called).toBe(false);
		expect(budget.waiters).toBe(0);
	});

	it("a closed stream's unsent bytes stop counting, even if their callbacks never come", () => {
		const budget = new OutputBudget(100, 1000);
		const a = budget.stream();
		const sent = a.queued(500);
		const b = budget.stream();
		expect(b.writable()).toBe(false);
		a.close();
		expect(budget.totalUnsent).toBe(0);
		expect(b.writable()).toBe(true);
		sent();
		expect(budget.totalUnsent).toBe(0);
	});
});
