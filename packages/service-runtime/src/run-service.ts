import { LogFormatError, type Logger } from "@starling/log";
import { ConfigError } from "./config-file.js";

export interface Closable {
	close(): Promise<void>;
}

export interface ServiceOptions<Config, Running extends Closable> {
	/** The executable's name, the prefix of a configuration error line. */
	name: string;
	/** Validates the environment; throws ConfigError with a one-line message. */
	loadConfig(env: NodeJS.ProcessEnv): Config;
	createLogger(config: Config): Logger;
	start(config: Config, logger: Logger): Promise<Running>;
	/** Longest a graceful stop may take before the process exits anyway (default 8 s, under docker's 10 s). */
	stopTimeoutMs?: number;
}

/**
 * Runs a service as a process: a bad configuration is one line on stderr and
 * exit code 1; a failed start is logged and exits 1; SIGTERM or SIGINT closes
 * it gracefully (exit 0), a second signal or a stop that hangs exits 1.
 */
export async function runService<Config, Running extends Closable>(
	options: ServiceOptions<Config, Running>,
): Promise<Running> {
	let config: Config;
	try {
		config = options.loadConfig(process.env);
	} catch (err) {
		if (err instanceof ConfigError) exitWithLine(`${options.name}: ${err.message}`);
		throw err;
	}
	let logger: Logger;
	try {
		logger = options.createLogger(config);
	} catch (err) {
		// STARLING_LOG_FORMAT is read by @starling/log itself: a bad value is a configuration error too.
		if (err instanceof LogFormatError) exitWithLine(`${options.name}: ${err.message}`);
		throw err;
	}

	// Handlers go in before the start, so a signal during it stops the service
	// once it is up rather than killing it half-started.
	let started: Promise<Running> | undefined;
	let stopping = false;
	const stop = (signal: NodeJS.Signals): void => {
		if (stopping) {
			logger.warn({ signal }, "second signal during shutdown; exiting now");
			process.exit(1);
		}
		stopping = true;
		logger.info({ signal }, "shutting down");
		const timeoutMs = options.stopTimeoutMs ?? 8_000;
		const timer = setTimeout(() => {
			logger.error({ timeoutMs }, "shutdown took too long; exiting");
			process.exit(1);
		}, timeoutMs);
		timer.unref();
		(started ?? Promise.reject(new Error("not started")))
			.then((running) => running.close())
			.then(
				() => {
					logger.info("stopped");
					process.exit(0);
				},
				(err: unknown) => {
					logger.error({ err: errorText(err) }, "shutdown failed");
					process.exit(1);
				},
			);
	};
	process.on("SIGTERM", stop);
	process.on("SIGINT", stop);

	started = options.start(config, logger);
	try {
		return await started;
	} catch (err) {
		logger.fatal({ err: errorText(err) }, "cannot start");
		process.exit(1);
	}
}

function exitWithLine(line: string): never {
	process.stderr.write(`${line.replace(/\s*\n\s*/g, " ")}\n`);
	process.exit(1);
}

function errorText(err: unknown): string {
	return err instanceof Error ? err.message : String(err);
}
