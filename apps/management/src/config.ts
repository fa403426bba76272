import { isIP } from "node:net";
import { join } from "node:path";
import { natsServerProblem } from "@starling/bus";
import type { RelayConfig } from "@starling/proto";
import { issueRelayCredential } from "@starling/relay-protocol";
import {
	ConfigError,
	type ListenAddress,
	loadTlsFiles,
	parseListenAddress,
	resolveSettings,
	type TlsFiles,
} from "@starling/service-runtime";
import { z } from "zod";
import { type IpamError, parseCidr } from "./core/ipam.js";
import { randomBase62 } from "./core/random.js";

const hostPort = z
	.string()
	.regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, "expected host:port, e.g. 127.0.0.1:33073")
	.refine((v) => Number(v.slice(v.lastIndexOf(":") + 1)) <= 65535, "port must be at most 65535");

const cidr = z.string().superRefine((v, ctx) => {
	try {
		parseCidr(v);
	} catch (err) {
		ctx.addIssue({ code: "custom", message: (err as IpamError).message });
	}
});

const list = z.string().transform((v) =>
	v
		.split(",")
		.map((s) => s.trim())
		.filter(Boolean),
);

const port = z
	.string()
	.regex(/^\d{1,5}$/, "expected port numbers, e.g. 3478,3479")
	.transform(Number)
	.pipe(z.number().min(1).max(65_535, "ports are 1-65535"));

/** Store backends (store/open-store.ts opens them). */
export const STORE_KINDS = ["sqlite", "postgres"] as const;

/** Where /metrics (and /healthz, /readyz) are served apart from the API; loopback by default. */
export const DEFAULT_METRICS_LISTEN = "127.0.0.1:9090";

/** STARLING_MANAGEMENT_METRICS_LISTEN: an address, or "off" for no metrics listener. */
function metricsListenOf(text: string): ListenAddress | string | undefined {
	if (text === "off") return undefined;
	return parseListenAddress(text, `${DEFAULT_METRICS_LISTEN}, 0.0.0.0:9090 or off`);
}

const metricsListen = z.string().superRefine((text, ctx) => {
	const parsed = metricsListenOf(text);
	if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: parsed });
});

