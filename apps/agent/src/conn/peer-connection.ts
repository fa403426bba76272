import type { ConnectionAnswer, ConnectionOffer, PeerMessage } from "@starling/proto";
import { backoffDelayMs, isSessionId, newSessionId, roleFor } from "./negotiation-math.js";
import {
	type ConnCommand,
	type ConnConfig,
	type ConnInput,
	type ConnPath,
	type ConnRole,
	type ConnSnapshot,
	type ConnStateName,
	DEFAULT_CONN_CONFIG,
	type PeerEndpoint,
	type TimerName,
} from "./types.js";

// The engine imports the machine and its vocabulary from one place.
export type {
	ConnCommand,
	ConnConfig,
	ConnInput,
	ConnPath,
	ConnRole,
	ConnSnapshot,
	ConnStateName,
	PeerEndpoint,
	TimerName,
} from "./types.js";

export interface PeerConnectionOptions {
	localPublicKey: Uint8Array;
	remotePublicKey: Uint8Array;
	/** Our WireGuard listen port, announced in offers and answers. */
	wireguardPort: number;
	agentVersion: string;
	/** Returns a number in [0, 1), like Math.random; used for session ids and jitter. */
	random: () => number;
	config?: Partial<ConnConfig>;
}

interface Candidate {
	candidate: string;
	mid: string;
}

interface EarlyIceConnected {
	local: PeerEndpoint;
	remote: PeerEndpoint;
	rttMs: number | undefined;
}

/** Sessions remembered as superseded, so their late offers are not adopted again. */
const PAST_SESSIONS_KEPT = 16;
/** Sessions whose candidates we hold while their offer is still on its way. */
const EARLY_SESSIONS_KEPT = 4;
/** The peer's past instances, so a late message of one does not count as a restart. */
const PAST_PEER_INSTANCES_KEPT = 8;

/**
 * The negotiation with one remote peer, as a sans-IO state machine: every
 * input comes with the current time and returns the commands to carry out,
 * in order. No sockets, clocks, timers or randomness inside (see README.md).
 */
export class PeerConnection {
	readonly role: ConnRole;
	/**
	 * Random, drawn once: stands for our WireGuard peer for the remote, which
	 * is new with every PeerConnection (sent as `senderInstance` in every message).
	 */
	readonly instance: number;
	private readonly config: ConnConfig;
	private readonly random: () => number;
	private readonly wireguardPort: number;
	private readonly agentVersion: string;

	private state: ConnStateName = "idle";
	private nowMs = 0;
	private commands: ConnCommand[] = [];
	private peerOnline = false;
	/** The `senderInstance` the peer's messages carry (0: none seen yet), and its earlier ones. */
	private peerInstance = 0;
	private readonly pastPeerInstances: number[] = [];

	// The current negotiation session (0: none yet) and its progress.
	private sessionId = 0;
	/** The session whose ICE agent is open; 0 when none is. */
	private iceSessionId = 0;
	/** Our offer/answer SDP, once it went out. */
	private localSdp: string | undefined;
	private localSdpSentAtMs = 0;
	private remoteDescriptionApplied = false;
	private remoteWireguardPort = 0;
	private remoteAgentVersion: string | undefined;
	/** Local candidates held until our description is out (the peer ignores them before it). */
	private heldLocalCandidates: Candidate[] = [];
	/** Local candidates already sent, re-sent with a re-sent description. */
	private sentLocalCandidates: Candidate[] = [];
	/** Remote candidates held until the remote description is applied. */
	private heldRemoteCandidates: Candidate[] = [];
	private appliedRemoteCandidates = new Set<string>();
	/** Controlled: candidates of sessions whose offer has not arrived yet (signal may reorder). */
	private readonly earlyRemoteCandidates = new Map<number, Candidate[]>();
	private readonly pastSessionIds: number[] = [];
	/** Controlling: ICE reported success before the answer told us the peer's WireGuard port. */
	private earlyIceConnected: EarlyIceConnected | undefined;

