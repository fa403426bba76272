/**
 * The daemon side of ICE: forks the ICE worker (ice-worker.ts) on first use,
 * relays sessions to it over IPC, and survives it dying. A worker crash fails
 * every session it held ("ice worker crashed"); the next session forks a new one.
 * A worker with no open session stops after a short grace (worker-idle.ts) and
 * is forked again by the next session: it costs ~50 MB while it runs.
 */

import { type ChildProcess, fork } from "node:child_process";
import { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Logger } from "@starling/log";
import { OVERLAY_PREFIX, parsePrefix } from "./address-prefix.js";
import {
	type CandidateEndpoint,
	type DaemonToWorkerMessage,
	type IceRole,
	type PortRange,
	parseWorkerToDaemonMessage,
	type SdpType,
	type WorkerToDaemonMessage,
} from "./protocol.js";
import { idleTimerAction, stopWhenGraceEnds } from "./worker-idle.js";

export type { CandidateEndpoint, IceRole, PortRange, SdpType } from "./protocol.js";

export const DEFAULT_ICE_TIMEOUT_MS = 8_000;
export const WORKER_CRASHED_REASON = "ice worker crashed";
/** A worker with no open session stops this long after its last session ended. */
export const DEFAULT_WORKER_IDLE_STOP_MS = 5_000;

export interface StartSessionOptions {
	sessionId: string;
	/** The controlling side is the offerer. */
	role: IceRole;
	/** "stun:host:port" URLs; empty for host candidates only. */
	stunServers: string[];
	/** Extra CIDR prefixes never to offer or accept; the overlay 100.64.0.0/10 always is. */
	excludePrefixes?: string[];
	/** Local UDP port range for the ICE socket; default: the OS picks. */
	portRange?: PortRange;
	/** Fail unless ICE connected this long after start. Default 8 s. */
	timeoutMs?: number;
}

export interface LocalDescriptionEvent {
	sessionId: string;
	sdp: string;
	type: SdpType;
}

export interface LocalCandidateEvent {
	sessionId: string;
	/** Empty string: gathering complete (the proto's end-of-candidates marker). */
	candidate: string;
	mid: string;
}

export interface ConnectedEvent {
	sessionId: string;
	local: CandidateEndpoint;
	remote: CandidateEndpoint;
	/** The local ICE socket's UDP port: after closeSession, WireGuard traffic to `remote` must leave from it. */
	localPort: number;
	/** Session start to ICE connected, measured in the worker. */
	elapsedMs: number;
	rttMs?: number;
}

export interface FailedEvent {
	sessionId: string;
	reason: string;
}

export interface IceLogEvent {
	level: "debug" | "info" | "warn" | "error";
	message: string;
	sessionId?: string;
}

export interface WorkerExitEvent {
	pid: number | undefined;
	code: number | null;
	signal: NodeJS.Signals | null;
	/** False when we asked it to stop. */
	unexpected: boolean;
}

export interface IceAgentEvents {
	"local-description": [LocalDescriptionEvent];
	"local-candidate": [LocalCandidateEvent];
	connected: [ConnectedEvent];
	failed: [FailedEvent];
	log: [IceLogEvent];
	"worker-exit": [WorkerExitEvent];
}

export interface IceAgentOptions {
	/** The compiled ice-worker.js; default: next to this module (see defaultWorkerPath). */
	workerPath?: string;
	/** closeSession gives up waiting for the worker's answer after this long. */
	closeTimeoutMs?: number;
	/** If given, `log` and unexpected `worker-exit` events are also written here. */
	logger?: Logger;
	/**
	 * Stop the worker this long after its last open session ended (default
	 * DEFAULT_WORKER_IDLE_STOP_MS); the next session forks a new one.
	 * `Infinity`: keep it until close().
	 */
	idleStopMs?: number;
}

