/**
 * The ICE worker: a child process (started by IceAgent with child_process.fork)
 * that owns every node-datachannel PeerConnection of the agent.
 *
 * Why a separate process: libdatachannel/libjuice has crashed natively at
 * process exit (bus error, stack-segment trap), and an exception thrown inside
 * one of its callbacks aborts the process (exit 134) instead of reaching
 * Node's handlers. Here that costs the ICE sessions in flight, not the daemon.
 *
 * We use ICE only to find and punch a UDP path: a session reports `connected`
 * as soon as ICE connects (DTLS/SCTP is never waited for), after which the
 * daemon closes it and hands the port to WireGuard.
 */

import { setTimeout as sleep } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import {
	cleanup,
	type DataChannel,
	type DescriptionType,
	getLibraryVersion,
	PeerConnection,
	type RtcConfig,
} from "node-datachannel";
import { type AddressPrefix, isAddressExcluded, parsePrefix } from "./address-prefix.js";
import { filterSdpCandidates, isCandidateExcluded, parseCandidate } from "./candidate.js";
import { onPeerConnectionLost } from "./peer-connection-lost.js";
import {
	type CandidateEndpoint,
	parseDaemonToWorkerMessage,
	type RemoteCandidateMessage,
	type RemoteDescriptionMessage,
	type StartSessionMessage,
	type WorkerToDaemonMessage,
} from "./protocol.js";
import { waitForUdpPortRelease } from "./udp-port.js";

/** The daemon SIGKILLs us 2 s after asking us to stop; an orphan has nobody to do it. */
const SHUTDOWN_WATCHDOG_MS = 1_500;

interface Session {
	id: string;
	pc: PeerConnection;
	/** Held so the offerer's data channel (which makes libdatachannel write an offer) stays referenced. */
	dataChannel?: DataChannel;
	exclude: AddressPrefix[];
	startedAt: number;
	/** Set once pc.close() was called: from then on no method of `pc` may be called. */
	pcClosed: boolean;
	/** Set once `connected` or `failed` was reported; each session reports one of them, once. */
	outcomeReported: boolean;
	hasRemoteDescription: boolean;
	/** Remote candidates that arrived before the remote description. */
	pendingRemoteCandidates: { candidate: string; mid: string }[];
	/** The port of the ICE socket (base of the host candidates). */
	localPort?: number;
	lastMid: string;
	/** The last state the ICE state callback reported, for the timeout's diagnosis. */
	lastIceState?: string;
	/** Remote candidates passed to the PC. */
	remoteCandidatesAdded: number;
	timeout?: NodeJS.Timeout;
	/** Resolves once the PC is closed and its port released; shared by concurrent closers. */
	closing?: Promise<boolean>;
}

const sessions = new Map<string, Session>();
let shuttingDown = false;

function send(message: WorkerToDaemonMessage): void {
	// The daemon may be gone (it crashed or is exiting); then there is nobody to tell.
	if (!process.connected || process.send === undefined) return;
	try {
		process.send(message);
	} catch {
		// Channel closed between the check and the send.
	}
}

function log(
	level: "debug" | "info" | "warn" | "error",
	message: string,
	sessionId?: string,
): void {
	send({ type: "log", level, message, ...(sessionId === undefined ? {} : { sessionId }) });
}

function errorText(error: unknown): string {
	return error instanceof Error ? error.message : String(error);
}

/**
 * Wraps a node-datachannel callback: an exception escaping it would abort the
 * whole process, and a callback can still arrive after we closed the PC.
 */
function guarded<Args extends unknown[]>(
	session: Session,
	what: string,
	handler: (...args: Args) => void,
): (...args: Args) => void {
	return (...args: Args) => {
		try {
			if (session.pcClosed) return;
			handler(...args);
		} catch (error) {
			log("error", `${what} callback failed: ${errorText(error)}`, session.id);
		}
	};
}