	private path: ConnPath | undefined;
	private connectedSince: number | undefined;
	private attempts = 0;
	/** `attempts` at the last path-up, restored if that path dies young. */
	private attemptsBeforeConnect = 0;
	private lastFailure: string | undefined;
	private lastWarning: string | undefined;

	// Controlled side's OfferRequest pacing.
	private unansweredOfferRequests = 0;
	private lastOfferRequestAtMs: number | undefined;
	private pendingOfferRequestReason = "startup";
	// Controlling side's pacing of sessions started on the peer's request.
	private lastSessionStartAtMs: number | undefined;
	/** When the current attempt (session, or OfferRequest) began, and when the peer last spoke in it. */
	private attemptStartedAtMs = 0;
	private lastHeardFromPeerAtMs: number | undefined;

	/** Armed timers and their deadlines. */
	private readonly timers = new Map<TimerName, number>();

	constructor(options: PeerConnectionOptions) {
		this.role = roleFor(options.localPublicKey, options.remotePublicKey);
		this.config = { ...DEFAULT_CONN_CONFIG, ...definedOnly(options.config ?? {}) };
		this.random = options.random;
		this.wireguardPort = options.wireguardPort;
		this.agentVersion = options.agentVersion;
		this.instance = newSessionId(this.random, []);
	}

	/** Feeds one input; returns the commands to execute, in order. Never throws on odd inputs. */
	handle(input: ConnInput, nowMs: number): ConnCommand[] {
		if (this.state === "closed") return [];
		// Time never runs backwards in here, whatever the caller's clock does.
		if (Number.isFinite(nowMs)) this.nowMs = Math.max(this.nowMs, nowMs);
		this.commands = [];
		this.dispatch(input);
		const commands = this.commands;
		this.commands = [];
		return commands;
	}

	snapshot(): ConnSnapshot {
		return {
			state: this.state,
			role: this.role,
			sessionId: this.sessionId,
			path: this.path === undefined ? undefined : { ...this.path },
			attempts: this.attempts,
			lastFailure: this.lastFailure,
			lastWarning: this.lastWarning,
			connectedSince: this.connectedSince,
			peerOnline: this.peerOnline,
			remoteAgentVersion: this.remoteAgentVersion,
			timers: Object.fromEntries(this.timers),
		};
	}

	private dispatch(input: ConnInput): void {
		switch (input?.type) {
			case "start":
				this.onStart(input.peerOnline === true);
				return;
			case "stop":
				this.onStop(input.reason);
				return;
			case "peer-online":
				this.onPeerOnline(input.online === true);
				return;
			case "signal-received":
				if (this.state !== "idle") this.onSignal(input.message);
				return;
			case "signal-send-failed":
				this.onSendFailed(input.sessionId, input.notFound === true);
				return;
			case "ice-local-description":
				this.onLocalDescription(input.sessionId, input.sdp);
				return;
			case "ice-local-candidate":
				this.onLocalCandidate(input.sessionId, {
					candidate: input.candidate,
					mid: input.mid,
				});
				return;
			case "ice-connected":
				this.onIceConnected(input.sessionId, {
					local: input.local,
					remote: input.remote,
					rttMs: input.rttMs,
				});
				return;
			case "ice-failed":
				if (this.isOpenIceSession(input.sessionId)) this.fail(`ice failed: ${input.reason}`);
				return;
			case "path-lost":
				this.onPathLost(input.reason);
				return;
			case "timer":
				this.onTimer(input.name);
				return;
			default:
				return;
		}
	}

	// ---- lifecycle -------------------------------------------------------

	private onStart(peerOnline: boolean): void {
		if (this.state !== "idle") {
			// A second start carries nothing new but the flag.
			this.onPeerOnline(peerOnline);
			return;
		}
		this.peerOnline = peerOnline;
		this.initiate("startup");
	}