/**
 * Where the compiled worker lives: next to this module. When this module is
 * itself loaded from TypeScript sources (vitest), the worker is taken from
 * the package's dist/ (build first); a child process can't run .ts.
 */
export function defaultWorkerPath(moduleUrl: string = import.meta.url): string {
	const beside = fileURLToPath(new URL("./ice-worker.js", moduleUrl));
	if (!moduleUrl.endsWith(".ts") || existsSync(beside)) return beside;
	return beside.replace(/\/src\/ice\/ice-worker\.js$/, "/dist/ice/ice-worker.js");
}

interface SessionState {
	/** The worker process holding this session's PeerConnection. */
	worker: Worker;
	/** closeSession was called: report nothing more, wait for `closed`. */
	closing?: Promise<void>;
	resolveClosed?: () => void;
}

interface Worker {
	process: ChildProcess;
	exited: Promise<void>;
	stopping: boolean;
}

export class IceAgent extends EventEmitter<IceAgentEvents> {
	private readonly workerPath: string;
	private readonly closeTimeoutMs: number;
	private readonly idleStopMs: number;
	private worker: Worker | undefined;
	private readonly sessions = new Map<string, SessionState>();
	private idleTimer: NodeJS.Timeout | undefined;

	constructor(options: IceAgentOptions = {}) {
		super();
		this.workerPath = options.workerPath ?? defaultWorkerPath();
		this.closeTimeoutMs = options.closeTimeoutMs ?? 2_000;
		this.idleStopMs = options.idleStopMs ?? DEFAULT_WORKER_IDLE_STOP_MS;
		if (!(this.idleStopMs >= 0)) throw new Error(`bad ICE worker idle stop ${this.idleStopMs}`);
		const logger = options.logger;
		if (logger !== undefined) {
			this.on("log", ({ level, message, sessionId }) => {
				logger[level](sessionId === undefined ? {} : { sessionId }, message);
			});
			this.on("worker-exit", ({ pid, code, signal, unexpected }) => {
				if (unexpected) logger.error({ pid, code, signal }, "ice worker died; its sessions failed");
			});
		}
	}

	/** The worker's pid while one runs (for diagnostics and tests). */
	get workerPid(): number | undefined {
		return this.worker?.process.pid;
	}

	/** Sessions started and neither failed nor closed. */
	get sessionCount(): number {
		return this.sessions.size;
	}

	/** Starts gathering; the controlling side's offer arrives as `local-description`. */
	startSession(options: StartSessionOptions): void {
		if (this.sessions.has(options.sessionId)) {
			throw new Error(`ICE session ${options.sessionId} already exists`);
		}
		const excludePrefixes = [OVERLAY_PREFIX, ...(options.excludePrefixes ?? [])];
		// Reject bad prefixes here, where the caller can see the exception.
		for (const prefix of excludePrefixes) parsePrefix(prefix);
		const timeoutMs = options.timeoutMs ?? DEFAULT_ICE_TIMEOUT_MS;
		if (!(timeoutMs > 0)) throw new Error(`bad ICE timeout ${timeoutMs}`);
		const worker = this.ensureWorker();
		this.sessions.set(options.sessionId, { worker });
		this.reviewIdleStop();
		this.sendToWorker(worker, {
			type: "start",
			sessionId: options.sessionId,
			role: options.role,
			stunServers: options.stunServers,
			excludePrefixes,
			...(options.portRange === undefined ? {} : { portRange: options.portRange }),
			timeoutMs,
		});
	}

	setRemoteDescription(sessionId: string, sdp: string, type: SdpType): void {
		const session = this.activeSession(sessionId);
		if (session === undefined) return;
		this.sendToWorker(session.worker, {
			type: "remote-description",
			sessionId,
			sdp,
			sdpType: type,
		});
	}

