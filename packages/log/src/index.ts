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

/** JSON logs, one event per line, secrets redacted. Level from STARLING_LOG_LEVEL. */
export function createLogger(service: string, options: LoggerOptions = {}): Logger {
	return pino({
		level: process.env.STARLING_LOG_LEVEL ?? "info",
		base: { service },
		redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
		timestamp: pino.stdTimeFunctions.isoTime,
		...options,
	});
}