	private onStop(reason: string | undefined): void {
		const why = reason || "peer connection closed";
		// Only tell the peer if it may hold state about us.
		const peerMayCare = this.state !== "idle" && (this.sessionId !== 0 || this.peerOnline);
		this.abortAttempt();
		this.dropPath(why);
		this.cancelAllTimers();
		if (peerMayCare) {
			this.send({ sessionId: this.sessionId, kind: { $case: "closed", value: { reason: why } } });
		}
		this.state = "closed";
	}

	private onPeerOnline(online: boolean): void {
		const wasOnline = this.peerOnline;
		this.peerOnline = online;
		if (this.state === "idle" || online === wasOnline) return;
		if (!online) {
			// A working path and an attempt in flight are left alone (management's
			// view can lag behind the peer); only scheduled retries stop.
			if (this.state === "backoff" || this.state === "waiting-for-peer") {
				this.waitForPeer("peer offline");
			}
			return;
		}
		// Failures while the peer was away say nothing about now: start promptly.
		this.attempts = 0;
		this.unansweredOfferRequests = 0;
		if (this.state === "backoff" || this.state === "waiting-for-peer") {
			this.initiate("peer came online");
		}
	}

	/** Starts a negotiation the way our role does it, unless the peer is offline. */
	private initiate(reason: string): void {
		if (!this.peerOnline) {
			this.waitForPeer("peer offline");
			return;
		}
		if (this.role === "controlling") this.startSession();
		else this.requestOffer(reason);
	}

	/** Nothing to do until the peer comes online or contacts us. */
	private waitForPeer(reason: string): void {
		this.abortAttempt();
		this.cancelAllTimers();
		this.state = "waiting-for-peer";
		this.lastFailure = reason;
	}

	/** The current attempt failed: close it and retry after a backoff. */
	private fail(reason: string): void {
		this.lastFailure = reason;
		this.abortAttempt();
		this.dropPath(reason);
		this.attempts++;
		if (!this.peerOnline) {
			this.cancelAllTimers();
			this.state = "waiting-for-peer";
			return;
		}
		this.cancelAllTimers();
		this.state = "backoff";
		this.setTimer("retry", this.backoff(this.attempts - 1, this.config.backoffInitialMs));
	}

	/** Closes the session's ICE agent and forgets its negotiation progress (not the path). */
	private abortAttempt(): void {
		if (this.iceSessionId !== 0) {
			this.emit({ type: "ice-close", sessionId: this.iceSessionId });
			this.iceSessionId = 0;
		}
		this.cancelTimer("offer-timeout");
		this.cancelTimer("connect-timeout");
		this.heldLocalCandidates = [];
		this.heldRemoteCandidates = [];
		this.earlyIceConnected = undefined;
	}

	private dropPath(reason: string): void {
		if (this.path === undefined) return;
		this.path = undefined;
		this.connectedSince = undefined;
		this.emit({ type: "path-down", reason });
	}

	/** Fresh negotiation progress for a new session. */
	private enterSession(sessionId: number): void {
		if (this.sessionId !== 0) {
			this.pastSessionIds.push(this.sessionId);
			if (this.pastSessionIds.length > PAST_SESSIONS_KEPT) this.pastSessionIds.shift();
		}
		this.sessionId = sessionId;
		this.iceSessionId = sessionId;
		this.localSdp = undefined;
		this.localSdpSentAtMs = 0;
		this.remoteDescriptionApplied = false;
		this.remoteWireguardPort = 0;
		this.heldLocalCandidates = [];
		this.sentLocalCandidates = [];
		this.heldRemoteCandidates = [];
		this.appliedRemoteCandidates = new Set();
		this.earlyIceConnected = undefined;
	}

	// ---- controlling side ------------------------------------------------

