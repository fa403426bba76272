import type { ConnInput, ConnRole, PeerEndpoint } from "../conn/peer-connection.js";
import type { IceAgent } from "../ice/ice-agent.js";

/** Overlay addresses are never offered as ICE candidates. */
const OVERLAY_PREFIX = "100.64.0.0/10";
/** A connected ICE session stays open this long after the path is handed to WireGuard. */
export const ICE_LINGER_MS = 3_000;

/** What the sessions need of the ICE agent (ice/ice-agent.ts). */
export type IcePort = Pick<
	IceAgent,
	"on" | "startSession" | "setRemoteDescription" | "addRemoteCandidate" | "closeSession"
>;

/** ICE attempts for one peer since it joined the map (`starling status --json`). */
export interface IceStats {
	/** Sessions started. */
	attempts: number;
	/** Sessions that gave a direct path. */
	successes: number;
	/** Sessions closed without giving one. */
	failures: number;
	/** Why the last failed one failed, as the connection state machine put it ("" if none). */
	lastFailure: string;
}

interface PeerIce {
	stats: IceStats;
	/** What ICE reported for sessions that connected, until the state machine acts on it. */
	connected: Map<number, { rttMs: number | undefined; socketPort: number }>;
	/** Sessions closed in the current command batch, and those among them that gave a path. */
	closedInBatch: number[];
	succeededInBatch: Set<number>;
}

export interface IceSessionsOptions {
	ice: IcePort;
	/** Feeds an ICE event, translated, to the peer's state machine (if the peer is still there). */
	deliver(peerKey: string, input: ConnInput): void;
	logError(what: string, err: unknown): void;
}

/**
 * The peers' ICE sessions on the one ICE agent: names each session
 * `<peer key>#<session id>`, routes the agent's events back to the peer's
 * state machine, lets connected sessions linger, and counts attempts and
 * their results.
 */
export class IceSessions {
	private readonly owners = new Map<string, { peerKey: string; sessionId: number }>();
	private readonly peers = new Map<string, PeerIce>();

	constructor(private readonly options: IceSessionsOptions) {
		const ice = options.ice;
		ice.on("local-description", (e) =>
			this.route(e.sessionId, (sessionId) => ({
				type: "ice-local-description",
				sessionId,
				sdp: e.sdp,
			})),
		);
		ice.on("local-candidate", (e) =>
			this.route(e.sessionId, (sessionId) => ({
				type: "ice-local-candidate",
				sessionId,
				candidate: e.candidate,
				mid: e.mid,
			})),
		);
		ice.on("connected", (e) => {
			const owner = this.owners.get(e.sessionId);
			if (!owner) return;
			// The selected local candidate may be server-reflexive (the NAT's
			// address); WireGuard's traffic must leave from the ICE socket's own port.
			this.peers
				.get(owner.peerKey)
				?.connected.set(owner.sessionId, { rttMs: e.rttMs, socketPort: e.localPort });
			const local = toPeerEndpoint(e.local);
			const remote = toPeerEndpoint(e.remote);
			this.route(e.sessionId, (sessionId) => ({
				type: "ice-connected",
				sessionId,
				local,
				remote,
				rttMs: e.rttMs,
			}));
		});
		ice.on("failed", (e) =>
			this.route(e.sessionId, (sessionId) => ({
				type: "ice-failed",
				sessionId,
				reason: e.reason,
			})),
		);
	}

	start(peerKey: string, sessionId: number, role: ConnRole, stunServers: string[]): void {
		const iceId = `${peerKey}#${sessionId}`;
		this.owners.set(iceId, { peerKey, sessionId });
		this.peer(peerKey).stats.attempts++;
		this.options.ice.startSession({
			sessionId: iceId,
			role,
			stunServers,
			// IPv4 only until the port rewrite has IPv6 rules.
			excludePrefixes: [OVERLAY_PREFIX, "::/0"],
		});
	}

