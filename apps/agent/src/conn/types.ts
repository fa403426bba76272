import type { PeerMessage } from "@starling/proto";

/** One end of an ICE-found path, as the ICE agent reports it. */
export type PeerEndpoint = {
	address: string;
	port: number;
	type: "host" | "srflx" | "prflx" | "relay";
};

export type ConnRole = "controlling" | "controlled";

/**
 * The timers a PeerConnection asks the engine to run. Setting a timer that is
 * already armed replaces it; the engine feeds `{ type: "timer", name }` back
 * when it fires.
 */
export type TimerName =
	/** Controlling: our ICE description or the peer's answer did not come in time. */
	| "offer-timeout"
	/** Descriptions exchanged but the ICE agent reported neither success nor failure. */
	| "connect-timeout"
	/** End of a backoff after a failed attempt. */
	| "retry"
	/** Controlled: send (or re-send) an OfferRequest. */
	| "offer-request";

export type ConnInput =
	/** The peer appeared in the network map. */
	| { type: "start"; peerOnline: boolean }
	/** The peer left the map, or shutdown: close everything. Terminal. */
	| { type: "stop"; reason?: string }
	/** Management's connected flag for the peer changed. */
	| { type: "peer-online"; online: boolean }
	/** A message from the peer, already decoded and authenticated by the engine. */
	| { type: "signal-received"; message: PeerMessage }
	/** A message we sent could not be delivered; notFound: signal says the peer is not connected. */
	| { type: "signal-send-failed"; sessionId: number; notFound: boolean }
	| { type: "ice-local-description"; sessionId: number; sdp: string }
	/** A trickled local candidate; an empty `candidate` marks the end of gathering. */
	| { type: "ice-local-candidate"; sessionId: number; candidate: string; mid: string }
	| {
			type: "ice-connected";
			sessionId: number;
			local: PeerEndpoint;
			remote: PeerEndpoint;
			rttMs?: number;
	  }
	| { type: "ice-failed"; sessionId: number; reason: string }
	/** The engine saw WireGuard handshakes go stale on the current path. */
	| { type: "path-lost"; reason: string }
	| { type: "timer"; name: TimerName };

export type ConnCommand =
	| { type: "send-signal"; message: PeerMessage }
	/** Create an ICE agent for the session and start gathering. */
	| { type: "ice-start"; sessionId: number; role: ConnRole }
	| { type: "ice-remote-description"; sessionId: number; sdp: string; kind: "offer" | "answer" }
	| { type: "ice-remote-candidate"; sessionId: number; candidate: string; mid: string }
	/** Close the session's ICE agent and release its socket. */
	| { type: "ice-close"; sessionId: number }
	/**
	 * Route WireGuard traffic for the peer over this path: install the port
	 * rewrite and the WireGuard endpoint. Always preceded, in the same batch,
	 * by the ice-close of the same session: the engine binds the ICE agent's
	 * port once the agent has released it.
	 */
	| {
			type: "path-up";
			sessionId: number;
			local: PeerEndpoint;
			remote: PeerEndpoint;
			remoteWireguardPort: number;
			sendHandshakeFirst: boolean;
	  }
	/** Remove what path-up installed. */
	| { type: "path-down"; reason: string }
	/**
	 * The peer's WireGuard peer for us is new (it restarted, or dropped and
	 * re-added us), so our WireGuard session with it is stale: replace our
	 * WireGuard peer for it, which drops the old keys and the handshake rate
	 * limit, so that our next packet starts a fresh handshake.
	 */
	| { type: "wireguard-session-stale"; peerInstance: number }
	| { type: "set-timer"; name: TimerName; delayMs: number }
	| { type: "cancel-timer"; name: TimerName };

export type ConnStateName =
	/** Created, not started. */
	| "idle"
	/** Nothing in flight: the peer is offline, closed our session, or (controlled) we asked for an offer. */
	| "waiting-for-peer"
	/** Controlling: ICE agent started, offer out (or about to be), waiting for the answer. */
	| "offering"
	/** Controlled: offer applied, waiting for our ICE description to send the answer. */
	| "answering"
	/** Both descriptions exchanged; ICE is checking. */
	| "connecting"
	| "connected"
	/** An attempt failed; waiting for the retry timer. */
	| "backoff"
	/** Stopped; every further input is ignored. */
	| "closed";

export interface ConnPath {
	sessionId: number;
	local: PeerEndpoint;
	remote: PeerEndpoint;
	remoteWireguardPort: number;
	rttMs: number | undefined;
}

export interface ConnSnapshot {
	state: ConnStateName;
	role: ConnRole;
	/** The current (or last) negotiation session; 0 before the first one. */
	sessionId: number;
	/** Set while connected. */
	path: ConnPath | undefined;
	/** Consecutive failed attempts since the last success; drives the backoff. */
	attempts: number;
	/** Why the last attempt failed or the path went away, e.g. "ice failed: timeout". */
	lastFailure: string | undefined;
	/** The last protocol oddity we ignored, e.g. an offer sent to the controlling side. */
	lastWarning: string | undefined;
	/** nowMs of the path-up; set while connected. */
	connectedSince: number | undefined;
	/** Management's flag, overridden to true when the peer talks to us. */
	peerOnline: boolean;
	remoteAgentVersion: string | undefined;
	/** Timers this connection believes are armed, with their deadlines. */
	timers: Partial<Record<TimerName, number>>;
}

export interface ConnConfig {
	/** Controlling: how long to wait for the answer before retrying with a new session. */
	offerTimeoutMs: number;
	/** How long ICE may take once the offer is applied (controlled) or answered (controlling). */
	connectTimeoutMs: number;
	/** First retry delay after a failure; doubles per consecutive failure. */
	backoffInitialMs: number;
	backoffMaxMs: number;
	/** Fraction of each delay taken off at random (0..1), so peers don't retry in lockstep. */
	backoffJitter: number;
	/** Controlled: never two OfferRequests closer together than this. */
	offerRequestMinIntervalMs: number;
	/** Controlled: first re-send of an unanswered OfferRequest; doubles up to backoffMaxMs. */
	offerRequestRetryInitialMs: number;
	/** Controlling: never start sessions on the peer's request faster than this. */
	minSessionIntervalMs: number;
	/** Minimum gap between re-sends of the same offer or answer. */
	descriptionResendMinIntervalMs: number;
	/** A path lost sooner than this after path-up counts as a failed attempt (backoff). */
	stableConnectionMs: number;
	/** Bound on candidates buffered per session (remote before description, local before ours). */
	maxBufferedCandidates: number;
}

export const DEFAULT_CONN_CONFIG: Readonly<ConnConfig> = {
	offerTimeoutMs: 10_000,
	connectTimeoutMs: 30_000,
	backoffInitialMs: 1_000,
	backoffMaxMs: 60_000,
	backoffJitter: 0.2,
	offerRequestMinIntervalMs: 1_000,
	offerRequestRetryInitialMs: 2_000,
	minSessionIntervalMs: 1_000,
	descriptionResendMinIntervalMs: 1_000,
	stableConnectionMs: 30_000,
	maxBufferedCandidates: 64,
};