	private startSession(): void {
		this.abortAttempt();
		this.dropPath("renegotiating");
		this.cancelAllTimers();
		this.enterSession(newSessionId(this.random, [this.sessionId, ...this.pastSessionIds]));
		this.lastSessionStartAtMs = this.nowMs;
		this.attemptStartedAtMs = this.nowMs;
		this.state = "offering";
		this.emit({ type: "ice-start", sessionId: this.sessionId, role: "controlling" });
		this.setTimer("offer-timeout", this.config.offerTimeoutMs);
	}

	/** The peer asked for a (new) session; `peerSessionId` is the last one it knows. */
	private onOfferRequest(peerSessionId: number, reason: string): void {
		this.heardFromPeer();
		const why = `peer asked for an offer (${reason || "no reason given"})`;
		if (this.state === "offering" && peerSessionId !== this.sessionId) {
			// It has not seen our offer: it crossed the request, or got lost.
			this.resendLocalDescription();
			return;
		}
		// Even when we think we are connected: the peer may have restarted or lost the path.
		const sinceLastStart =
			this.lastSessionStartAtMs === undefined ? Infinity : this.nowMs - this.lastSessionStartAtMs;
		if (sinceLastStart >= this.config.minSessionIntervalMs) {
			this.dropPath(why);
			this.startSession();
			return;
		}
		// Too soon after the last session: a chatty peer must not make us spin.
		this.lastFailure = why;
		this.abortAttempt();
		this.dropPath(why);
		this.cancelAllTimers();
		this.state = "backoff";
		this.setTimer("retry", this.config.minSessionIntervalMs - sinceLastStart);
	}

	private onAnswer(sessionId: number, answer: ConnectionAnswer): void {
		// Late answers of superseded sessions, and duplicates, change nothing.
		if (sessionId !== this.sessionId || !this.isOpenIceSession(sessionId)) return;
		if (this.state !== "offering" || this.localSdp === undefined) return;
		if (!isValidDescription(answer)) {
			this.lastWarning = "ignored an answer without SDP or WireGuard port";
			return;
		}
		this.heardFromPeer();
		this.remoteWireguardPort = answer.wireguardPort;
		this.remoteAgentVersion = answer.agentVersion;
		this.cancelTimer("offer-timeout");
		this.applyRemoteDescription(answer.sdp, "answer");
		this.state = "connecting";
		const early = this.earlyIceConnected;
		if (early !== undefined) {
			this.pathUp(early);
			return;
		}
		this.setTimer("connect-timeout", this.config.connectTimeoutMs);
	}

	// ---- controlled side -------------------------------------------------

	/** Asks the controlling side for an offer, at most once per offerRequestMinIntervalMs. */
	private requestOffer(reason: string, rateLimitTimerFired = false): void {
		if (!this.peerOnline) {
			this.waitForPeer("peer offline");
			return;
		}
		this.abortAttempt();
		this.dropPath(reason);
		this.cancelTimer("retry");
		this.state = "waiting-for-peer";
		this.pendingOfferRequestReason = reason;
		const earliest =
			this.lastOfferRequestAtMs === undefined
				? this.nowMs
				: this.lastOfferRequestAtMs + this.config.offerRequestMinIntervalMs;
		// The timer we armed for `earliest` firing is the permission itself (clocks may disagree by a ms).
		if (this.nowMs >= earliest || rateLimitTimerFired) {
			this.lastOfferRequestAtMs = this.nowMs;
			this.attemptStartedAtMs = this.nowMs;
			this.unansweredOfferRequests++;
			// Our session id tells the controlling side which session we gave up on.
			this.send({ sessionId: this.sessionId, kind: { $case: "offerRequest", value: { reason } } });
			this.setTimer(
				"offer-request",
				this.backoff(this.unansweredOfferRequests - 1, this.config.offerRequestRetryInitialMs),
			);
			return;
		}
		const armedAt = this.timers.get("offer-request");
		if (armedAt === undefined || armedAt > earliest) {
			this.setTimer("offer-request", earliest - this.nowMs);
		}
	}

