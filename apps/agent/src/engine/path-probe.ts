/**
 * Liveness of a direct path, sans-IO: while traffic flows to a peer, probe
 * the path every `intervalMs` and call it lost when no answer came for
 * `lostAfterMs`. WireGuard's own timers cannot tell fast enough: a receiver
 * with nothing to send answers only with a keepalive 10 s later, and
 * persistent keepalives come every 25 s, so silence means "dead" only after
 * half a minute. Probes are STUN binding requests sent from the ICE port to
 * where the peer's WireGuard packets come from (the adapter's business);
 * the peer's daemon answers them from its own ICE port.
 *
 * Idle paths are not probed (no cost for quiet peers); silence is only
 * counted while we are sending, so a path that went quiet and wakes up is
 * judged afresh. The path monitor tells it about traffic within a fraction
 * of a second of its start (path-health.ts, `trafficWake`).
 */

export interface PathProbeOptions {
	/** Time between probes while the path carries traffic. */
	intervalMs: number;
	/** No answer for this long while active: the path is lost. */
	lostAfterMs: number;
	/** The path counts as active this long after we last saw traffic leave. */
	activeForMs: number;
}

/**
 * Four unanswered probes, 1.2 s of silence while traffic flows: the path
 * monitor notices traffic within a fifth of a second, so traffic into a
 * dead direct path is back on the relay about 2 s after it started. A
 * healthy path answers within its round trip; 1.2 s leaves room for a
 * lost probe and a slow peer (one answer in three lost and answers up to
 * 0.4 s late still never trip it). What it costs: a probe (a 20-byte
 * STUN request, 48 bytes on the wire) and its answer every 300 ms, only
 * while traffic flows to the peer over a direct path and for 15 s after;
 * nothing on an idle path.
 */
export const DEFAULT_PATH_PROBE: PathProbeOptions = {
	intervalMs: 300,
	lostAfterMs: 1_200,
	activeForMs: 15_000,
};

export type PathProbeAction =
	| { type: "send"; transactionId: Uint8Array }
	| { type: "lost"; silentMs: number };

/** Outstanding probes kept for matching answers; older ones are forgotten. */
const MAX_OUTSTANDING = 8;

export class PathProbe {
	private lastHeardAt: number;
	private lastSentAt = Number.NEGATIVE_INFINITY;
	private activeUntil = Number.NEGATIVE_INFINITY;
	private readonly outstanding = new Map<string, number>();
	private reportedLost = false;
	/** Round trip of the last answered probe. */
	rttMs: number | undefined;

	constructor(
		now: number,
		private readonly options: PathProbeOptions = DEFAULT_PATH_PROBE,
		private readonly randomBytes: (length: number) => Uint8Array,
	) {
		this.lastHeardAt = now;
	}

	/**
	 * Probing can start now (the socket is open): silence counts from here,
	 * not from when the path came up.
	 */
	begin(now: number): void {
		this.lastHeardAt = now;
		this.lastSentAt = Number.NEGATIVE_INFINITY;
		this.outstanding.clear();
	}

	/** Traffic left for the peer (WireGuard's transmit counter moved). */
	noteSending(now: number): void {
		this.activeUntil = now + this.options.activeForMs;
	}

	/** Whether traffic was seen recently enough that the path is being judged. */
	isActive(now: number): boolean {
		return !this.reportedLost && now <= this.activeUntil;
	}

	/** How long a running probe has gone without an answer; 0 when idle. */
	silentMs(now: number): number {
		return this.isActive(now) ? Math.max(0, now - this.lastHeardAt) : 0;
	}

	/** What to do now; call several times per `intervalMs`. "lost" is reported once. */
	tick(now: number): PathProbeAction | undefined {
		if (this.reportedLost) return undefined;
		if (now > this.activeUntil) {
			// Idle: nothing to judge. Silence starts counting when traffic does.
			this.lastHeardAt = now;
			this.outstanding.clear();
			return undefined;
		}
		const silentMs = now - this.lastHeardAt;
		if (silentMs >= this.options.lostAfterMs) {
			this.reportedLost = true;
			return { type: "lost", silentMs };
		}
		if (now - this.lastSentAt < this.options.intervalMs) return undefined;
		const transactionId = this.randomBytes(12);
		this.outstanding.set(hex(transactionId), now);
		while (this.outstanding.size > MAX_OUTSTANDING) {
			const oldest = this.outstanding.keys().next().value;
			if (oldest === undefined) break;
			this.outstanding.delete(oldest);
		}
		this.lastSentAt = now;
		return { type: "send", transactionId };
	}

	/** An answer arrived; true when it answers one of our probes. */
	onAnswer(transactionId: Uint8Array, now: number): boolean {
		const key = hex(transactionId);
		const sentAt = this.outstanding.get(key);
		if (sentAt === undefined) return false;
		this.outstanding.delete(key);
		this.lastHeardAt = Math.max(this.lastHeardAt, now);
		this.rttMs = now - sentAt;
		return true;
	}
}

function hex(bytes: Uint8Array): string {
	return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}
