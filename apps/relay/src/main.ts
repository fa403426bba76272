#!/usr/bin/env node
// starling-relay: the relay as a process. Configuration comes from the
// environment (see README.md); SIGTERM or SIGINT closes it gracefully.
import { createLogger } from "@starling/log";
import { ConfigError, loadConfig, type RelayConfig } from "./config.js";
import { type RelayServer, startRelayServer } from "./server.js";

function readConfig(): RelayConfig {
	try {
		return loadConfig(process.env);
	} catch (err) {
		if (err instanceof ConfigError) {
			process.stderr.write(`starling-relay: ${err.message}\n`);
			process.exit(1);
		}
		throw err;
	}
}

const config = readConfig();
const logger = createLogger("relay", { level: config.logLevel });

let server: RelayServer;
try {
	server = await startRelayServer({
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
