#!/usr/bin/env node
// starling-signal: the signal server as a process. Configuration comes from
// the environment (see README.md); SIGTERM or SIGINT closes it gracefully.
import { createLogger } from "@starling/log";
import { ConfigError, loadConfig, type SignalConfig } from "./config.js";
import { type SignalServer, startSignalServer } from "./server.js";

function readConfig(): SignalConfig {
	try {
		return loadConfig(process.env);
	} catch (err) {
		if (err instanceof ConfigError) {
			process.stderr.write(`starling-signal: ${err.message}\n`);
			process.exit(1);
		}
		throw err;
	}
}

const config = readConfig();
const logger = createLogger("signal", { level: config.logLevel });

let server: SignalServer;
try {
	server = await startSignalServer({
		host: config.host,
		port: config.port,
		heartbeatIntervalMs: config.heartbeatIntervalMs,
		logger,
	});
} catch (err) {
	logger.fatal({ err: err instanceof Error ? err.message : String(err) }, "cannot start");
	process.exit(1);
}

let stopping = false;
function stop(signal: NodeJS.Signals): void {
	if (stopping) {
		logger.warn({ signal }, "second signal during shutdown; exiting now");
		process.exit(1);
	}
	stopping = true;
	logger.info({ signal }, "shutting down");
	server.close().then(
		() => process.exit(0),
		(err: unknown) => {
			logger.error({ err: err instanceof Error ? err.message : String(err) }, "shutdown failed");
			process.exit(1);
		},
	);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
