import { randomBytes } from "node:crypto";
import {
	type handleBidiStreamingCall,
	Server,
	ServerCredentials,
	type ServerDuplexStream,
	type ServiceDefinition,
	status,
} from "@grpc/grpc-js";
import { type Bus, InProcessBus } from "@starling/bus";
import { createLogger, type Logger } from "@starling/log";
import { type SignalServerFrame, SignalServiceService } from "@starling/proto";
import {
	exposeMetrics,
	type HealthChecks,
	type ListenAddress,
	type OpsServer,
	startOpsServer,
} from "@starling/service-runtime";
import { SignalHub, type SignalServerStats } from "./hub.js";
import {
	DEFAULT_HANDSHAKE_TIMEOUT_MS,
	DEFAULT_HEARTBEAT_INTERVAL_MS,
	DEFAULT_MAX_QUEUED_DELIVERY_BYTES,
	DEFAULT_MAX_QUEUED_DELIVERY_FRAMES,
	MAX_RECEIVE_MESSAGE_BYTES,
} from "./limits.js";
import { createSignalMetrics } from "./metrics.js";

export type { SendRefusal, SignalServerStats } from "./hub.js";
export { MAX_BODY_BYTES, MAX_RECEIVE_MESSAGE_BYTES } from "./limits.js";

export interface SignalServerOptions {
	/** Address to bind; default 127.0.0.1. IPv6 literals without brackets. */
	host?: string;
	/** Port to bind; 0 picks a free one (see the returned port). Default 10000. */
	port?: number;
	/** How often each ready stream is pinged; 3 silent intervals end it. Default 15 s. */
	heartbeatIntervalMs?: number;
	logger?: Logger;
	/** Time from opening a stream to answering the challenge. Default 10 s. */
	handshakeTimeoutMs?: number;
	/** Per-recipient bound on unflushed deliveries before sends get RESOURCE_EXHAUSTED. */
	maxQueuedDeliveryBytes?: number;
	maxQueuedDeliveryFrames?: number;
	/** How long close() waits for clients to go before cutting connections. Default 5 s. */
	shutdownGraceMs?: number;
	/** PEM certificate chain and key: serve gRPC over TLS (ALPN h2) instead of plaintext. */
	tls?: { cert: Buffer; key: Buffer };
	/** Where to serve /healthz, /readyz and /metrics over plain HTTP; none when unset. */
	metricsListen?: ListenAddress;
	/**
	 * The bus to the other signal instances (a NatsBus). Without it the
	 * server is the only instance (an in-process bus it owns). A bus given
	 * here stays open after close(): its owner closes it.
	 */
	bus?: Bus;
	/** This instance's id on the bus; random when unset. */
	instanceId?: string;
	/** How long a send for a peer on another instance waits for that instance. Default 2 s. */
	forwardTimeoutMs?: number;
}

export interface SignalServer {
	/** The bound port (the ephemeral one when 0 was asked for). */
	readonly port: number;
	/** This instance's id on the bus (in logs as `instance`). */
	readonly instanceId: string;
	/** The port of the health and metrics listener, when there is one. */
	readonly metricsPort: number | undefined;
	/** Ends every stream with UNAVAILABLE and stops listening. Safe to call twice. */
	close(): Promise<void>;
	stats(): SignalServerStats;
	/** The Prometheus text served at /metrics. */
	metrics(): Promise<string>;
	/** Liveness (/healthz) and readiness (/readyz) checks. */
	live: HealthChecks;
	ready: HealthChecks;
}

/**
 * The service as registered with grpc-js: identical to the generated one
 * except that requests arrive as raw bytes. Decoding them ourselves lets a
 * malformed frame end the stream with INVALID_ARGUMENT and a reason, where
 * grpc-js would answer a bare INTERNAL.
 */
const rawRequestService = {
	connectStream: {
		...SignalServiceService.connectStream,
		requestDeserialize: (bytes: Buffer): Buffer => bytes,
	},
} satisfies ServiceDefinition;