function startSession(message: StartSessionMessage): void {
	if (sessions.has(message.sessionId)) {
		log("warn", "ignoring start of a session that already exists", message.sessionId);
		return;
	}
	let exclude: AddressPrefix[];
	try {
		exclude = message.excludePrefixes.map(parsePrefix);
	} catch (error) {
		send({ type: "failed", sessionId: message.sessionId, reason: errorText(error) });
		return;
	}
	const config: RtcConfig = {
		iceServers: message.stunServers,
		...(message.portRange === undefined
			? {}
			: { portRangeBegin: message.portRange.begin, portRangeEnd: message.portRange.end }),
	};
	let pc: PeerConnection;
	try {
		pc = new PeerConnection(`starling-${message.sessionId}`, config);
	} catch (error) {
		send({
			type: "failed",
			sessionId: message.sessionId,
			reason: `cannot create peer connection: ${errorText(error)}`,
		});
		return;
	}
	const session: Session = {
		id: message.sessionId,
		pc,
		exclude,
		startedAt: Date.now(),
		pcClosed: false,
		outcomeReported: false,
		hasRemoteDescription: false,
		pendingRemoteCandidates: [],
		lastMid: "0",
		remoteCandidatesAdded: 0,
	};
	sessions.set(session.id, session);

	pc.onLocalDescription(
		guarded(session, "local description", (sdp: string, type: DescriptionType) => {
			if (type !== "offer" && type !== "answer") return;
			send({
				type: "local-description",
				sessionId: session.id,
				sdp: filterSdpCandidates(sdp, session.exclude),
				sdpType: type,
			});
		}),
	);
	pc.onLocalCandidate(
		guarded(session, "local candidate", (candidate: string, mid: string) => {
			session.lastMid = mid;
			noteLocalPort(session, candidate);
			if (isCandidateExcluded(candidate, session.exclude)) {
				log("debug", `not offering excluded local candidate: ${candidate}`, session.id);
				return;
			}
			send({ type: "local-candidate", sessionId: session.id, candidate, mid });
		}),
	);
	pc.onGatheringStateChange(
		guarded(session, "gathering state", (state: string) => {
			if (state === "complete") {
				send({
					type: "local-candidate",
					sessionId: session.id,
					candidate: "",
					mid: session.lastMid,
				});
			}
		}),
	);
	pc.onIceStateChange(
		guarded(session, "ice state", (state: string) => {
			session.lastIceState = state;
			if (state === "connected" || state === "completed") {
				reportConnected(session);
			} else if (state === "failed") {
				fail(session, "ice failed");
			}
		}),
	);

	// Not ICE, but the PeerConnection around it: libdatachannel closes it when
	// DTLS fails, and the ICE callbacks still queued are then dropped (see
	// peer-connection-lost.ts). `guarded` skips the close we asked for.
	pc.onStateChange(
		guarded(session, "peer connection state", (state: string) => {
			const action = onPeerConnectionLost(state, readIceState(session), session.outcomeReported);
			if (action.kind === "report-connected") reportConnected(session);
			else if (action.kind === "fail") fail(session, action.reason);
		}),
	);

	session.timeout = setTimeout(() => {
		log("warn", `ice not connected in time: ${describeState(session)}`, session.id);
		fail(session, `ice not connected within ${message.timeoutMs} ms`);
	}, message.timeoutMs);

	if (message.role === "controlling") {
		try {
			// A data channel gives the offer its one m-line; libdatachannel then
			// writes the offer and starts gathering on its own (auto-negotiation).
			session.dataChannel = pc.createDataChannel("starling");
		} catch (error) {
			fail(session, `cannot create offer: ${errorText(error)}`);
		}
	}
}

function readIceState(session: Session): string {
	try {
		return session.pc.iceState();
	} catch {
		return "closed";
	}
}

