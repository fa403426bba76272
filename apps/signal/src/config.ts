import { isIP } from "node:net";
import { ConfigError, resolveSettings } from "@starling/service-runtime";
import { z } from "zod";
import { DEFAULT_HEARTBEAT_INTERVAL_MS } from "./limits.js";

export { ConfigError } from "@starling/service-runtime";

export const DEFAULT_LISTEN = "127.0.0.1:10000";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface SignalConfig {
	host: string;
	port: number;
	heartbeatIntervalMs: number;
	logLevel: LogLevel;
}

/** The signal server's settings: every variable it reads, with defaults. */
export const SignalEnvSchema = z.object({
	STARLING_SIGNAL_LISTEN: z.string().default(DEFAULT_LISTEN),
	STARLING_LOG_LEVEL: z
		.string()
		.refine((v) => (LOG_LEVELS as readonly string[]).includes(v), {
			message: `must be one of ${LOG_LEVELS.join(", ")}`,
		})
		.default("info"),
	STARLING_SIGNAL_HEARTBEAT_MS: z
		.string()
		.regex(/^\d+$/, "must be an integer number of milliseconds from 10 to 3600000")
		.transform(Number)
		.pipe(
			z
				.number()
				.int()
				.min(10, "must be an integer number of milliseconds from 10 to 3600000")
				.max(3_600_000, "must be an integer number of milliseconds from 10 to 3600000"),
		)
		.optional(),
});

/**
 * Reads the signal server's configuration from STARLING_* environment
 * variables and the optional STARLING_CONFIG_FILE (empty values count as
 * unset). Throws ConfigError naming the first bad variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv): SignalConfig {
	const settings = resolveSettings(env);
	const parsed = SignalEnvSchema.safeParse(settings);
	if (!parsed.success) {
		const issue = parsed.error.issues[0];
		const name = String(issue?.path[0] ?? "configuration");
		const got = settings[name];
		const shown = got === undefined ? "" : `; got ${JSON.stringify(got)}`;
		throw new ConfigError(`${name} ${issue?.message ?? "is invalid"}${shown}`);
	}
	const c = parsed.data;
	const { host, port } = parseListen(c.STARLING_SIGNAL_LISTEN);
	return {
		host,
		port,
		heartbeatIntervalMs: c.STARLING_SIGNAL_HEARTBEAT_MS ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
		logLevel: c.STARLING_LOG_LEVEL as LogLevel,
	};
}

/** Parses "host:port" or "[v6]:port" as STARLING_SIGNAL_LISTEN. Port 0 picks a free port. */
export function parseListen(text: string): { host: string; port: number } {
	const fail = (why: string): never => {
		throw new ConfigError(
			`STARLING_SIGNAL_LISTEN must be host:port (e.g. ${DEFAULT_LISTEN} or [::]:10000): ${why}; got ${JSON.stringify(text)}`,
		);
	};
	const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
	if (!match) return fail("expected host:port");
	const v6 = match[1];
	const host = v6 ?? match[2] ?? "";
	if (v6 !== undefined && isIP(v6) !== 6) return fail(`${v6} is not an IPv6 address`);
	if (v6 === undefined && isIP(host) === 0 && !isHostname(host)) {
		return fail(`${host} is not an IPv4 address or host name`);
	}
	const port = Number(match[3]);
	if (port > 65535) return fail(`port ${port} is out of range`);
	return { host, port };
}

function isHostname(text: string): boolean {
	return (
		text.length <= 253 &&
		text.split(".").every((label) => /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label))
	);
}
