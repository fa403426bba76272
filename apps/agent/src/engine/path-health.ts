/**
 * Health of a peer's path, sans-IO: given what WireGuard's dump says now
 * (and the time, passed in), decide whether a direct path still works and
 * which path a peer is on. No clocks, sockets or timers here: the path
 * monitor (path-monitor.ts) reads the dump and carries the verdicts out;
 * status.ts uses `pathTypeOf`.
 */

/** A direct path that delivers nothing for this long is considered lost (keepalives come every 25 s). */
export const SILENT_PATH_MS = 35_000;
/** A connected path whose last handshake is older than this is considered lost. */
export const STALE_HANDSHAKE_MS = 190_000;

/** What WireGuard's dump says about one peer (the fields health looks at). */
export interface WireGuardPeerCounters {
	/** Where WireGuard sends now, "ip:port"; undefined before any. */
	endpoint?: string | undefined;
	rxBytes: number;
	txBytes: number;
	/** 0 when there was never a handshake. */
	latestHandshakeUnixSeconds: number;
}

/** What the health check remembers about a direct path between two checks. */
export interface DirectPathMemory {
	/** WireGuard's received-bytes counter on the direct path, and when it last moved. */
	rx: { bytes: number; at: number } | undefined;
	/**
	 * WireGuard's transmit counter for this peer when traffic was last looked
	 * for (`noticeTraffic`); the health check only fills it in when unset.
	 */
	lastTxBytes: number | undefined;
}

export interface DirectPathObservation {
	now: number;
	/** This peer in WireGuard's dump; undefined when WireGuard does not know it (yet). */
	wg: WireGuardPeerCounters | undefined;
	/** WireGuard has been given the direct endpoint (see reconciler.ts). */
	endpointApplied: boolean;
	/** The relay bridge's local endpoint for this peer, if bound. */
	relayEndpoint: string | undefined;
	/** When the state machine reported the path up (its `connectedSince`). */
	connectedSince: number | undefined;
}

export interface DirectPathVerdict {
	memory: DirectPathMemory;
	/** WireGuard roamed to the relay bridge while the direct path is up: reconcile puts it back. */
	reapplyDirectEndpoint: boolean;
	/** Set when the path is lost: the reason, for the state machine's `path-lost`. */
	lost: string | undefined;
}

/**
 * One health check of a direct path. Both sides send keepalives every 25 s
 * on a direct path, so a path that delivers nothing for longer does not
 * work (a NAT that changed the mapping ICE found, say); nor does one whose
 * last handshake is older than WireGuard's rekey allows.
 */
export function checkDirectPath(
	memory: DirectPathMemory,
	o: DirectPathObservation,
): DirectPathVerdict {
	const reapplyDirectEndpoint =
		o.endpointApplied && o.wg?.endpoint !== undefined && o.wg.endpoint === o.relayEndpoint;
	// Traffic itself is noticed by `noticeTraffic` (on the overlay interface's
	// counters, within a fraction of a second); this only gives it a start.
	const lastTxBytes = memory.lastTxBytes ?? o.wg?.txBytes;
	const rxBytes = o.wg?.rxBytes ?? 0;
	if (!memory.rx || memory.rx.bytes !== rxBytes) {
		return {
			memory: { rx: { bytes: rxBytes, at: o.now }, lastTxBytes },
			reapplyDirectEndpoint,
			lost: staleHandshake(o),
		};
	}
	if (o.now - memory.rx.at > SILENT_PATH_MS) {
		return {
			memory: { rx: undefined, lastTxBytes },
			reapplyDirectEndpoint,
			lost: `nothing received on the direct path for ${SILENT_PATH_MS / 1000} s`,
		};
	}
	return {
		memory: { rx: memory.rx, lastTxBytes },
		reapplyDirectEndpoint,
		lost: staleHandshake(o),
	};
}

/**
 * The overlay interface's own counters (what the OS sent into and got out
 * of the tunnel). WireGuard's keepalives and handshakes never show here, so
 * a moving transmit counter means real traffic.
 */
export interface InterfaceCounters {
	rxBytes: number;
	txBytes: number;
}

/** What `trafficWake` remembers between two reads of the interface counters. */
export interface TrafficWakeMemory {
	/** The interface's transmit counter when it was last taken into account. */
	txBytes: number | undefined;
	/** When a dump was last read because of traffic. */
	lastDumpAt: number;
}

export const FRESH_TRAFFIC_WAKE: TrafficWakeMemory = {
	txBytes: undefined,
	lastDumpAt: Number.NEGATIVE_INFINITY,
};

/**
 * At most this often is WireGuard's dump read because traffic moved (a
 * `wg show dump` is a process): with steady traffic to a relayed peer and an
 * idle direct one, that is two dumps a second.
 */
export const TRAFFIC_DUMP_MIN_INTERVAL_MS = 500;

/**
 * Does WireGuard's dump need reading now? When traffic left through the
 * overlay interface while some direct path is not watched yet (its probe is
 * idle), to see which peer it went to: a path whose probe already runs needs
 * nothing more. And once when a probe goes unanswered, so that it aims at where
 * WireGuard sends now (WireGuard roams to the peer's new address when the
 * peer's NAT moved; the last dump may be seconds old). A movement not acted
 * on (rate limit) is kept for the next read, so a single packet is not
 * missed.
 */