	/** An empty candidate (end-of-candidates) is accepted and ignored. */
	addRemoteCandidate(sessionId: string, candidate: string, mid: string): void {
		const session = this.activeSession(sessionId);
		if (session === undefined) return;
		this.sendToWorker(session.worker, { type: "remote-candidate", sessionId, candidate, mid });
	}

	/**
	 * Closes the session's PeerConnection. Resolves once its local UDP port is
	 * released (or the worker is gone, or closeTimeoutMs passed). No events for
	 * the session follow.
	 */
	closeSession(sessionId: string): Promise<void> {
		const session = this.sessions.get(sessionId);
		if (session === undefined) return Promise.resolve();
		if (session.closing !== undefined) return session.closing;
		session.closing = new Promise<void>((resolve) => {
			const timer = setTimeout(() => {
				this.emit("log", {
					level: "warn",
					message: `no close confirmation from ice worker after ${this.closeTimeoutMs} ms`,
					sessionId,
				});
				finish();
			}, this.closeTimeoutMs);
			const finish = () => {
				clearTimeout(timer);
				if (this.sessions.get(sessionId) === session) {
					this.sessions.delete(sessionId);
					this.reviewIdleStop();
				}
				resolve();
			};
			session.resolveClosed = finish;
		});
		if (!session.worker.process.connected) session.resolveClosed?.();
		else this.sendToWorker(session.worker, { type: "close", sessionId });
		return session.closing;
	}

	/** Closes every session and stops the worker. The agent can be used again afterwards. */
	async close(): Promise<void> {
		await Promise.all([...this.sessions.keys()].map((id) => this.closeSession(id)));
		const worker = this.worker;
		if (worker === undefined) return;
		await this.stopWorker(worker);
	}

	/** Asks the worker to exit (SIGKILL after 2 s); its exit is expected, not a crash. */
	private stopWorker(worker: Worker): Promise<void> {
		if (!worker.stopping) {
			worker.stopping = true;
			this.reviewIdleStop();
			this.sendToWorker(worker, { type: "shutdown" });
			const killTimer = setTimeout(() => worker.process.kill("SIGKILL"), 2_000);
			void worker.exited.then(() => clearTimeout(killTimer));
		}
		return worker.exited;
	}

	/**
	 * Arms or cancels the idle stop (worker-idle.ts) after the sessions or the
	 * worker changed. Sessions still closing count as open: they hold a port.
	 */
	private reviewIdleStop(): void {
		const action = idleTimerAction({
			workerRunning: this.workerRunning(),
			openSessions: this.sessions.size,
			idleTimerPending: this.idleTimer !== undefined,
		});
		if (action === "cancel-idle-timer") {
			clearTimeout(this.idleTimer);
			this.idleTimer = undefined;
		} else if (action === "start-idle-timer" && Number.isFinite(this.idleStopMs)) {
			this.idleTimer = setTimeout(() => this.onIdleGraceOver(), this.idleStopMs);
			// An idle stop alone never keeps the process alive.
			this.idleTimer.unref();
		}
	}

	private onIdleGraceOver(): void {
		this.idleTimer = undefined;
		const worker = this.worker;
		const idle = stopWhenGraceEnds({
			workerRunning: this.workerRunning(),
			openSessions: this.sessions.size,
		});
		if (worker === undefined || !idle) return;
		this.emit("log", {
			level: "debug",
			message: `stopping the ice worker: no open session for ${this.idleStopMs} ms`,
		});
		void this.stopWorker(worker);
	}

	/** A worker runs and was not asked to stop. */
	private workerRunning(): boolean {
		return this.worker !== undefined && !this.worker.stopping;
	}

	/** The session if it exists and closeSession was not called for it. */
	private activeSession(sessionId: string): SessionState | undefined {
		const session = this.sessions.get(sessionId);
		return session?.closing === undefined ? session : undefined;
	}

