import { type Logger, type LoggerOptions, pino } from "pino";

export type { Logger } from "pino";

/** Field names whose values never reach a log line, wherever they appear. */
const REDACTED_PATHS = [
	"setupKey",
	"setup_key",
	"token",
	"plainToken",
	"plain_token",
	"privateKey",
	"private_key",
	"secret",
	"key",
	"*.setupKey",
	"*.setup_key",
	"*.token",
	"*.plainToken",
	"*.plain_token",
	"*.privateKey",
	"*.private_key",
	"*.secret",
	"req.headers.authorization",
	"headers.authorization",
];

/**
 * JSON logs on stdout, one event per line, secrets redacted. Level from STARLING_LOG_LEVEL.
 *
 * Written synchronously: pino's default asynchronous stdout let the flush at exit overtake
 * a write still in flight, so a service's last lines came out of order (or were lost on a
 * crash). Our services log a few lines per event, not per packet, so the cost is small.
 */
export function createLogger(service: string, options: LoggerOptions = {}): Logger {
	return pino(
		{
			level: process.env.STARLING_LOG_LEVEL ?? "info",
			base: { service },
			redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
			timestamp: pino.stdTimeFunctions.isoTime,
			...options,
		},
		pino.destination({ dest: 1, sync: true }),
	);
}
