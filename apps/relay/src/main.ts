#!/usr/bin/env node
// starling-relay: the relay as a process. Configuration comes from the
// environment and STARLING_CONFIG_FILE (see README.md); SIGTERM or SIGINT
// closes it gracefully.
import { createLogger } from "@starling/log";
import { runService } from "@starling/service-runtime";
import { loadConfig } from "./config.js";
import { startRelayServer } from "./server.js";

await runService({
	name: "starling-relay",
	loadConfig,
	createLogger: (config) => createLogger("relay", { level: config.logLevel }),
	start: (config, logger) =>
		startRelayServer({
			host: config.host,
			port: config.port,
			secret: config.secret,
			tls: config.tls,
			maxConnections: config.maxConnections,
			maxBufferedBytes: config.maxBufferedBytes,
			maxTotalBufferedBytes: config.maxTotalBufferedBytes,
			helloTimeoutMs: config.helloTimeoutMs,
			pingIntervalMs: config.pingIntervalMs,
			logger,
		}),
});