	private sendToWorker(worker: Worker, message: DaemonToWorkerMessage): void {
		if (!worker.process.connected) return;
		// send() reports a broken channel through the callback; the exit handler cleans up.
		worker.process.send(message, (error) => {
			if (error !== null && error !== undefined) {
				this.emit("log", { level: "warn", message: `sending to ice worker: ${error.message}` });
			}
		});
	}

	private ensureWorker(): Worker {
		if (this.worker !== undefined && !this.worker.stopping) return this.worker;
		const child = fork(this.workerPath, [], {
			// Not the parent's flags (e.g. a test runner's loaders).
			execArgv: [],
			// The worker's stdout goes to our stderr: our stdout may be a protocol stream.
			stdio: ["ignore", 2, 2, "ipc"],
			serialization: "json",
		});
		let markExited: () => void = () => {};
		const worker: Worker = {
			process: child,
			exited: new Promise<void>((resolve) => {
				markExited = resolve;
			}),
			stopping: false,
		};
		let exitHandled = false;
		const onGone = (code: number | null, signal: NodeJS.Signals | null) => {
			if (exitHandled) return;
			exitHandled = true;
			this.onWorkerGone(worker, code, signal);
			markExited();
		};
		child.on("message", (raw: unknown) => this.onWorkerMessage(worker, raw));
		child.on("exit", onGone);
		child.on("error", (error) => {
			this.emit("log", { level: "error", message: `ice worker: ${error.message}` });
			// A failed spawn emits no exit event.
			if (child.pid === undefined) onGone(null, null);
		});
		this.worker = worker;
		return worker;
	}

	private onWorkerGone(worker: Worker, code: number | null, signal: NodeJS.Signals | null): void {
		if (this.worker === worker) this.worker = undefined;
		const unexpected = !worker.stopping;
		this.emit("worker-exit", { pid: worker.process.pid, code, signal, unexpected });
		// Its sessions' PCs (and their ports) died with it.
		for (const [sessionId, session] of [...this.sessions]) {
			if (session.worker !== worker) continue;
			this.sessions.delete(sessionId);
			if (session.closing !== undefined) {
				session.resolveClosed?.();
			} else if (unexpected) {
				this.emit("failed", { sessionId, reason: WORKER_CRASHED_REASON });
			}
		}
		this.reviewIdleStop();
	}

	private onWorkerMessage(worker: Worker, raw: unknown): void {
		const message = parseWorkerToDaemonMessage(raw);
		if (message === undefined) {
			this.emit("log", { level: "warn", message: "dropping malformed message from ice worker" });
			return;
		}
		this.dispatch(worker, message);
	}

	private dispatch(worker: Worker, message: WorkerToDaemonMessage): void {
		// Session messages count only from the worker that holds the session.
		const session = "sessionId" in message ? this.sessions.get(message.sessionId ?? "") : undefined;
		const active =
			session !== undefined && session.worker === worker && session.closing === undefined;
		switch (message.type) {
			case "ready":
				this.emit("log", {
					level: "debug",
					message: `ice worker ready (libdatachannel ${message.libraryVersion})`,
				});
				return;
			case "log": {
				const { type: _type, ...event } = message;
				this.emit("log", event);
				return;
			}
			case "closed":
				if (session?.worker === worker) session.resolveClosed?.();
				return;
			case "local-description":
				if (active) {
					this.emit("local-description", {
						sessionId: message.sessionId,
						sdp: message.sdp,
						type: message.sdpType,
					});
				}
				return;
			case "local-candidate":
				if (active) {
					this.emit("local-candidate", {
						sessionId: message.sessionId,
						candidate: message.candidate,
						mid: message.mid,
					});
				}
				return;
			case "connected":
				if (active) {
					const { type: _type, ...event } = message;
					this.emit("connected", event);
				}
				return;
			case "failed":
				if (active) {
					this.sessions.delete(message.sessionId);
					this.reviewIdleStop();
					this.emit("failed", { sessionId: message.sessionId, reason: message.reason });
				}
				return;
		}
	}
}
