/**
 * When the ICE worker stops for lack of work: the pure half of IceAgent's idle
 * stop. The worker is a second Node process (~50 MB resident) that only has
 * work while a negotiation is pending; once every session is closed it owns
 * nothing the daemon still needs (a connected session's UDP port is released
 * on close and WireGuard takes it over), so it may exit and be forked again
 * when the next session starts.
 *
 * A session counts as open from startSession until it failed or its close was
 * confirmed: a closing session still holds its port, and a session in progress
 * is never cut. The timer gives a short grace so that a burst of negotiations
 * (a map with many new peers, a path recovery after a failure) reuses one
 * worker instead of forking one per session.
 */

export interface WorkerIdleState {
	/** A worker runs and was not asked to stop. */
	workerRunning: boolean;
	/** Sessions started and neither failed nor confirmed closed. */
	openSessions: number;
	/** An idle-stop timer is pending. */
	idleTimerPending: boolean;
}

export type WorkerIdleAction =
	/** The worker just went idle: stop it when the grace is over. */
	| "start-idle-timer"
	/** A session started (or the worker is gone): the pending stop no longer applies. */
	| "cancel-idle-timer"
	| "none";

/** What to do about the idle-stop timer after sessions or the worker changed. */
export function idleTimerAction(state: WorkerIdleState): WorkerIdleAction {
	const idle = state.workerRunning && state.openSessions === 0;
	if (idle) return state.idleTimerPending ? "none" : "start-idle-timer";
	return state.idleTimerPending ? "cancel-idle-timer" : "none";
}

/** When the grace is over: stop the worker only if it is still running and still idle. */
export function stopWhenGraceEnds(state: Omit<WorkerIdleState, "idleTimerPending">): boolean {
	return state.workerRunning && state.openSessions === 0;
}
