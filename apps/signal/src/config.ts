import { isIP } from "node:net";
import { DEFAULT_HEARTBEAT_INTERVAL_MS } from "./limits.js";

export const DEFAULT_LISTEN = "127.0.0.1:10000";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface SignalConfig {
	host: string;
	port: number;
	heartbeatIntervalMs: number;
	logLevel: LogLevel;
}

/** A bad environment value; the message names the variable. */
export class ConfigError extends Error {
	override name = "ConfigError";
}

/** Reads the signal server's configuration from environment variables. */
export function loadConfig(env: NodeJS.ProcessEnv): SignalConfig {
	const listen = env.STARLING_SIGNAL_LISTEN ?? DEFAULT_LISTEN;
	const { host, port } = parseListen(listen);
	const logLevel = env.STARLING_LOG_LEVEL ?? "info";
	if (!isLogLevel(logLevel)) {
		throw new ConfigError(
			`STARLING_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}; got ${JSON.stringify(logLevel)}`,
		);
	}
	const heartbeatText = env.STARLING_SIGNAL_HEARTBEAT_MS;
	let heartbeatIntervalMs = DEFAULT_HEARTBEAT_INTERVAL_MS;
	if (heartbeatText !== undefined) {
		heartbeatIntervalMs = Number(heartbeatText);
		if (
			!/^\d+$/.test(heartbeatText) ||
			!Number.isSafeInteger(heartbeatIntervalMs) ||
			heartbeatIntervalMs < 10 ||
			heartbeatIntervalMs > 3_600_000
		) {
			throw new ConfigError(
				`STARLING_SIGNAL_HEARTBEAT_MS must be an integer number of milliseconds from 10 to 3600000; got ${JSON.stringify(heartbeatText)}`,
			);
		}
	}
	return { host, port, heartbeatIntervalMs, logLevel };
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

function isLogLevel(text: string): text is LogLevel {
	return (LOG_LEVELS as readonly string[]).includes(text);
}
