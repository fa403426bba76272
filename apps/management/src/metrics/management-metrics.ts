import { counterFromStats, createMetricsRegistry, gaugeFromStats } from "@starling/service-runtime";
import { Counter, Histogram, type Registry } from "prom-client";
import type { SyncHubStats } from "../sync/sync-hub.js";
import { LOGIN_RESULTS, type LoginResult } from "./login-result.js";
import type { ObserveStoreSeconds } from "./store-timing.js";

/** What a Sync stream carries: a full map, a delta, or a heartbeat. */
export type SyncMessageKind = "full" | "delta" | "heartbeat";

/** One answered REST request; `route` is the route's pattern (e.g. /api/peers/:peerId). */
export interface RestRequestSample {
	method: string;
	route: string;
	status: number;
}

export interface ManagementMetrics {
	readonly registry: Registry;
	/** A Sync message sealed and queued for an agent, with its sealed size. */
	syncMessageSent(kind: SyncMessageKind, bytes: number): void;
	/** Time to compute one full map, or one delta pass over an account's agents. */
	observeMapSeconds(kind: "full" | "delta", seconds: number): void;
	restRequest(sample: RestRequestSample): void;
	login(result: LoginResult): void;
	observeStoreSeconds: ObserveStoreSeconds;
}

// Full maps of large accounts take milliseconds to a second; deltas far less.
const MAP_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
// SQLite operations are sub-millisecond; a slow disk or a contended write shows in the top buckets.
const STORE_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1];

/**
 * Management's Prometheus metrics (`starling_management_*`), in a registry
 * of its own. The sync hub's gauges are read from its statistics at scrape
 * time; everything else is recorded as it happens through the methods.
 */
export function createManagementMetrics(syncStats: () => SyncHubStats): ManagementMetrics {
	const registry = createMetricsRegistry();
	gaugeFromStats({
		registry,
		name: "starling_management_connected_agents",
		help: "Agents with an open Sync stream.",
		read: () => syncStats().streams,
	});
	gaugeFromStats({
		registry,
		name: "starling_management_sync_accounts",
		help: "Accounts whose network is held in memory because an agent of theirs is connected.",
		read: () => syncStats().accounts,
	});
	counterFromStats({
		registry,
		name: "starling_management_sync_updates_total",
		help: "Map updates (deltas, including relay token refreshes) sent to agents.",
		read: () => syncStats().updatesSent,
	});
	counterFromStats({
		registry,
		name: "starling_management_sync_full_maps_total",
		help: "Full network maps sent to agents.",
		read: () => syncStats().fullMapsSent,
	});
	const syncMessages = new Counter({
		name: "starling_management_sync_messages_total",
		help: "Messages written on Sync streams, by kind.",
		labelNames: ["kind"],
		registers: [registry],
	});
	const syncBytes = new Counter({
		name: "starling_management_sync_bytes_total",
		help: "Sealed bytes written on Sync streams, by kind.",
		labelNames: ["kind"],
		registers: [registry],
	});
	const mapSeconds = new Histogram({
		name: "starling_management_network_map_seconds",
		help: "Time to compute a full network map (kind=full) or one delta push to an account's agents (kind=delta).",
		labelNames: ["kind"],
		buckets: MAP_BUCKETS,
		registers: [registry],
	});
	const restRequests = new Counter({
		name: "starling_management_http_requests_total",
		help: "REST requests answered, by method, route pattern and status ('unmatched': no route).",
		labelNames: ["method", "route", "status"],
		registers: [registry],
	});
	const logins = new Counter({
		name: "starling_management_logins_total",
		help: "Agent Login calls, by result.",
		labelNames: ["result"],
		registers: [registry],
	});
	const storeSeconds = new Histogram({
		name: "starling_management_store_transaction_seconds",
		help: "Duration of store transactions, by operation.",
		labelNames: ["operation"],
		buckets: STORE_BUCKETS,
		registers: [registry],
	});
	for (const kind of ["full", "delta", "heartbeat"]) {
		syncMessages.inc({ kind }, 0);
		syncBytes.inc({ kind }, 0);
	}
	for (const result of LOGIN_RESULTS) logins.inc({ result }, 0);

	return {
		registry,
		syncMessageSent(kind, bytes) {
			syncMessages.inc({ kind });
			syncBytes.inc({ kind }, bytes);
		},
		observeMapSeconds: (kind, seconds) => mapSeconds.observe({ kind }, seconds),
		restRequest: ({ method, route, status }) =>
			restRequests.inc({ method, route, status: String(status) }),
		login: (result) => logins.inc({ result }),
		observeStoreSeconds: (operation, seconds) => storeSeconds.observe({ operation }, seconds),
	};
}
