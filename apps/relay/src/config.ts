import { MIN_SECRET_BYTES } from "@starling/relay-protocol";
import {
	ConfigError,
	type ListenAddress,
	loadTlsFiles,
	parseListenAddress,
	resolveSettings,
} from "@starling/service-runtime";
import { z } from "zod";
import {
	DEFAULT_HELLO_TIMEOUT_MS,
	DEFAULT_MAX_BUFFERED_BYTES,
	DEFAULT_MAX_CONNECTIONS,
	DEFAULT_MAX_TOTAL_BUFFERED_BYTES,
	DEFAULT_PING_INTERVAL_MS,
} from "./limits.js";

export const DEFAULT_LISTEN = "127.0.0.1:33080";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface RelayConfig {
	host: string;
	port: number;
	secret: string;
	tls: { cert: Buffer; key: Buffer } | undefined;
	maxConnections: number;
	maxBufferedBytes: number;
	maxTotalBufferedBytes: number;
	helloTimeoutMs: number;
	pingIntervalMs: number;
	logLevel: LogLevel;
}

export { ConfigError } from "@starling/service-runtime";

const integer = (min: number, max: number) =>
	z
		.string()
		.regex(/^\d+$/, "expected a whole number")
		.transform(Number)
		.pipe(z.number().int().min(min).max(max));

const listen = z.string().transform((text, ctx) => {
	const parsed = parseListen(text);
	if (typeof parsed === "string") {
		ctx.addIssue({ code: "custom", message: parsed });
		return z.NEVER;
	}
	return parsed;
});

/** The relay's environment: every variable it reads, with defaults. */
export const RelayEnvSchema = z.object({
	STARLING_RELAY_LISTEN: listen.default({ host: "127.0.0.1", port: 33080 }),
	STARLING_RELAY_SECRET: z
		.string({ error: "is required (the secret shared with management)" })
		.refine(
			(v) => Buffer.byteLength(v, "utf8") >= MIN_SECRET_BYTES,
			`must be at least ${MIN_SECRET_BYTES} bytes (e.g. openssl rand -base64 32)`,
		),
	STARLING_RELAY_TLS_CERT_FILE: z.string().min(1).optional(),
	STARLING_RELAY_TLS_KEY_FILE: z.string().min(1).optional(),
	STARLING_RELAY_MAX_CONNECTIONS: integer(1, 1_000_000).default(DEFAULT_MAX_CONNECTIONS),
	STARLING_RELAY_MAX_BUFFERED_BYTES: integer(4096, 1 << 30).default(DEFAULT_MAX_BUFFERED_BYTES),
	STARLING_RELAY_MAX_TOTAL_BUFFERED_BYTES: integer(65_536, 2 ** 40).default(
		DEFAULT_MAX_TOTAL_BUFFERED_BYTES,
	),
	STARLING_RELAY_HELLO_TIMEOUT_MS: integer(100, 600_000).default(DEFAULT_HELLO_TIMEOUT_MS),
	STARLING_RELAY_PING_INTERVAL_MS: integer(100, 3_600_000).default(DEFAULT_PING_INTERVAL_MS),
	STARLING_LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
});

/**
 * Reads the relay's configuration from STARLING_* environment variables and
 * the optional STARLING_CONFIG_FILE (empty values count as unset). Throws
 * ConfigError naming the first bad variable; reads the TLS files, so an
 * unreadable one is reported here too.
 */
export function loadConfig(env: NodeJS.ProcessEnv): RelayConfig {
	const relevant = Object.fromEntries(
		Object.entries(resolveSettings(env)).filter(([name]) => name in RelayEnvSchema.shape),
	);
	const parsed = RelayEnvSchema.safeParse(relevant);
	if (!parsed.success) {
		const issue = parsed.error.issues[0];
		const name = String(issue?.path[0] ?? "configuration");
		const got = relevant[name];
		const shown =
			got === undefined || name === "STARLING_RELAY_SECRET" ? "" : `; got ${JSON.stringify(got)}`;
		throw new ConfigError(`${name} ${issue?.message ?? "is invalid"}${shown}`);
	}
	const c = parsed.data;
	const tls = loadTlsFiles({
		certVariable: "STARLING_RELAY_TLS_CERT_FILE",
		certFile: c.STARLING_RELAY_TLS_CERT_FILE,
		keyVariable: "STARLING_RELAY_TLS_KEY_FILE",
		keyFile: c.STARLING_RELAY_TLS_KEY_FILE,
	});
	if (c.STARLING_RELAY_MAX_TOTAL_BUFFERED_BYTES < c.STARLING_RELAY_MAX_BUFFERED_BYTES) {
		throw new ConfigError(
			"STARLING_RELAY_MAX_TOTAL_BUFFERED_BYTES must be at least STARLING_RELAY_MAX_BUFFERED_BYTES",
		);
	}
	return {
		host: c.STARLING_RELAY_LISTEN.host,
		port: c.STARLING_RELAY_LISTEN.port,
		secret: c.STARLING_RELAY_SECRET,
		tls,
		maxConnections: c.STARLING_RELAY_MAX_CONNECTIONS,
		maxBufferedBytes: c.STARLING_RELAY_MAX_BUFFERED_BYTES,
		maxTotalBufferedBytes: c.STARLING_RELAY_MAX_TOTAL_BUFFERED_BYTES,
		helloTimeoutMs: c.STARLING_RELAY_HELLO_TIMEOUT_MS,
		pingIntervalMs: c.STARLING_RELAY_PING_INTERVAL_MS,
		logLevel: c.STARLING_LOG_LEVEL,
	};
}

/**
 * Parses "host:port" or "[v6]:port". Port 0 picks a free port. Returns the
 * reason as a string when the text is not an address.
 */
export function parseListen(text: string): ListenAddress | string {
	return parseListenAddress(text, `${DEFAULT_LISTEN} or [::]:33080`);
}