	private onOffer(sessionId: number, offer: ConnectionOffer): void {
		if (!isSessionId(sessionId) || !isValidDescription(offer)) {
			this.lastWarning = "ignored an invalid offer (no session, SDP or WireGuard port)";
			return;
		}
		if (sessionId === this.sessionId) {
			// A duplicate, or a re-send because our answer may have been lost.
			if (this.state === "connecting" && this.isOpenIceSession(sessionId)) {
				this.resendLocalDescription();
			}
			return;
		}
		// A late offer of a session we already left; a restarted peer picks fresh ids.
		if (this.pastSessionIds.includes(sessionId)) return;
		this.heardFromPeer();
		this.abortAttempt();
		this.dropPath("peer started a new session");
		this.cancelAllTimers();
		this.enterSession(sessionId);
		this.unansweredOfferRequests = 0;
		this.attemptStartedAtMs = this.nowMs;
		this.remoteWireguardPort = offer.wireguardPort;
		this.remoteAgentVersion = offer.agentVersion;
		this.state = "answering";
		this.emit({ type: "ice-start", sessionId, role: "controlled" });
		this.heldRemoteCandidates = this.earlyRemoteCandidates.get(sessionId) ?? [];
		this.earlyRemoteCandidates.clear();
		this.applyRemoteDescription(offer.sdp, "offer");
		this.setTimer("connect-timeout", this.config.connectTimeoutMs);
	}

	// ---- both sides ------------------------------------------------------

	private onSignal(message: PeerMessage | undefined): void {
		const kind = message?.kind;
		if (message === undefined || kind === undefined || kind === null) return;
		// Only messages that open or answer a session tell which instance is there: a
		// `closed` (or a candidate) may be the old instance's last word, delivered late.
		if (kind.$case === "offer" || kind.$case === "answer" || kind.$case === "offerRequest")
			this.notePeerInstance(message.senderInstance);
		const sessionId = message.sessionId;
		switch (kind.$case) {
			case "offer":
				if (this.role === "controlling") {
					this.lastWarning =
						"ignored an offer from the peer: we are the controlling side (larger key), it should only answer";
					return;
				}
				this.onOffer(sessionId, kind.value);
				return;
			case "answer":
				if (this.role === "controlled") {
					this.lastWarning = "ignored an answer from the peer: we are the controlled side";
					return;
				}
				this.onAnswer(sessionId, kind.value);
				return;
			case "candidate":
				this.onRemoteCandidate(sessionId, {
					candidate: String(kind.value?.candidate ?? ""),
					mid: String(kind.value?.mid ?? ""),
				});
				return;
			case "offerRequest":
				if (this.role === "controlled") {
					this.lastWarning = "ignored an OfferRequest from the peer: we are the controlled side";
					return;
				}
				this.onOfferRequest(sessionId, String(kind.value?.reason ?? ""));
				return;
			case "closed":
				this.onPeerClosed(sessionId, String(kind.value?.reason ?? ""));
				return;
			default:
				return;
		}
	}

	private onRemoteCandidate(sessionId: number, candidate: Candidate): void {
		if (!isSessionId(sessionId)) return;
		if (sessionId === this.sessionId) {
			if (!this.isOpenIceSession(sessionId)) return;
			this.heardFromPeer();
			if (this.remoteDescriptionApplied) this.applyRemoteCandidate(candidate);
			else pushBounded(this.heldRemoteCandidates, candidate, this.config.maxBufferedCandidates);
			return;
		}
		// Only the controlled side can meet a session before its offer; the
		// controlling side picks sessions, so anything else is stale there.
		if (this.role === "controlled" && !this.pastSessionIds.includes(sessionId)) {
			let held = this.earlyRemoteCandidates.get(sessionId);
			if (held === undefined) {
				held = [];
				this.earlyRemoteCandidates.set(sessionId, held);
				for (const oldest of this.earlyRemoteCandidates.keys()) {
					if (this.earlyRemoteCandidates.size <= EARLY_SESSIONS_KEPT) break;
					this.earlyRemoteCandidates.delete(oldest);
				}
			}
			pushBounded(held, candidate, this.config.maxBufferedCandidates);
		}
	}

