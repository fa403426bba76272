import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { idleTimerAction, stopWhenGraceEnds, type WorkerIdleState } from "./worker-idle.js";

describe("idleTimerAction", () => {
	it("starts the grace when the last session of a running worker ends", () => {
		expect(idleTimerAction({ workerRunning: true, openSessions: 0, idleTimerPending: false })).toBe(
			"start-idle-timer",
		);
	});

	it("keeps a pending grace running while the worker stays idle", () => {
		expect(idleTimerAction({ workerRunning: true, openSessions: 0, idleTimerPending: true })).toBe(
			"none",
		);
	});

	it("cancels the grace when a session starts or the worker is gone", () => {
		expect(idleTimerAction({ workerRunning: true, openSessions: 1, idleTimerPending: true })).toBe(
			"cancel-idle-timer",
		);
		expect(idleTimerAction({ workerRunning: false, openSessions: 0, idleTimerPending: true })).toBe(
			"cancel-idle-timer",
		);
	});

	it("never arms a timer while sessions are open or without a worker", () => {
		fc.assert(
			fc.property(
				fc.boolean(),
				fc.nat(20),
				fc.boolean(),
				(workerRunning, openSessions, pending) => {
					const action = idleTimerAction({
						workerRunning,
						openSessions,
						idleTimerPending: pending,
					});
					if (!workerRunning || openSessions > 0) expect(action).not.toBe("start-idle-timer");
				},
			),
		);
	});

	it("leaves a timer pending exactly when the worker is idle", () => {
		fc.assert(
			fc.property(
				fc.boolean(),
				fc.nat(20),
				fc.boolean(),
				(workerRunning, openSessions, pending) => {
					const state: WorkerIdleState = { workerRunning, openSessions, idleTimerPending: pending };
					const action = idleTimerAction(state);
					const pendingAfter =
						action === "start-idle-timer" ? true : action === "cancel-idle-timer" ? false : pending;
					expect(pendingAfter).toBe(workerRunning && openSessions === 0);
				},
			),
		);
	});
});

describe("stopWhenGraceEnds", () => {
	it("stops only a running worker with no open session (a session in progress is never cut)", () => {
		expect(stopWhenGraceEnds({ workerRunning: true, openSessions: 0 })).toBe(true);
		expect(stopWhenGraceEnds({ workerRunning: true, openSessions: 1 })).toBe(false);
		expect(stopWhenGraceEnds({ workerRunning: false, openSessions: 0 })).toBe(false);
	});
});
