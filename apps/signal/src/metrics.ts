import {
	counterFromStats,
	createMetricsRegistry,
	gaugeFromStats,
	labelledCounterFromStats,
} from "@starling/service-runtime";
import { Histogram, type Registry } from "prom-client";
import type { SignalServerStats } from "./hub.js";

/** Seconds from a send frame's arrival to its delivery being flushed: mostly well under 1 ms. */
const ROUTING_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2];

export interface SignalMetrics {
	readonly registry: Registry;
	observeRoutingSeconds(seconds: number): void;
}

/**
 * The signal server's Prometheus metrics (`starling_signal_*`) in a registry
 * of its own. Counts come from the hub's statistics at scrape time; only the
 * routing latency is observed as it happens.
 */
export function createSignalMetrics(stats: () => SignalServerStats): SignalMetrics {
	const registry = createMetricsRegistry();
	gaugeFromStats({
		registry,
		name: "starling_signal_connected_peers",
		help: "Streams that completed the challenge and are registered for their key.",
		read: () => stats().connectedPeers,
	});
	gaugeFromStats({
		registry,
		name: "starling_signal_open_streams",
		help: "Open ConnectStream calls, authenticated or not.",
		read: () => stats().openStreams,
	});
	counterFromStats({
		registry,
		name: "starling_signal_messages_routed_total",
		help: "Messages delivered to the recipient's stream.",
		read: () => stats().messagesDelivered,
	});
	counterFromStats({
		registry,
		name: "starling_signal_messages_forwarded_total",
		help: "Sends from peers here accepted by another signal instance for a peer connected there.",
		read: () => stats().messagesForwarded,
	});
	gaugeFromStats({
		registry,
		name: "starling_signal_bus_connected",
		help: "1 while the bus to the other signal instances is connected (always 1 with one instance).",
		read: () => (stats().bus.connected ? 1 : 0),
	});
	labelledCounterFromStats({
		registry,
		name: "starling_signal_messages_refused_total",
		help: "Sends answered with an error instead of delivered, by reason.",
		label: "reason",
		read: () => stats().sendsRefused,
	});
	counterFromStats({
		registry,
		name: "starling_signal_auth_failures_total",
		help: "Streams refused during the challenge handshake.",
		read: () => stats().authFailures,
	});
	counterFromStats({
		registry,
		name: "starling_signal_heartbeat_timeouts_total",
		help: "Ready streams ended because nothing was heard for three heartbeats.",
		read: () => stats().heartbeatTimeouts,
	});
	const routing = new Histogram({
		name: "starling_signal_routing_seconds",
		help: "Time from a send frame's arrival to the delivery being flushed to the recipient's stream.",
		buckets: ROUTING_BUCKETS,
		registers: [registry],
	});
	return { registry, observeRoutingSeconds: (seconds) => routing.observe(seconds) };
}
