/** Counters of the relay and their Prometheus text exposition (format 0.0.4). */

export const DROP_REASONS = ["peer_offline", "receiver_slow", "relay_full", "loopback"] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** Why a connection was refused before it was admitted. */
export const REFUSAL_REASONS = [
	"capacity",
	"token_invalid",
	"token_expired",
	"protocol_error",
	"hello_timeout",
	"shutting_down",
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** Why an admitted connection ended. */
export const DISCONNECT_REASONS = [
	"client",
	"token_expired",
	"replaced",
	"protocol_error",
	"ping_timeout",
	"shutdown",
] as const;
export type DisconnectReason = (typeof DISCONNECT_REASONS)[number];

export interface RelayStats {
	/** Open connections that have not sent a valid HELLO yet. */
	pendingConnections: number;
	/** Admitted connections (one per peer id). */
	readyConnections: number;
	connectionsAccepted: number;
	bytesReceived: number;
	bytesSent: number;
	framesReceived: number;
	framesForwarded: number;
	bytesForwarded: number;
	/** Sampled total of bytes queued towards receivers. */
	bufferedBytes: number;
	dropped: Record<DropReason, number>;
	refused: Record<RefusalReason, number>;
	disconnects: Record<DisconnectReason, number>;
	tokenRefreshes: { accepted: number; refused: number };
}

export function emptyStats(): RelayStats {
	return {
		pendingConnections: 0,
		readyConnections: 0,
		connectionsAccepted: 0,
		bytesReceived: 0,
		bytesSent: 0,
		framesReceived: 0,
		framesForwarded: 0,
		bytesForwarded: 0,
		bufferedBytes: 0,
		dropped: zeroes(DROP_REASONS),
		refused: zeroes(REFUSAL_REASONS),
		disconnects: zeroes(DISCONNECT_REASONS),
		tokenRefreshes: { accepted: 0, refused: 0 },
	};
}

function zeroes<K extends string>(keys: readonly K[]): Record<K, number> {
	return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

/** Renders the stats and this process's resource use as Prometheus text. */
export function renderMetrics(stats: RelayStats, startedAtMs: number): string {
	const lines: string[] = [];
	const metric = (
		name: string,
		type: "counter" | "gauge",
		help: string,
		samples: [labels: string, value: number][],
	): void => {
		lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
		for (const [labels, value] of samples) lines.push(`${name}${labels} ${formatValue(value)}`);
	};
	const byReason = (counts: Record<string, number>): [string, number][] =>
		Object.entries(counts).map(([reason, value]) => [`{reason="${reason}"}`, value]);

	metric("starling_relay_connections", "gauge", "Open WebSocket connections by state.", [
		['{state="pending"}', stats.pendingConnections],
		['{state="ready"}', stats.readyConnections],
	]);
	metric(
		"starling_relay_connections_accepted_total",
		"counter",
		"WebSocket connections accepted (before admission).",
		[["", stats.connectionsAccepted]],
	);
	metric(
		"starling_relay_connections_refused_total",
		"counter",
		"Connections closed before admission, by reason.",
		byReason(stats.refused),
	);
	metric(
		"starling_relay_disconnects_total",
		"counter",
		"Admitted connections that ended, by reason.",
		byReason(stats.disconnects),
	);
	metric(
		"starling_relay_bytes_received_total",
		"counter",
		"WebSocket message bytes received from clients.",
		[["", stats.bytesReceived]],
	);
	metric(
		"starling_relay_bytes_sent_total",
		"counter",
		"WebSocket message bytes queued to clients.",
		[["", stats.bytesSent]],
	);
	metric("starling_relay_frames_received_total", "counter", "Frames received from clients.", [
		["", stats.framesReceived],
	]);
	metric(
		"starling_relay_frames_forwarded_total",
		"counter",
		"DATA frames forwarded to their destination peer.",
		[["", stats.framesForwarded]],
	);
	metric(
		"starling_relay_bytes_forwarded_total",
		"counter",
		"Bytes of forwarded DATA frames (header included).",
		[["", stats.bytesForwarded]],
	);
	metric(
		"starling_relay_frames_dropped_total",
		"counter",
		"DATA frames dropped instead of forwarded, by reason.",
		byReason(stats.dropped),
	);
	metric(
		"starling_relay_token_refreshes_total",
		"counter",
		"TOKEN frames on open connections, by result.",
		[
			['{result="accepted"}', stats.tokenRefreshes.accepted],
			['{result="refused"}', stats.tokenRefreshes.refused],
		],
	);
	metric(
		"starling_relay_buffered_bytes",
		"gauge",
		"Bytes queued towards receivers (sampled every 100 ms).",
		[["", stats.bufferedBytes]],
	);

	const cpu = process.cpuUsage();
	const memory = process.memoryUsage();
	metric("process_cpu_user_seconds_total", "counter", "User CPU time spent in seconds.", [
		["", cpu.user / 1e6],
	]);
	metric("process_cpu_system_seconds_total", "counter", "System CPU time spent in seconds.", [
		["", cpu.system / 1e6],
	]);
	metric("process_cpu_seconds_total", "counter", "Total user and system CPU time in seconds.", [
		["", (cpu.user + cpu.system) / 1e6],
	]);
	metric("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", [
		["", memory.rss],
	]);
	metric("nodejs_heap_used_bytes", "gauge", "V8 heap in use, in bytes.", [["", memory.heapUsed]]);
	metric(
		"nodejs_external_memory_bytes",
		"gauge",
		"Memory outside the V8 heap (Buffers included).",
		[["", memory.external]],
	);
	metric(
		"process_start_time_seconds",
		"gauge",
		"Start time of the process since the Unix epoch in seconds.",
		[["", Math.floor(startedAtMs / 1000)]],
	);
	return `${lines.join("\n")}\n`;
}

function formatValue(value: number): string {
	return Number.isFinite(value) ? String(value) : "NaN";
}
