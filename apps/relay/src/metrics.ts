/** Counters of the relay and their Prometheus metrics. */

import {
	counterFromStats,
	createMetricsRegistry,
	gaugeFromStats,
	labelledCounterFromStats,
	labelledGaugeFromStats,
	type MetricsRegistry,
} from "@starling/service-runtime";

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

/**
 * The relay's Prometheus metrics (`starling_relay_*`, and the process's own
 * from prom-client) in a registry of its own. The hot path counts in plain
 * fields of RelayStats; the metrics read them at scrape time.
 */
export function createRelayMetrics(read: () => RelayStats): MetricsRegistry {
	const registry = createMetricsRegistry();
	const counter = (name: string, help: string, value: (s: RelayStats) => number) =>
		counterFromStats({ registry, name, help, read: () => value(read()) });
	const byReason = (name: string, help: string, value: (s: RelayStats) => Record<string, number>) =>
		labelledCounterFromStats({ registry, name, help, label: "reason", read: () => value(read()) });

	labelledGaugeFromStats({
		registry,
		name: "starling_relay_connections",
		help: "Open WebSocket connections by state.",
		label: "state",
		read: () => {
			const s = read();
			return { pending: s.pendingConnections, ready: s.readyConnections };
		},
	});
	counter(
		"starling_relay_connections_accepted_total",
		"WebSocket connections accepted (before admission).",
		(s) => s.connectionsAccepted,
	);
	byReason(
		"starling_relay_connections_refused_total",
		"Connections closed before admission, by reason.",
		(s) => s.refused,
	);
	byReason(
		"starling_relay_disconnects_total",
		"Admitted connections that ended, by reason.",
		(s) => s.disconnects,
	);
	counter(
		"starling_relay_bytes_received_total",
		"WebSocket message bytes received from clients.",
		(s) => s.bytesReceived,
	);
	counter(
		"starling_relay_bytes_sent_total",
		"WebSocket message bytes queued to clients.",
		(s) => s.bytesSent,
	);
	counter(
		"starling_relay_frames_received_total",
		"Frames received from clients.",
		(s) => s.framesReceived,
	);
	counter(
		"starling_relay_frames_forwarded_total",
		"DATA frames forwarded to their destination peer.",
		(s) => s.framesForwarded,
	);
	counter(
		"starling_relay_bytes_forwarded_total",
		"Bytes of forwarded DATA frames (header included).",
		(s) => s.bytesForwarded,
	);
	byReason(
		"starling_relay_frames_dropped_total",
		"DATA frames dropped instead of forwarded, by reason.",
		(s) => s.dropped,
	);
	labelledCounterFromStats({
		registry,
		name: "starling_relay_token_refreshes_total",
		help: "TOKEN frames on open connections, by result.",
		label: "result",
		read: () => read().tokenRefreshes,
	});
	gaugeFromStats({
		registry,
		name: "starling_relay_buffered_bytes",
		help: "Bytes queued towards receivers (sampled every 100 ms).",
		read: () => read().bufferedBytes,
	});
	return registry;
}