/** One NATS server URL (rules shared with signal, in @starling/bus). */
function natsServerIssue(server: string, ctx: z.RefinementCtx): void {
	const problem = natsServerProblem(server);
	if (problem) ctx.addIssue({ code: "custom", message: problem });
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** Management configuration, from STARLING_* environment variables. */
export const ManagementConfigSchema = z.object({
	STARLING_DATA_DIR: z.string().min(1).default("./data"),
	STARLING_STORE: z
		.enum(STORE_KINDS, { message: `expected one of: ${STORE_KINDS.join(", ")}` })
		.default("sqlite"),
	STARLING_POSTGRES_DSN: z.string().optional(),
	STARLING_POSTGRES_POOL_SIZE: z.coerce.number().int().min(1).max(500).default(10),
	STARLING_MANAGEMENT_LISTEN: hostPort.default("127.0.0.1:33073"),
	STARLING_MANAGEMENT_METRICS_LISTEN: metricsListen.default(DEFAULT_METRICS_LISTEN),
	STARLING_MANAGEMENT_TLS_CERT_FILE: z.string().min(1).optional(),
	STARLING_MANAGEMENT_TLS_KEY_FILE: z.string().min(1).optional(),
	STARLING_PUBLIC_HOST: z
		.string()
		.refine(
			(v) =>
				isIP(v) !== 0 ||
				/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(
					v,
				),
			"expected the host name or IP address agents reach this server at, e.g. starling.example.com",
		)
		.optional(),
	STARLING_SIGNAL_URL: z.string().url().optional(),
	STARLING_STUN_URLS: list.optional(),
	// The ports STUN URLs are derived with (when STARLING_STUN_URLS is unset). Two ports of one
	// server let `starling netcheck` tell a NAT that maps per destination port from one that does not.
	STARLING_STUN_PORTS: list
		.pipe(z.array(port).min(1, "expected at least one port, e.g. 3478"))
		.default([3478]),
	STARLING_RELAY_URLS: list.optional(),
	STARLING_RELAY_SECRET: z
		.string()
		.refine((v) => Buffer.byteLength(v, "utf8") >= 16, "must be at least 16 bytes")
		.optional(),
	STARLING_RELAY_TOKEN_TTL_S: z.coerce.number().int().min(2).max(604_800).default(3600),
	STARLING_NETWORK_RANGE: cidr.default("100.64.0.0/10"),
	STARLING_ACCOUNT_PREFIX_LENGTH: z.coerce.number().int().min(8).max(30).default(16),
	STARLING_DNS_DOMAIN: z
		.string()
		.regex(/^[a-z0-9-]+(\.[a-z0-9-]+)*$/, "expected a DNS domain such as starling.internal")
		.default("starling.internal"),
	STARLING_ADMIN_TOKEN_FILE: z.string().min(1).optional(),
	STARLING_SYNC_FLUSH_MS: z.coerce.number().int().min(0).max(1000).default(50),
	STARLING_SYNC_HEARTBEAT_MS: z.coerce.number().int().min(100).max(300_000).default(25_000),
	STARLING_LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
	// Several instances: the NATS servers of the bus between them (absent: one instance, in-process bus).
	STARLING_NATS_URL: list
		.pipe(z.array(z.string().superRefine(natsServerIssue)).min(1, "expected nats://host:port"))
		.optional(),
	STARLING_INSTANCE_ID: z
		.string()
		.regex(/^[A-Za-z0-9_-]{1,64}$/, "expected 1-64 letters, digits, '-' or '_'")
		.optional(),
	STARLING_SYNC_CHECK_MS: z.coerce.number().int().min(100).max(600_000).default(3000),
	STARLING_INSTANCE_HEARTBEAT_MS: z.coerce.number().int().min(100).max(60_000).default(5000),
	STARLING_INSTANCE_EXPIRE_MS: z.coerce.number().int().min(300).max(600_000).default(15_000),
});

export interface ManagementConfig {
	dataDir: string;
	/** Which store backend holds the data. */
	store: (typeof STORE_KINDS)[number];
	/** The SQLite file (STARLING_STORE=sqlite). */
	databasePath: string;
	/** The PostgreSQL database (STARLING_STORE=postgres), else undefined. */
	postgres: { dsn: string; poolSize: number } | undefined;
	listen: { host: string; port: number };
	/** Certificate and key: serve gRPC and REST over TLS on the listen port; undefined: plaintext. */
	tls: TlsFiles | undefined;
	/** The operators' listener (/metrics, /healthz, /readyz); undefined when "off". */
	metricsListen: ListenAddress | undefined;
	signalUrl: string;
	stunUrls: string[];
	relayUrls: string[];
	/** HMAC secret shared with the relay; always set when relayUrls is not empty. */
	relaySecret: string | undefined;
	relayTokenTtlMs: number;
	networkRange: string;
	accountPrefixLength: number;
	dnsDomain: string;
	adminTokenFile: string | undefined;
	syncFlushMs: number;
	syncHeartbeatMs: number;
	/** NATS servers of the bus between instances; empty: one instance, in-process bus. */
	natsUrls: string[];
	/** This process's id among instances: configured, or random per start. */
	instanceId: string;
	/** How often held accounts are checked against the store's revisions. */
	syncCheckMs: number;
	instanceHeartbeatMs: number;
	/** An instance silent this long is dead and its Sync sessions are expired. */
	instanceExpireMs: number;
	logLevel: (typeof LOG_LEVELS)[number];
}

export { ConfigError } from "@starling/service-runtime";

export function splitHostPort(value: string): { host: string; port: number } {
	const i = value.lastIndexOf(":");
	return { host: value.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(value.slice(i + 1)) };
}

/**
 * Validates the STARLING_* environment and the optional STARLING_CONFIG_FILE
 * (the environment wins; empty values count as unset); a bad value throws
 * ConfigError naming the variable.
 */
export function loadManagementConfig(env: NodeJS.ProcessEnv): ManagementConfig {
	const parsed = ManagementConfigSchema.safeParse(resolveSettings(env));
	if (!parsed.success) {
		const issue = parsed.error.issues[0];
		throw new ConfigError(
			`invalid ${String(issue?.path[0] ?? "configuration")}: ${issue?.message ?? "bad value"}`,
		);
	}
	const c = parsed.data;
	const urls = serviceUrls(c);
	if (urls.relayUrls.length > 0 && c.STARLING_RELAY_SECRET === undefined) {
		throw new ConfigError(
			"invalid STARLING_RELAY_SECRET: required when STARLING_RELAY_URLS is set",
		);
	}
	const postgres = postgresOf(
		c.STARLING_STORE,
		c.STARLING_POSTGRES_DSN,
		c.STARLING_POSTGRES_POOL_SIZE,
	);
	if (c.STARLING_INSTANCE_EXPIRE_MS < 2 * c.STARLING_INSTANCE_HEARTBEAT_MS) {
		throw new ConfigError(
			`invalid STARLING_INSTANCE_EXPIRE_MS: must be at least twice STARLING_INSTANCE_HEARTBEAT_MS (${c.STARLING_INSTANCE_HEARTBEAT_MS})`,
		);
	}
	const range = parseCidr(c.STARLING_NETWORK_RANGE);
	if (c.STARLING_ACCOUNT_PREFIX_LENGTH < range.prefix) {
		throw new ConfigError(
			`invalid STARLING_ACCOUNT_PREFIX_LENGTH: /${c.STARLING_ACCOUNT_PREFIX_LENGTH} is larger than STARLING_NETWORK_RANGE ${c.STARLING_NETWORK_RANGE}`,
		);
	}
	return {
		dataDir: c.STARLING_DATA_DIR,
		store: c.STARLING_STORE,
		databasePath: join(c.STARLING_DATA_DIR, "management.db"),
		postgres,
		listen: splitHostPort(c.STARLING_MANAGEMENT_LISTEN),
		tls: loadTlsFiles({
			certVariable: "STARLING_MANAGEMENT_TLS_CERT_FILE",
			certFile: c.STARLING_MANAGEMENT_TLS_CERT_FILE,
			keyVariable: "STARLING_MANAGEMENT_TLS_KEY_FILE",
			keyFile: c.STARLING_MANAGEMENT_TLS_KEY_FILE,
		}),
		// Validated above: an address or undefined ("off").
		metricsListen: metricsListenOf(c.STARLING_MANAGEMENT_METRICS_LISTEN) as
			| ListenAddress
			| undefined,
		...urls,
		relaySecret: c.STARLING_RELAY_SECRET,
		relayTokenTtlMs: c.STARLING_RELAY_TOKEN_TTL_S * 1000,
		networkRange: c.STARLING_NETWORK_RANGE,
		accountPrefixLength: c.STARLING_ACCOUNT_PREFIX_LENGTH,
		dnsDomain: c.STARLING_DNS_DOMAIN,
		adminTokenFile: c.STARLING_ADMIN_TOKEN_FILE,
		syncFlushMs: c.STARLING_SYNC_FLUSH_MS,
		syncHeartbeatMs: c.STARLING_SYNC_HEARTBEAT_MS,
		natsUrls: c.STARLING_NATS_URL ?? [],
		// Random per start: two replicas started from one configuration can never share it.
		instanceId: c.STARLING_INSTANCE_ID ?? `m-${randomBase62(12)}`,
		syncCheckMs: c.STARLING_SYNC_CHECK_MS,
		instanceHeartbeatMs: c.STARLING_INSTANCE_HEARTBEAT_MS,
		instanceExpireMs: c.STARLING_INSTANCE_EXPIRE_MS,
		logLevel: c.STARLING_LOG_LEVEL,
	};
}

/**
 * The URLs handed to agents: each as configured, or else derived from
 * STARLING_PUBLIC_HOST with the default ports (signal http://HOST:10000, STUN
 * stun:HOST:PORT for each of STARLING_STUN_PORTS (3478), and relay
 * ws://HOST:33080 when a relay secret is set).
 * Without either, signal defaults to http://127.0.0.1:10000 and there is no
 * STUN or relay.
 */
function serviceUrls(
	c: z.infer<typeof ManagementConfigSchema>,
): Pick<ManagementConfig, "signalUrl" | "stunUrls" | "relayUrls"> {
	const host = c.STARLING_PUBLIC_HOST;
	const inUrl = host !== undefined && isIP(host) === 6 ? `[${host}]` : host;
	return {
		signalUrl: c.STARLING_SIGNAL_URL ?? `http://${inUrl ?? "127.0.0.1"}:10000`,
		stunUrls:
			c.STARLING_STUN_URLS ?? (inUrl ? c.STARLING_STUN_PORTS.map((p) => `stun:${inUrl}:${p}`) : []),
		relayUrls:
			c.STARLING_RELAY_URLS ??
			(inUrl && c.STARLING_RELAY_SECRET !== undefined ? [`ws://${inUrl}:33080`] : []),
	};
}

/**
 * The relay part of a peer's network map: the relay URLs and a fresh token
 * for its WireGuard key (base64), valid relayTokenTtlMs from nowMs. Undefined
 * without a relay, or for a key that is not a WireGuard key. Call it again
 * to refresh a token before tokenExpiresUnixMs.
 */
export function relayConfigFor(
	config: Pick<ManagementConfig, "relayUrls" | "relaySecret" | "relayTokenTtlMs">,
	wgPublicKey: string,
	nowMs: number = Date.now(),
): RelayConfig | undefined {
	if (config.relayUrls.length === 0 || config.relaySecret === undefined) return undefined;
	try {
		const credential = issueRelayCredential(
			config.relaySecret,
			wgPublicKey,
			config.relayTokenTtlMs,
			nowMs,
		);
		return { urls: config.relayUrls, ...credential };
	} catch {
		return undefined;
	}
}

/**
 * STARLING_POSTGRES_DSN, required with STARLING_STORE=postgres: a URL such as
 * postgres://user:password@host:5432/starling. Messages never repeat the
 * value (it may hold a password).
 */
function postgresOf(
	store: (typeof STORE_KINDS)[number],
	dsn: string | undefined,
	poolSize: number,
): ManagementConfig["postgres"] {
	if (store !== "postgres") return undefined;
	const example = "expected a URL such as postgres://user:password@host:5432/starling";
	if (dsn === undefined) {
		throw new ConfigError(
			`invalid STARLING_POSTGRES_DSN: required when STARLING_STORE=postgres (${example})`,
		);
	}
	let url: URL;
	try {
		url = new URL(dsn);
	} catch {
		throw new ConfigError(`invalid STARLING_POSTGRES_DSN: not a URL (${example})`);
	}
	if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
		throw new ConfigError(`invalid STARLING_POSTGRES_DSN: scheme must be postgres:// (${example})`);
	}
	if (url.hostname === "") {
		throw new ConfigError(`invalid STARLING_POSTGRES_DSN: no host (${example})`);
	}
	if (url.pathname.length <= 1) {
		throw new ConfigError(`invalid STARLING_POSTGRES_DSN: no database name (${example})`);
	}
	return { dsn, poolSize };
}