/** Where a session stands, for the log line of a timeout: which side of ICE got stuck. */
function describeState(session: Session): string {
	const { pc } = session;
	try {
		const pair = pc.getSelectedCandidatePair();
		return [
			`ice ${pc.iceState()} (last callback: ${session.lastIceState ?? "none"})`,
			`signaling ${pc.signalingState()}`,
			`gathering ${pc.gatheringState()}`,
			`remote description ${session.hasRemoteDescription ? "set" : "missing"}`,
			`remote candidates ${session.remoteCandidatesAdded} added, ${session.pendingRemoteCandidates.length} pending`,
			`selected pair ${pair === null ? "none" : `${pair.local.address}:${pair.local.port} -> ${pair.remote.address}:${pair.remote.port}`}`,
		].join(", ");
	} catch (error) {
		return `state unreadable: ${errorText(error)}`;
	}
}

/**
 * libjuice gathers all host candidates on one socket, so any host candidate
 * (also an excluded one) tells us its port; a server-reflexive one names it as rport.
 */
function noteLocalPort(session: Session, candidateLine: string): void {
	const candidate = parseCandidate(candidateLine);
	if (candidate === undefined || session.localPort !== undefined) return;
	if (candidate.type === "host") session.localPort = candidate.port;
	else if (candidate.relatedPort !== undefined && candidate.relatedPort > 0) {
		session.localPort = candidate.relatedPort;
	}
}

function reportConnected(session: Session): void {
	if (session.outcomeReported || session.pcClosed) return;
	const pair = session.pc.getSelectedCandidatePair();
	if (pair === null) {
		// Possible right at the transition: look again shortly (the timeout
		// still bounds the session).
		setTimeout(() => {
			try {
				reportConnected(session);
			} catch (error) {
				fail(session, `reading selected pair: ${errorText(error)}`);
			}
		}, 10);
		return;
	}
	const local: CandidateEndpoint = {
		address: pair.local.address,
		port: pair.local.port,
		type: pair.local.type,
	};
	const remote: CandidateEndpoint = {
		address: pair.remote.address,
		port: pair.remote.port,
		type: pair.remote.type,
	};
	if (isAddressExcluded(remote.address, session.exclude)) {
		// A path through our own overlay would loop WireGuard into itself.
		fail(session, `selected remote address ${remote.address} is excluded`);
		return;
	}
	// libdatachannel's rtt() is the SCTP round-trip time: -1 until DTLS/SCTP run,
	// which we never wait for. Report it only when there is one.
	const rtt = session.pc.rtt();
	session.outcomeReported = true;
	clearTimeout(session.timeout);
	send({
		type: "connected",
		sessionId: session.id,
		local,
		remote,
		localPort: session.localPort ?? (local.type === "host" ? local.port : remote.port),
		elapsedMs: Date.now() - session.startedAt,
		...(rtt > 0 ? { rttMs: rtt } : {}),
	});
}

function fail(session: Session, reason: string): void {
	if (session.outcomeReported) return;
	session.outcomeReported = true;
	clearTimeout(session.timeout);
	send({ type: "failed", sessionId: session.id, reason });
	// Free the socket now; the daemon's later close finds the session gone.
	// Deferred: we may be inside a native callback of this very PC.
	setImmediate(() => {
		void closeSession(session).then(() => sessions.delete(session.id));
	});
}

function setRemoteDescription(message: RemoteDescriptionMessage): void {
	const session = sessions.get(message.sessionId);
	if (session === undefined || session.pcClosed) return;
	try {
		session.pc.setRemoteDescription(
			filterSdpCandidates(message.sdp, session.exclude),
			message.sdpType,
		);
		session.hasRemoteDescription = true;
	} catch (error) {
		fail(session, `bad remote description: ${errorText(error)}`);
		return;
	}
	const pending = session.pendingRemoteCandidates.splice(0);
	for (const candidate of pending) addRemoteCandidate(session, candidate.candidate, candidate.mid);
}

function onRemoteCandidate(message: RemoteCandidateMessage): void {
	const session = sessions.get(message.sessionId);
	if (session === undefined || session.pcClosed) return;
	// End-of-candidates: libjuice keeps checking what it has; nothing to pass on.
	if (message.candidate === "") return;
	if (!session.hasRemoteDescription) {
		session.pendingRemoteCandidates.push({ candidate: message.candidate, mid: message.mid });
		return;
	}
	addRemoteCandidate(session, message.candidate, message.mid);
}