	private onPeerClosed(sessionId: number, reason: string): void {
		// A close of a session we already left (e.g. from the peer's previous run) changes nothing.
		if (sessionId !== this.sessionId) return;
		const why = `peer closed the session${reason ? ` (${reason})` : ""}`;
		this.dropPath(why);
		// Stay quiet until the peer is back: management flags it online, or it contacts us.
		this.peerOnline = false;
		this.waitForPeer(why);
	}

	private onSendFailed(sessionId: number, notFound: boolean): void {
		if (sessionId !== this.sessionId) return;
		const negotiating =
			this.state === "offering" ||
			this.state === "answering" ||
			this.state === "connecting" ||
			// The controlled side's OfferRequest did not get through.
			(this.state === "waiting-for-peer" && this.role === "controlled" && this.peerOnline);
		if (!negotiating) return;
		// The peer spoke to us since this attempt began, so it is on signal now: the
		// failure is of an older send (before it connected). The timeouts still guard us.
		if (
			this.lastHeardFromPeerAtMs !== undefined &&
			this.lastHeardFromPeerAtMs > this.attemptStartedAtMs
		) {
			return;
		}
		// Don't resend at once: the peer is not reachable through signal right now.
		this.fail(notFound ? "peer not connected to signal" : "signal send failed");
	}

	private onLocalDescription(sessionId: number, sdp: string): void {
		if (!this.isOpenIceSession(sessionId) || this.localSdp !== undefined) return;
		if (typeof sdp !== "string" || sdp === "") return;
		if (this.role === "controlling" && this.state === "offering") {
			this.localSdp = sdp;
			this.sendLocalDescription();
		} else if (this.role === "controlled" && this.state === "answering") {
			this.localSdp = sdp;
			this.sendLocalDescription();
			this.state = "connecting";
		} else {
			return;
		}
		for (const candidate of this.heldLocalCandidates) this.sendLocalCandidate(candidate);
		this.heldLocalCandidates = [];
	}

	private onLocalCandidate(sessionId: number, candidate: Candidate): void {
		if (!this.isOpenIceSession(sessionId)) return;
		if (typeof candidate.candidate !== "string" || typeof candidate.mid !== "string") return;
		if (this.localSdp === undefined) {
			pushBounded(this.heldLocalCandidates, candidate, this.config.maxBufferedCandidates);
		} else {
			this.sendLocalCandidate(candidate);
		}
	}

	private onIceConnected(sessionId: number, connection: EarlyIceConnected): void {
		if (!this.isOpenIceSession(sessionId)) return;
		if (!isEndpoint(connection.local) || !isEndpoint(connection.remote)) {
			this.lastWarning = "ignored ice-connected without valid endpoints";
			return;
		}
		if (!this.remoteDescriptionApplied) {
			// Controlling, answer still in flight: we don't know the peer's WireGuard port yet.
			this.earlyIceConnected = connection;
			return;
		}
		this.pathUp(connection);
	}

	private pathUp(connection: EarlyIceConnected): void {
		const sessionId = this.sessionId;
		this.cancelAllTimers();
		// The ICE agent releases its socket; WireGuard takes over the port.
		this.abortAttempt();
		this.dropPath("replaced");
		this.path = {
			sessionId,
			local: connection.local,
			remote: connection.remote,
			remoteWireguardPort: this.remoteWireguardPort,
			rttMs: connection.rttMs,
		};
		this.connectedSince = this.nowMs;
		this.attemptsBeforeConnect = this.attempts;
		this.attempts = 0;
		this.unansweredOfferRequests = 0;
		this.state = "connected";
		this.emit({
			type: "path-up",
			sessionId,
			local: connection.local,
			remote: connection.remote,
			remoteWireguardPort: this.remoteWireguardPort,
			sendHandshakeFirst: this.role === "controlling",
		});
	}