/** Starts the signal gRPC server and resolves once it is listening. */
export async function startSignalServer(options: SignalServerOptions = {}): Promise<SignalServer> {
	const host = options.host ?? "127.0.0.1";
	const requestedPort = options.port ?? 10000;
	const heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
	const handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
	const shutdownGraceMs = options.shutdownGraceMs ?? 5_000;
	const logger = options.logger ?? createLogger("signal");
	requirePositive("heartbeatIntervalMs", heartbeatIntervalMs);
	requirePositive("handshakeTimeoutMs", handshakeTimeoutMs);
	if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
		throw new RangeError(`port must be an integer from 0 to 65535, got ${requestedPort}`);
	}

	const ownsBus = options.bus === undefined;
	const bus = options.bus ?? new InProcessBus();
	const instanceId = options.instanceId ?? randomBytes(6).toString("hex");

	// The metrics read the hub's counters, and the hub reports routing times to them.
	const metrics = createSignalMetrics(() => hub.stats());
	const hub = new SignalHub({
		logger,
		bus,
		instanceId,
		forwardTimeoutMs: options.forwardTimeoutMs,
		observeRoutingSeconds: metrics.observeRoutingSeconds,
		heartbeatIntervalMs,
		handshakeTimeoutMs,
		outboundLimits: {
			maxQueuedBytes: options.maxQueuedDeliveryBytes ?? DEFAULT_MAX_QUEUED_DELIVERY_BYTES,
			maxQueuedFrames: options.maxQueuedDeliveryFrames ?? DEFAULT_MAX_QUEUED_DELIVERY_FRAMES,
		},
	});

	/** Stops answering for our peers; closes the bus only when it is ours. */
	async function leaveBus(): Promise<void> {
		hub.closeAll(status.UNAVAILABLE, "signal server is shutting down");
		if (ownsBus) await bus.close();
	}

	const server = new Server({
		"grpc.max_receive_message_length": MAX_RECEIVE_MESSAGE_BYTES,
		// HTTP/2 pings find connections whose peer vanished without a FIN, which
		// the application heartbeat alone cannot tear down when nothing is read.
		"grpc.keepalive_time_ms": 30_000,
		"grpc.keepalive_timeout_ms": 10_000,
	});
	const connectStream: handleBidiStreamingCall<Buffer, SignalServerFrame> = (
		call: ServerDuplexStream<Buffer, SignalServerFrame>,
	) => {
		try {
			hub.accept(call);
		} catch (err) {
			logger.error(
				{ err: err instanceof Error ? err.message : String(err) },
				"cannot accept stream",
			);
			call.emit(
				"error",
				Object.assign(new Error("internal error"), {
					code: status.INTERNAL,
					details: "internal error",
				}),
			);
		}
	};
	server.addService(rawRequestService, { connectStream });

	const address = host.includes(":") ? `[${host}]:${requestedPort}` : `${host}:${requestedPort}`;
	const port = await new Promise<number>((resolve, reject) => {
		const credentials = options.tls
			? ServerCredentials.createSsl(
					null,
					[{ cert_chain: options.tls.cert, private_key: options.tls.key }],
					false,
				)
			: ServerCredentials.createInsecure();
		server.bindAsync(address, credentials, (err, bound) => {
			if (err) reject(new Error(`cannot listen on ${address}: ${err.message}`));
			else resolve(bound);
		});
	}).catch(async (err: unknown) => {
		server.forceShutdown();
		await leaveBus();
		throw err;
	});

	const heartbeatTimer = setInterval(() => {
		try {
			hub.heartbeat();
		} catch (err) {
			logger.error({ err: err instanceof Error ? err.message : String(err) }, "heartbeat failed");
		}
	}, heartbeatIntervalMs);
	// The listening socket keeps the process alive; the timer should not on its own.
	heartbeatTimer.unref();

	let closing: Promise<void> | undefined;
	const live: HealthChecks = () => ({ process: { ok: true } });
	const ready: HealthChecks = () => ({
		grpc: closing ? { ok: false, reason: "shutting down" } : { ok: true },
	});
	let ops: OpsServer | undefined;
	if (options.metricsListen) {
		ops = await startOpsServer({
			...options.metricsListen,
			live,
			ready,
			metrics: () => exposeMetrics(metrics.registry),
			logger,
		}).catch(async (err: unknown) => {
			clearInterval(heartbeatTimer);
			server.forceShutdown();
			await leaveBus();
			throw err;
		});
	}

	logger.info(
		{
			host,
			port,
			tls: options.tls !== undefined,
			heartbeatIntervalMs,
			metricsPort: ops?.port,
			instance: instanceId,
			bus: bus.kind,
		},
		"signal server listening",
	);

	const close = (): Promise<void> => {
		closing ??= new Promise<void>((resolve) => {
			clearInterval(heartbeatTimer);
			hub.closeAll(status.UNAVAILABLE, "signal server is shutting down");
			const cutOff = setTimeout(() => {
				logger.warn(
					{ graceMs: shutdownGraceMs },
					"clients did not leave in time; closing connections",
				);
				server.forceShutdown();
				resolve();
			}, shutdownGraceMs);
			server.tryShutdown(() => {
				clearTimeout(cutOff);
				resolve();
			});
		}).then(async () => {
			// Served until the end, so that /readyz says "shutting down" while clients leave.
			await ops?.close();
			await leaveBus();
			logger.info({ port }, "signal server stopped");
		});
		return closing;
	};

	return {
		port,
		instanceId,
		metricsPort: ops?.port,
		close,
		stats: () => hub.stats(),
		metrics: () => metrics.registry.metrics(),
		live,
		ready,
	};
}

function requirePositive(name: string, value: number): void {
	if (!Number.isFinite(value) || value <= 0) {
		throw new RangeError(`${name} must be a positive number of milliseconds, got ${value}`);
	}
}
