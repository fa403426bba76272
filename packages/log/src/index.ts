import { type DestinationStream, type Logger, type LoggerOptions, pino } from "pino";
import { prettyFactory } from "pino-pretty";

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

/** The environment variable that forces a log format. */
export const LOG_FORMAT_VARIABLE = "STARLING_LOG_FORMAT";

/** `json`: one JSON object per line. `pretty`: one readable line per event, for a terminal. */
export type LogFormat = "json" | "pretty";

/** A STARLING_LOG_FORMAT value that is neither `json` nor `pretty`; the message is one line. */
export class LogFormatError extends Error {
	override name = "LogFormatError";
}

/**
 * The format to write: the one STARLING_LOG_FORMAT names, or else readable
 * lines when the output is a terminal and JSON when it is a file, a pipe or a
 * log collector (journald, docker), which parse the JSON. Empty counts as unset.
 */
export function chooseLogFormat(setting: string | undefined, outputIsTerminal: boolean): LogFormat {
	if (setting === undefined || setting === "") return outputIsTerminal ? "pretty" : "json";
	if (setting === "json" || setting === "pretty") return setting;
	throw new LogFormatError(
		`invalid ${LOG_FORMAT_VARIABLE}: expected json or pretty, got ${JSON.stringify(setting)}`,
	);
}

export interface LogOutput {
	/** Default: chooseLogFormat(STARLING_LOG_FORMAT, whether fd is a terminal). */
	format?: LogFormat;
	/** File descriptor to write to; default 1 (stdout). */
	fd?: number;
}

/**
 * Logs on stdout, one event per line, secrets redacted. Level from STARLING_LOG_LEVEL
 * unless options.level is given; format from STARLING_LOG_FORMAT (see chooseLogFormat).
 * Throws LogFormatError for a STARLING_LOG_FORMAT that is neither json nor pretty.
 *
 * Written synchronously, in both formats: pino's default asynchronous stdout let the
 * flush at exit overtake a write still in flight, so a service's last lines came out of
 * order (or were lost on a crash). Our services log a few lines per event, not per
 * packet, so the cost is small. Redaction happens before formatting, so the readable
 * lines hide the same fields as the JSON ones.
 */
export function createLogger(
	service: string,
	options: LoggerOptions = {},
	output: LogOutput = {},
): Logger {
	const fd = output.fd ?? 1;
	const isTerminal = fd === 1 ? process.stdout.isTTY === true : false;
	const format = output.format ?? chooseLogFormat(process.env[LOG_FORMAT_VARIABLE], isTerminal);
	const destination = pino.destination({ dest: fd, sync: true });
	const logger = pino(
		{
			level: process.env.STARLING_LOG_LEVEL ?? "info",
			base: { service },
			redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
			timestamp: pino.stdTimeFunctions.isoTime,
			...options,
		},
		format === "json"
			? destination
			: prettyLines(destination, isTerminal && process.env.NO_COLOR === undefined),
	);
	return withUniqueBindings(logger, Object.keys({ service, ...(options.base ?? {}) }));
}

type ChildFn = (this: Logger, bindings: Record<string, unknown>, options?: object) => Logger;

/** The keys each logger's lines carry from its own and its ancestors' bindings. */
const boundKeys = new WeakMap<Logger, ReadonlySet<string>>();

/**
 * Makes a child's binding replace its ancestors' binding of the same key. pino
 * appends every child's bindings to its parent's serialized ones, so
 * `logger.child({ component: "engine" }).child({ component: "signal" })` wrote
 * `"component"` twice on every line (a JSON reader keeps the last, a text search
 * finds both). Children inherit this `child` from the root through pino's
 * prototype chain. The common case (no repeated key) costs a set lookup per key.
 */
function withUniqueBindings(root: Logger, baseKeys: string[]): Logger {
	const makeChild = root.child as unknown as ChildFn;
	boundKeys.set(root, new Set(baseKeys));
	const child: ChildFn = function (this: Logger, bindings, options) {
		const made = makeChild.call(this, bindings, options);
		const inherited = boundKeys.get(this) ?? new Set(Object.keys(this.bindings()));
		const keys = new Set(inherited);
		let repeated = false;
		for (const key of Object.keys(bindings)) {
			if (bindings[key] === undefined) continue;
			if (keys.has(key)) repeated = true;
			keys.add(key);
		}
		boundKeys.set(made, keys);
		if (repeated) rewriteBindings(made);
		return made;
	};
	(root as unknown as { child: ChildFn }).child = child;
	return root;
}

/**
 * Re-serializes a logger's bindings with each key once: the values are the
 * ones pino already serialized (redacted included), and JSON.parse keeps a
 * repeated key at its first position with its last value.
 */
function rewriteBindings(logger: Logger): void {
	let text = "";
	for (const [key, value] of Object.entries(logger.bindings())) {
		text += `,${JSON.stringify(key)}:${JSON.stringify(value)}`;
	}
	(logger as unknown as Record<symbol, string>)[pino.symbols.chindingsSym] = text;
}

/**
 * A stream that turns each JSON line pino writes into one readable line, written
 * synchronously to `destination`:
 * `17:30:09.970 INFO: management/rest: incoming request {"reqId":"req-1",...}`.
 */
function prettyLines(destination: DestinationStream, colorize: boolean): DestinationStream {
	const prettify = prettyFactory({
		colorize,
		singleLine: true,
		translateTime: "SYS:HH:MM:ss.l",
		messageFormat: "{service}{if component}/{component}{end}{if msg}: {msg}{end}",
		ignore: "service,component,pid,hostname",
		// Errors inline too (pino-pretty prints them on lines of their own by default).
		errorLikeObjectKeys: [],
	});
	return {
		write(line: string) {
			// A streamWrite hook may swallow a line by returning "".
			if (line === "") return;
			const text = prettify(line);
			if (text) destination.write(text);
		},
	};
}