export function trafficWake(
	memory: TrafficWakeMemory,
	o: {
		now: number;
		/** Undefined when the counters could not be read (no such interface yet). */
		counters: InterfaceCounters | undefined;
		/** Some peer has a direct path whose probe is idle. */
		unwatchedDirectPath: boolean;
		/**
		 * When the silence of a running probe reached PROBE_UNANSWERED_MS (the
		 * latest such moment over all probes); undefined when none is that silent.
		 */
		probeUnansweredSince?: number | undefined;
	},
): { memory: TrafficWakeMemory; readDump: boolean } {
	const tx = o.counters?.txBytes ?? memory.txBytes;
	const moved = tx !== undefined && memory.txBytes !== undefined && tx !== memory.txBytes;
	// Once per silence: a dump read after it began already shows where WireGuard sends.
	const unanswered =
		o.probeUnansweredSince !== undefined && memory.lastDumpAt < o.probeUnansweredSince;
	const wanted = (moved && o.unwatchedDirectPath) || unanswered;
	if (!wanted) return { memory: { ...memory, txBytes: tx }, readDump: false };
	if (o.now - memory.lastDumpAt < TRAFFIC_DUMP_MIN_INTERVAL_MS) {
		// Keep the old count: the movement is still there at the next read.
		return { memory, readDump: false };
	}
	return { memory: { txBytes: tx, lastDumpAt: o.now }, readDump: true };
}

/** A running probe unanswered this long makes the monitor read the dump (where WireGuard sends now). */
export const PROBE_UNANSWERED_MS = 600;

/**
 * Did traffic leave for this peer since we last looked? WireGuard's per-peer
 * transmit counter moved (it counts keepalives too, so this is asked only
 * when the interface counters moved, see `trafficWake`). A counter that went
 * backwards (the peer was re-added) only starts a new count.
 */
export function noticeTraffic(
	memory: DirectPathMemory,
	wg: WireGuardPeerCounters | undefined,
): { memory: DirectPathMemory; sending: boolean } {
	if (wg === undefined) return { memory, sending: false };
	const sending = memory.lastTxBytes !== undefined && wg.txBytes > memory.lastTxBytes;
	return { memory: { ...memory, lastTxBytes: wg.txBytes }, sending };
}

function staleHandshake(o: DirectPathObservation): string | undefined {
	const seen = o.wg?.latestHandshakeUnixSeconds ?? 0;
	const since = seen > 0 ? o.now - seen * 1000 : Number.POSITIVE_INFINITY;
	if (
		since > STALE_HANDSHAKE_MS &&
		o.connectedSince !== undefined &&
		o.now - o.connectedSince > STALE_HANDSHAKE_MS
	)
		return "no WireGuard handshake for over 3 minutes";
	return undefined;
}

export type PathType = "p2p" | "relayed" | "";

export interface PathTypeObservation {
	now: number;
	/** The state machine is connected and a direct path is installed. */
	directUp: boolean;
	/** Management reports the peer online. */
	peerOnline: boolean;
	relayEndpoint: string | undefined;
	wg: WireGuardPeerCounters | undefined;
}

/**
 * Which path carries a peer's traffic. Relayed: no direct path, the peer
 * online, WireGuard's endpoint is the relay bridge, and its handshakes are
 * recent (WireGuard rekeys every 2 minutes under traffic and keepalives).
 * A peer that management reports offline (`starling down`) is not
 * connected, even while its last handshake is still recent.
 */
export function pathTypeOf(o: PathTypeObservation): PathType {
	if (o.directUp) return "p2p";
	const handshakeMs = (o.wg?.latestHandshakeUnixSeconds ?? 0) * 1000;
	const relayed =
		o.peerOnline &&
		o.relayEndpoint !== undefined &&
		o.wg?.endpoint === o.relayEndpoint &&
		handshakeMs > 0 &&
		o.now - handshakeMs < STALE_HANDSHAKE_MS;
	return relayed ? "relayed" : "";
}

/**
 * Where to send a path probe: where WireGuard sends (it roams to where the
 * peer's packets come from) unless that is the relay bridge, else the last
 * direct address WireGuard used, else ICE's remote address. IPv6 is not
 * probed: an endpoint that is not "a.b.c.d:port" falls back to ICE's.
 */
export function probeTarget(o: {
	wgEndpoint: string | undefined;
	relayEndpoint: string | undefined;
	lastDirectEndpoint: string | undefined;
	iceRemote: { address: string; port: number };
}): { address: string; port: number } {
	const direct =
		o.wgEndpoint && o.wgEndpoint !== o.relayEndpoint ? o.wgEndpoint : o.lastDirectEndpoint;
	const target = direct ? parseEndpoint(direct) : undefined;
	return target ?? { address: o.iceRemote.address, port: o.iceRemote.port };
}

/** "198.18.0.2:51820" → address and port; undefined for anything else. */
export function parseEndpoint(text: string): { address: string; port: number } | undefined {
	const match = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text);
	if (!match) return undefined;
	return { address: match[1]!, port: Number(match[2]) };
}
