import { status } from "@grpc/grpc-js";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SignalError } from "./errors.js";
import { PendingSends } from "./pending-sends.js";

describe("PendingSends", () => {
	beforeEach(() => {
		vi.useFakeTimers();
	});
	afterEach(() => {
		vi.useRealTimers();
	});

	it("hands out distinct ids and resolves on an OK result", async () => {
		const pending = new PendingSends(1_000);
		const a = pending.track();
		const b = pending.track();
		expect(a.id).not.toBe(b.id);
		expect(pending.size).toBe(2);
		expect(pending.settle({ id: b.id, code: status.OK, message: "" })).toBe(true);
		await expect(b.result).resolves.toBeUndefined();
		expect(pending.size).toBe(1);
		pending.failAll(new SignalError(status.CANCELLED, "done"));
		await expect(a.result).rejects.toThrow(/done/);
	});

	it("rejects with the server's code and message", async () => {
		const pending = new PendingSends(1_000);
		const { id, result } = pending.track();
		pending.settle({ id, code: status.NOT_FOUND, message: "peer X is not connected" });
		const error = await result.catch((err: unknown) => err);
		expect(error).toBeInstanceOf(SignalError);
		expect((error as SignalError).code).toBe(status.NOT_FOUND);
		expect((error as SignalError).message).toContain("peer X is not connected");
	});

	it("times out with DEADLINE_EXCEEDED and ignores the late result", async () => {
		const pending = new PendingSends(500);
		const { id, result } = pending.track();
		const outcome = result.catch((err: unknown) => err);
		await vi.advanceTimersByTimeAsync(499);
		expect(pending.size).toBe(1);
		await vi.advanceTimersByTimeAsync(1);
		expect(((await outcome) as SignalError).code).toBe(status.DEADLINE_EXCEEDED);
		expect(pending.size).toBe(0);
		expect(pending.settle({ id, code: status.OK, message: "" })).toBe(false);
	});

	it("ignores results for ids it never issued", () => {
		const pending = new PendingSends(0);
		expect(pending.settle({ id: 42, code: status.OK, message: "" })).toBe(false);
		expect(pending.fail(42, new SignalError(status.UNKNOWN, "x"))).toBe(false);
	});

	it("fails everything at once and clears its timers", async () => {
		const pending = new PendingSends(1_000);
		const results = [pending.track(), pending.track(), pending.track()].map((p) =>
			p.result.catch((err: unknown) => (err as SignalError).code),
		);
		pending.failAll(new SignalError(status.UNAVAILABLE, "stream ended"));
		expect(await Promise.all(results)).toEqual([
			status.UNAVAILABLE,
			status.UNAVAILABLE,
			status.UNAVAILABLE,
		]);
		expect(vi.getTimerCount()).toBe(0);
	});
});