	private onPathLost(reason: string): void {
		if (this.state !== "connected" || this.connectedSince === undefined) return;
		const why = `path lost: ${reason}`;
		const livedMs = this.nowMs - this.connectedSince;
		if (livedMs < this.config.stableConnectionMs) {
			// ICE works but WireGuard doesn't: back off instead of renegotiating in a loop.
			this.attempts = this.attemptsBeforeConnect;
			this.fail(why);
			return;
		}
		this.lastFailure = why;
		this.dropPath(why);
		this.initiate("path lost");
	}

	private onTimer(name: TimerName): void {
		// Only timers we armed (and have not cancelled or replaced) count.
		if (!this.timers.has(name)) return;
		this.timers.delete(name);
		const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;
		switch (name) {
			case "offer-timeout":
				if (this.state !== "offering") return;
				this.fail(
					this.localSdp === undefined
						? `no local ICE description within ${seconds(this.config.offerTimeoutMs)}`
						: `no answer within ${seconds(this.config.offerTimeoutMs)}`,
				);
				return;
			case "connect-timeout":
				if (this.state !== "answering" && this.state !== "connecting") return;
				this.fail(`ICE did not finish within ${seconds(this.config.connectTimeoutMs)}`);
				return;
			case "retry":
				if (this.state !== "backoff") return;
				this.initiate(`retry after: ${this.lastFailure ?? "failure"}`);
				return;
			case "offer-request":
				if (this.state !== "waiting-for-peer" || this.role !== "controlled") return;
				this.requestOffer(this.pendingOfferRequestReason, true);
				return;
			default:
				return;
		}
	}

	// ---- helpers ---------------------------------------------------------

	/**
	 * A message from an instance of the peer we have not heard before, after
	 * one we had: the peer's WireGuard peer for us is new, so our session with
	 * it (keys from the old one) is stale. Messages of older instances (late,
	 * or replayed by signal) and of agents that send none (0) change nothing.
	 * The first instance we hear of needs no reset: our WireGuard peer for it
	 * was made with this PeerConnection and has only talked to that instance.
	 */
	private notePeerInstance(instance: unknown): void {
		if (!isSessionId(instance) || instance === this.peerInstance) return;
		if (this.pastPeerInstances.includes(instance)) return;
		const previous = this.peerInstance;
		if (previous !== 0) {
			this.pastPeerInstances.push(previous);
			if (this.pastPeerInstances.length > PAST_PEER_INSTANCES_KEPT) this.pastPeerInstances.shift();
		}
		this.peerInstance = instance;
		if (previous !== 0) this.emit({ type: "wireguard-session-stale", peerInstance: instance });
	}

	/** A valid message of the peer's: it is up and on signal, whatever management says. */
	private heardFromPeer(): void {
		this.peerOnline = true;
		this.lastHeardFromPeerAtMs = this.nowMs;
	}

	private isOpenIceSession(sessionId: number): boolean {
		return (
			isSessionId(sessionId) && sessionId === this.iceSessionId && sessionId === this.sessionId
		);
	}

	private applyRemoteDescription(sdp: string, kind: "offer" | "answer"): void {
		this.emit({ type: "ice-remote-description", sessionId: this.sessionId, sdp, kind });
		this.remoteDescriptionApplied = true;
		const held = this.heldRemoteCandidates;
		this.heldRemoteCandidates = [];
		for (const candidate of held) this.applyRemoteCandidate(candidate);
	}

