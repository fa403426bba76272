#!/usr/bin/env node
// starling-signal: the signal server as a process. Configuration comes from
// the environment and STARLING_CONFIG_FILE (see README.md); SIGTERM or SIGINT
// closes it gracefully.
import { createLogger } from "@starling/log";
import { runService } from "@starling/service-runtime";
import { loadConfig } from "./config.js";
import { startSignalServer } from "./server.js";

await runService({
	name: "starling-signal",
	loadConfig,
	createLogger: (config) => createLogger("signal", { level: config.logLevel }),
	start: (config, logger) =>
		startSignalServer({
			host: config.host,
			port: config.port,
			tls: config.tls,
			metricsListen: config.metricsListen,
			heartbeatIntervalMs: config.heartbeatIntervalMs,
			logger,
		}),
});
