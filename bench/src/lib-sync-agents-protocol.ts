// Messages between a scale-out benchmark and its load generator process
// (lib-sync-agents.ts). Times are ms since the epoch, from performance.timeOrigin.

export interface AgentSpec {
	/** Which account the agent joins (the benchmark's own label, e.g. "a17"). */
	account: string;
	setupKey: string;
	/** Management URLs: the first is where it connects; on a lost stream it moves to the next. */
	urls: string[];
}

export interface Watch {
	account: string;
	/** "present": the peer appears; "name": the peer shows `name`. */
	kind: "present" | "name";
	/** The peer, by WireGuard key (a join) or by id (a REST change; the API does not show keys). */
	peerKey?: string;
	peerId?: string;
	name?: string;
	/** When the change was made. */
	t0: number;
}

export type ToGenerator =
	| { type: "start"; agents: AgentSpec[] }
	| { type: "settled"; account: string; expectPeers: number }
	| { type: "watch"; watch: Watch; timeoutMs: number }
	| { type: "resync"; since: number; expectLost: number; timeoutMs: number }
	| { type: "stop" };

export type FromGenerator =
	| { type: "alive" }
	| { type: "progress"; message: string }
	| { type: "error"; message: string }
	| { type: "ready"; keys: string[]; seconds: number }
	| { type: "settled"; ok: boolean }
	| { type: "arrivals"; expected: number; arrivalsMs: number[] }
	| {
			type: "resynced";
			lost: number;
			resynced: number;
			resyncMs: number[];
			/** Why reconnect attempts failed: message → count. */
			errors: Record<string, number>;
			/** Medians: kill to stream end seen, to login, to Sync open, to the first full map. */
			breakdownMedianMs: { noticed: number; loggedIn: number; streamOpen: number; fullMap: number };
	  };