	setRemoteDescription(
		peerKey: string,
		sessionId: number,
		sdp: string,
		kind: "offer" | "answer",
	): void {
		this.options.ice.setRemoteDescription(`${peerKey}#${sessionId}`, sdp, kind);
	}

	addRemoteCandidate(peerKey: string, sessionId: number, candidate: string, mid: string): void {
		this.options.ice.addRemoteCandidate(`${peerKey}#${sessionId}`, candidate, mid);
	}

	/**
	 * Closes a session. One that connected lingers (`linger`): ICE on this side
	 * may report connected before the other side has finished its checks, and
	 * its STUN packets still reach our ICE socket (the port rewrite leaves STUN
	 * alone), so closing at once could fail the peer's attempt.
	 */
	close(peerKey: string, sessionId: number, linger: boolean): void {
		const iceId = `${peerKey}#${sessionId}`;
		this.peers.get(peerKey)?.closedInBatch.push(sessionId);
		const close = () =>
			void this.options.ice
				.closeSession(iceId)
				.catch((err) => this.options.logError("ice close", err))
				.finally(() => this.owners.delete(iceId));
		if (linger) setTimeout(close, ICE_LINGER_MS).unref();
		else close();
	}

	/** Whether ICE reported this session connected (and the path was not taken yet). */
	hasConnected(peerKey: string, sessionId: number): boolean {
		return this.peers.get(peerKey)?.connected.has(sessionId) ?? false;
	}

	/** The session's path goes to WireGuard: what ICE reported for it, and forget the others. */
	takeConnected(
		peerKey: string,
		sessionId: number,
	): { rttMs: number | undefined; socketPort: number } | undefined {
		const peer = this.peers.get(peerKey);
		if (!peer) return undefined;
		const info = peer.connected.get(sessionId);
		peer.connected.clear();
		peer.succeededInBatch.add(sessionId);
		peer.stats.successes++;
		return info;
	}

	/**
	 * After a batch of commands: sessions it closed without a path-up are
	 * failed attempts (a path-up always follows its session's close in the
	 * same batch). `reason` reads the state machine's last failure, only when
	 * the batch closed a session (most batches close none).
	 */
	endBatch(peerKey: string, reason: () => string | undefined): void {
		const peer = this.peers.get(peerKey);
		if (!peer || peer.closedInBatch.length === 0) return;
		for (const sessionId of peer.closedInBatch) {
			if (peer.succeededInBatch.has(sessionId)) continue;
			peer.stats.failures++;
			peer.stats.lastFailure = reason() ?? "closed before it connected";
		}
		peer.closedInBatch = [];
		peer.succeededInBatch.clear();
	}

	stats(peerKey: string): IceStats {
		const stats = this.peers.get(peerKey)?.stats;
		return stats ? { ...stats } : { attempts: 0, successes: 0, failures: 0, lastFailure: "" };
	}

	/** The peer left the map (its sessions were closed): drop its records. */
	forget(peerKey: string): void {
		this.peers.delete(peerKey);
	}

	private peer(peerKey: string): PeerIce {
		let peer = this.peers.get(peerKey);
		if (!peer) {
			peer = {
				stats: { attempts: 0, successes: 0, failures: 0, lastFailure: "" },
				connected: new Map(),
				closedInBatch: [],
				succeededInBatch: new Set(),
			};
			this.peers.set(peerKey, peer);
		}
		return peer;
	}

	private route(iceId: string, make: (sessionId: number) => ConnInput): void {
		const owner = this.owners.get(iceId);
		if (!owner) return;
		this.options.deliver(owner.peerKey, make(owner.sessionId));
	}
}

const CANDIDATE_TYPES = new Set(["host", "srflx", "prflx", "relay"]);

export function toPeerEndpoint(c: { address: string; port: number; type: string }): PeerEndpoint {
	const type = CANDIDATE_TYPES.has(c.type) ? (c.type as PeerEndpoint["type"]) : "host";
	return { address: c.address, port: c.port, type };
}