	private applyRemoteCandidate(candidate: Candidate): void {
		// Signal may duplicate, and we re-send descriptions with their candidates.
		const key = `${candidate.mid}\n${candidate.candidate}`;
		if (this.appliedRemoteCandidates.has(key)) return;
		if (this.appliedRemoteCandidates.size >= this.config.maxBufferedCandidates) return;
		this.appliedRemoteCandidates.add(key);
		this.emit({ type: "ice-remote-candidate", sessionId: this.sessionId, ...candidate });
	}

	private sendLocalDescription(): void {
		const sdp = this.localSdp;
		if (sdp === undefined) return;
		this.localSdpSentAtMs = this.nowMs;
		const description = {
			sdp,
			wireguardPort: this.wireguardPort,
			agentVersion: this.agentVersion,
		};
		this.send({
			sessionId: this.sessionId,
			kind:
				this.role === "controlling"
					? { $case: "offer", value: description }
					: { $case: "answer", value: description },
		});
	}

	/** Re-sends our offer/answer and its candidates, at most once per descriptionResendMinIntervalMs. */
	private resendLocalDescription(): void {
		if (this.localSdp === undefined) return;
		if (this.nowMs - this.localSdpSentAtMs < this.config.descriptionResendMinIntervalMs) return;
		this.sendLocalDescription();
		for (const candidate of this.sentLocalCandidates) {
			this.send({
				sessionId: this.sessionId,
				kind: { $case: "candidate", value: { ...candidate } },
			});
		}
	}

	private sendLocalCandidate(candidate: Candidate): void {
		pushBounded(this.sentLocalCandidates, candidate, this.config.maxBufferedCandidates);
		this.send({ sessionId: this.sessionId, kind: { $case: "candidate", value: { ...candidate } } });
	}

	private send(message: Omit<PeerMessage, "senderInstance">): void {
		this.emit({ type: "send-signal", message: { ...message, senderInstance: this.instance } });
	}

	private backoff(attempt: number, initialMs: number): number {
		return backoffDelayMs(
			attempt,
			initialMs,
			Math.max(initialMs, this.config.backoffMaxMs),
			this.config.backoffJitter,
			this.random,
		);
	}

	private setTimer(name: TimerName, delayMs: number): void {
		// Rounded up: a timer must never fire before the moment it stands for.
		const delay = Number.isFinite(delayMs) ? Math.max(0, Math.ceil(delayMs)) : 0;
		this.timers.set(name, this.nowMs + delay);
		this.emit({ type: "set-timer", name, delayMs: delay });
	}

	private cancelTimer(name: TimerName): void {
		if (!this.timers.delete(name)) return;
		this.emit({ type: "cancel-timer", name });
	}

	private cancelAllTimers(): void {
		for (const name of [...this.timers.keys()]) this.cancelTimer(name);
	}

	private emit(command: ConnCommand): void {
		this.commands.push(command);
	}
}

function isValidDescription(description: ConnectionOffer | ConnectionAnswer | undefined): boolean {
	return (
		description !== undefined &&
		description !== null &&
		typeof description.sdp === "string" &&
		description.sdp !== "" &&
		Number.isInteger(description.wireguardPort) &&
		description.wireguardPort > 0 &&
		description.wireguardPort <= 65_535
	);
}

function isEndpoint(endpoint: PeerEndpoint | undefined): boolean {
	return (
		endpoint !== undefined &&
		endpoint !== null &&
		typeof endpoint.address === "string" &&
		Number.isInteger(endpoint.port)
	);
}

function pushBounded<T>(list: T[], item: T, max: number): void {
	if (list.length < max) list.push(item);
}

function definedOnly(partial: Partial<ConnConfig>): Partial<ConnConfig> {
	const defined: Partial<ConnConfig> = {};
	for (const [name, value] of Object.entries(partial) as [keyof ConnConfig, number][]) {
		if (typeof value === "number" && Number.isFinite(value) && value >= 0) defined[name] = value;
	}
	return defined;
}