function addRemoteCandidate(session: Session, candidate: string, mid: string): void {
	if (session.pcClosed) return;
	if (isCandidateExcluded(candidate, session.exclude)) {
		log("debug", `ignoring excluded remote candidate: ${candidate}`, session.id);
		return;
	}
	try {
		session.pc.addRemoteCandidate(candidate, mid);
		session.remoteCandidatesAdded++;
	} catch (error) {
		// One bad candidate must not end the session; ICE may succeed with others.
		log("warn", `remote candidate rejected: ${errorText(error)}`, session.id);
	}
}

/** Closes the PC once; resolves true when its UDP port is bindable again. */
function closeSession(session: Session): Promise<boolean> {
	if (session.closing !== undefined) return session.closing;
	clearTimeout(session.timeout);
	if (!session.pcClosed) {
		session.pcClosed = true;
		try {
			session.pc.close();
		} catch (error) {
			log("warn", `closing peer connection: ${errorText(error)}`, session.id);
		}
	}
	const port = session.localPort;
	session.closing = port === undefined ? Promise.resolve(true) : waitForUdpPortRelease(port);
	return session.closing;
}

async function onCloseRequest(sessionId: string): Promise<void> {
	const session = sessions.get(sessionId);
	if (session === undefined) {
		send({ type: "closed", sessionId, portReleased: true });
		return;
	}
	// No `failed` after the daemon asked to close: it no longer cares.
	session.outcomeReported = true;
	const released = await closeSession(session);
	sessions.delete(sessionId);
	if (!released) log("warn", `port ${session.localPort} still bound after close`, sessionId);
	send({
		type: "closed",
		sessionId,
		portReleased: released,
		...(session.localPort === undefined ? {} : { localPort: session.localPort }),
	});
}

/**
 * Closes everything and exits. cleanup() is what lets the process end, but it
 * blocks this thread in native code and was seen to deadlock when called right
 * after a close (callbacks of the closed PC still queued for this very thread):
 * so first let the closes finish and their callbacks drain, and arm a watchdog
 * on another thread, the only thing that can end the process if it does hang.
 */
async function shutdown(): Promise<void> {
	if (shuttingDown) return;
	shuttingDown = true;
	armExitWatchdog(SHUTDOWN_WATCHDOG_MS);
	const closing = [...sessions.values()].map((session) => {
		session.outcomeReported = true;
		return closeSession(session);
	});
	sessions.clear();
	await Promise.all(closing);
	await sleep(50);
	try {
		cleanup();
	} catch (error) {
		log("warn", `cleanup: ${errorText(error)}`);
	}
	if (process.connected) process.disconnect();
	// Don't wait for the event loop to drain by itself: nothing is left to do.
	setImmediate(() => process.exit(0));
}

/** SIGKILLs this process from a separate thread unless it exited within `ms`. */
function armExitWatchdog(ms: number): void {
	try {
		const watchdog = new Worker(
			`setTimeout(() => process.kill(${process.pid}, "SIGKILL"), ${Math.round(ms)});`,
			{ eval: true },
		);
		watchdog.unref();
	} catch (error) {
		log("warn", `no exit watchdog: ${errorText(error)}`);
	}
}

process.on("message", (raw: unknown) => {
	const message = parseDaemonToWorkerMessage(raw);
	if (message === undefined) {
		log("warn", "dropping malformed message from daemon");
		return;
	}
	if (shuttingDown) return;
	switch (message.type) {
		case "start":
			startSession(message);
			break;
		case "remote-description":
			setRemoteDescription(message);
			break;
		case "remote-candidate":
			onRemoteCandidate(message);
			break;
		case "close":
			void onCloseRequest(message.sessionId);
			break;
		case "shutdown":
			void shutdown();
			break;
	}
});

// The daemon went away (exited or crashed): nothing is left to serve.
process.on("disconnect", () => void shutdown());

if (process.send === undefined) {
	process.stderr.write("ice-worker must be started with child_process.fork\n");
	process.exit(2);
}
send({ type: "ready", libraryVersion: getLibraryVersion() });
