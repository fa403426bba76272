import { chmodSync, writeFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { type Bus, InProcessBus, NatsBus } from "@starling/bus";
import { generateKeyPair, type KeyPair } from "@starling/crypto";
import type { Logger } from "@starling/log";
import { exposeMetrics, type OpsServer, startOpsServer } from "@starling/service-runtime";
import type { FastifyInstance } from "fastify";
import { createApiListener } from "./api-listener.js";
import { type BootstrapResult, bootstrapIfEmpty, getOrCreateServerKey } from "./app/accounts.js";
import { ManagementCluster } from "./bus/cluster.js";
import { type ManagementConfig, relayConfigFor } from "./config.js";
import type { ServiceEndpoints } from "./core/network-map.js";
import { createManagementService, managementServiceDefinition } from "./grpc/management-grpc.js";
import { managementLive, managementReady } from "./metrics/health.js";
import { createManagementMetrics, type ManagementMetrics } from "./metrics/management-metrics.js";
import { instrumentStore } from "./metrics/store-timing.js";
import { buildRestApi } from "./rest/index.js";
import { GroupCommit } from "./store/group-commit.js";
import { openStore } from "./store/open-store.js";
import type { Store } from "./store/store.js";
import { OutputBudget } from "./sync/output-budget.js";
import { SyncHub } from "./sync/sync-hub.js";

export interface RunningManagement {
	/** The bound port (useful when configured with port 0). */
	port: number;
	/** The port of /metrics, /healthz and /readyz, unless STARLING_MANAGEMENT_METRICS_LISTEN is off. */
	metricsPort: number | undefined;
	metrics: ManagementMetrics;
	store: Store;
	hub: SyncHub;
	/** This instance among others: sessions, heartbeat, the bus. */
	cluster: ManagementCluster;
	bus: Bus;
	rest: FastifyInstance;
	serverKey: KeyPair;
	/** Set on the first start of an empty store: the first admin token, shown once. */
	bootstrap: BootstrapResult | undefined;
	close(): Promise<void>;
}

/** Max bytes of a gRPC message; management bodies are small, maps grow with peers. */
const MAX_GRPC_MESSAGE = 16 * 1024 * 1024;
/** Unsent Sync bytes allowed in total and per stream before updates are held back. */
const SYNC_OUTPUT_TOTAL_BYTES = 16 * 1024 * 1024;
const SYNC_OUTPUT_STREAM_BYTES = 64 * 1024;

/**
 * Starts management: gRPC for agents and the REST API on one TCP port,
 * plaintext or TLS (api-listener.ts says how a connection finds its server).
 */
export async function startManagement(
	config: ManagementConfig,
	logger: Logger,
): Promise<RunningManagement> {
	// The hub is made below; the metrics read its statistics only when scraped.
	const metrics = createManagementMetrics(() => hub.stats());
	const store = instrumentStore(
		await openStore(config, logger.child({ component: "store" })),
		metrics.observeStoreSeconds,
	);
	const bus = await openBus(config, logger).catch(async (err: unknown) => {
		await store.close();
		throw err;
	});
	const stopOnError = async (err: unknown): Promise<never> => {
		await bus.close();
		await store.close();
		throw err;
	};
	const serverKey = await getOrCreateServerKey(store, generateKeyPair, new Date()).catch(
		stopOnError,
	);
	// Logins of known peers and Sync sessions come in storms (every agent
	// reconnecting after an instance died): committed in batches.
	const peerWrites = new GroupCommit(store);
	const cluster = await ManagementCluster.register({
		bus,
		store,
		sessionWrites: peerWrites,
		instanceId: config.instanceId,
		logger: logger.child({ component: "cluster" }),
		checkIntervalMs: config.syncCheckMs,
		heartbeatIntervalMs: config.instanceHeartbeatMs,
		expireAfterMs: config.instanceExpireMs,
	}).catch(stopOnError);
	const bootstrap = await bootstrapIfEmpty(
		store,
		{
			networkPool: config.networkRange,
			accountPrefixLength: config.accountPrefixLength,
			dnsDomain: config.dnsDomain,
		},
		new Date(),
	);
	if (bootstrap && config.adminTokenFile) {
		writeFileSync(config.adminTokenFile, `${bootstrap.plainToken}\n`, { mode: 0o600 });
		chmodSync(config.adminTokenFile, 0o600);
	}

	const endpoints: ServiceEndpoints = {
		signal: { url: config.signalUrl },
		stunServers: config.stunUrls.map((uri) => ({ uri })),
		relayFor:
			config.relayUrls.length > 0 ? (peer) => relayConfigFor(config, peer.wgPublicKey) : undefined,
	};
	const hub = new SyncHub({
		store,
		sessions: cluster.sessions,
		logger: logger.child({ component: "sync" }),
		endpoints,
		flushDelayMs: config.syncFlushMs,
		heartbeatIntervalMs: config.syncHeartbeatMs,
		observeMapSeconds: metrics.observeMapSeconds,
	});
	cluster.start(hub);
	const sink = cluster.sinkFor(hub);

	const grpcServer = new grpc.Server({
		"grpc.max_receive_message_length": 64 * 1024,
		"grpc.max_send_message_length": MAX_GRPC_MESSAGE,
		"grpc.keepalive_time_ms": 30_000,
		"grpc.keepalive_timeout_ms": 10_000,
		"grpc.keepalive_permit_without_calls": 1,
		"grpc.http2.min_ping_interval_without_data_ms": 5_000,
	});
	grpcServer.addService(
		managementServiceDefinition,
		createManagementService({
			store,
			loginWrites: peerWrites,
			hub,
			sink,
			serverKey,
			endpoints,
			outputBudget: new OutputBudget(SYNC_OUTPUT_TOTAL_BYTES, SYNC_OUTPUT_STREAM_BYTES),
			logger: logger.child({ component: "grpc" }),
			metrics,
		}),
	);
	const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());

	let closing: Promise<void> | undefined;
	const health = {
		live: managementLive,
		ready: managementReady(store, () => closing !== undefined),
	};
	const rest = await buildRestApi({
		store,
		sink,
		logger: logger.child({ component: "rest" }),
		networkPool: config.networkRange,
		observeRequest: metrics.restRequest,
		health,
	});
	await rest.ready();

	const api = createApiListener(config.tls, injector, rest);
	const listener = api.server;
	await new Promise<void>((resolve, reject) => {
		listener.once("error", reject);
		listener.listen(config.listen.port, config.listen.host, () => {
			listener.off("error", reject);
			resolve();
		});
	});
	const address = listener.address();
	const port = typeof address === "object" && address ? address.port : config.listen.port;
	let ops: OpsServer | undefined;
	if (config.metricsListen) {
		ops = await startOpsServer({
			...config.metricsListen,
			...health,
			metrics: () => exposeMetrics(metrics.registry),
			logger,
		}).catch(async (err: unknown) => {
			hub.close();
			await cluster.close();
			await bus.close();
			listener.close();
			grpcServer.forceShutdown();
			await rest.close();
			await store.close();
			throw err;
		});
	}

	return {
		port,
		metricsPort: ops?.port,
		metrics,
		store,
		hub,
		cluster,
		bus,
		rest,
		serverKey,
		bootstrap,
		close() {
			closing ??= (async () => {
				hub.close();
				await cluster.close();
				await bus.close();
				listener.close();
				await new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve()));
				await rest.close();
				api.destroyConnections();
				await ops?.close();
				await store.close();
			})();
			return closing;
		},
	};
}

/** NATS when STARLING_NATS_URL is set (failing the start, naming the variable, when unreachable); else in-process. */
async function openBus(config: ManagementConfig, logger: Logger): Promise<Bus> {
	const onHandlerError = (err: unknown, subject: string) =>
		logger.error({ err, subject }, "a bus message handler failed");
	if (config.natsUrls.length === 0) return new InProcessBus({ onHandlerError });
	try {
		return await NatsBus.connect({
			servers: config.natsUrls,
			name: `management-${config.instanceId}`,
			onHandlerError,
		});
	} catch (err) {
		throw new Error(`STARLING_NATS_URL: ${(err as Error).message}`);
	}
}
