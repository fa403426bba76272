import { natsServerProblem } from "@starling/bus";
import {
	ConfigError,
	type ListenAddress,
	loadTlsFiles,
	parseListenAddress,
	resolveSettings,
	type TlsFiles,
} from "@starling/service-runtime";
import { z } from "zod";
import { DEFAULT_HEARTBEAT_INTERVAL_MS } from "./limits.js";

export { ConfigError } from "@starling/service-runtime";

export const DEFAULT_LISTEN = "127.0.0.1:10000";
/** Where /healthz, /readyz and /metrics are served; loopback unless an operator opens it. */
export const DEFAULT_METRICS_LISTEN = "127.0.0.1:9091";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface SignalConfig {
	host: string;
	port: number;
	/** Certificate and key: serve gRPC over TLS (ALPN h2); undefined: plaintext. */
	tls: TlsFiles | undefined;
	/** The HTTP listener for health and metrics; undefined when set to "off". */
	metricsListen: ListenAddress | undefined;
	heartbeatIntervalMs: number;
	logLevel: LogLevel;
	/**
	 * NATS servers of the bus between signal instances (STARLING_NATS_URL);
	 * undefined: this is the only instance and no bus is used.
	 */
	natsServers: string[] | undefined;
}

/** The signal server's settings: every variable it reads, with defaults. */
export const SignalEnvSchema = z.object({
	STARLING_SIGNAL_LISTEN: z.string().default(DEFAULT_LISTEN),
	STARLING_SIGNAL_METRICS_LISTEN: z.string().default(DEFAULT_METRICS_LISTEN),
	STARLING_SIGNAL_TLS_CERT_FILE: z.string().min(1).optional(),
	STARLING_SIGNAL_TLS_KEY_FILE: z.string().min(1).optional(),
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
	STARLING_NATS_URL: z.string().optional(),
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
		tls: loadTlsFiles({
			certVariable: "STARLING_SIGNAL_TLS_CERT_FILE",
			certFile: c.STARLING_SIGNAL_TLS_CERT_FILE,
			keyVariable: "STARLING_SIGNAL_TLS_KEY_FILE",
			keyFile: c.STARLING_SIGNAL_TLS_KEY_FILE,
		}),
		metricsListen: parseMetricsListen(c.STARLING_SIGNAL_METRICS_LISTEN),
		heartbeatIntervalMs: c.STARLING_SIGNAL_HEARTBEAT_MS ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
		logLevel: c.STARLING_LOG_LEVEL as LogLevel,
		natsServers:
			c.STARLING_NATS_URL === undefined ? undefined : parseNatsServers(c.STARLING_NATS_URL),
	};
}

/**
 * STARLING_NATS_URL: one or more comma-separated `nats://host:port` URLs of
 * one NATS cluster (`nats://user:password@host:port` for credentials, which
 * are never echoed). No `tls://`: the bus does not configure TLS.
 */
export function parseNatsServers(text: string): string[] {
	const servers = text
		.split(",")
		.map((s) => s.trim())
		.filter((s) => s !== "");
	if (servers.length === 0) {
		throw new ConfigError("STARLING_NATS_URL must list at least one nats://host:port URL");
	}
	for (const server of servers) {
		const problem = natsServerProblem(server);
		if (problem) throw new ConfigError(`STARLING_NATS_URL: ${problem}`);
	}
	return servers;
}

/** Parses "host:port" or "[v6]:port" as STARLING_SIGNAL_LISTEN. Port 0 picks a free port. */
export function parseListen(text: string): ListenAddress {
	const parsed = parseListenAddress(text, `${DEFAULT_LISTEN} or [::]:10000`);
	if (typeof parsed === "string") {
		throw new ConfigError(`STARLING_SIGNAL_LISTEN ${parsed}; got ${JSON.stringify(text)}`);
	}
	return parsed;
}

/** STARLING_SIGNAL_METRICS_LISTEN: an address, or "off" for no health and metrics listener. */
function parseMetricsListen(text: string): ListenAddress | undefined {
	if (text === "off") return undefined;
	const parsed = parseListenAddress(text, `${DEFAULT_METRICS_LISTEN} or off`);
	if (typeof parsed === "string") {
		throw new ConfigError(`STARLING_SIGNAL_METRICS_LISTEN ${parsed}; got ${JSON.stringify(text)}`);
	}
	return parsed;
}
