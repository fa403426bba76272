import { createServer, type Server } from "node:http";
import type { Logger } from "@starling/log";
import type { Registry } from "prom-client";

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/**
 * Parses `--metrics-addr` / `STARLING_METRICS_ADDR`: "127.0.0.1:9101",
 * "[::1]:9101" or "localhost:9101". Only loopback: the metrics name this
 * machine's peers and are meant for the machine itself. Throws a one-line
 * error for anything else.
 */
export function parseMetricsAddr(text: string): { host: string; port: number } {
	const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
	const host = match?.[1] ?? match?.[2];
	const port = Number(match?.[3]);
	if (!match || host === undefined || !Number.isInteger(port) || port < 1 || port > 65535)
		throw new Error(`invalid metrics address '${text}' (expected 127.0.0.1:PORT)`);
	if (!LOOPBACK.has(host))
		throw new Error(
			`metrics address '${text}' is not a loopback address (127.0.0.1, [::1] or localhost); the agent serves metrics to this machine only`,
		);
	return { host, port };
}

export interface MetricsServer {
	/** The bound address, e.g. "127.0.0.1:9101" (the real port when 0 was asked). */
	readonly address: string;
	close(): Promise<void>;
}

/** Serves `GET /metrics` (Prometheus text format) on a loopback address; everything else is 404. */
export async function startMetricsServer(
	addr: { host: string; port: number },
	registry: Registry,
	logger: Logger,
): Promise<MetricsServer> {
	const server: Server = createServer((req, res) => {
		if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
			res.writeHead(404, { "content-type": "application/json" });
			res.end(
				JSON.stringify({ message: "not found; metrics are at GET /metrics", code: "not_found" }),
			);
			return;
		}
		registry.metrics().then(
			(text) => {
				res.writeHead(200, { "content-type": registry.contentType });
				res.end(text);
			},
			(err: unknown) => {
				logger.error(
					{ error: err instanceof Error ? err.message : String(err) },
					"metrics scrape failed",
				);
				res.writeHead(500, { "content-type": "application/json" });
				res.end(JSON.stringify({ message: "collecting metrics failed", code: "internal" }));
			},
		);
	});
	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(addr.port, addr.host, () => {
			server.off("error", reject);
			resolve();
		});
	});
	const bound = server.address();
	const address =
		typeof bound === "object" && bound
			? bound.family === "IPv6"
				? `[${bound.address}]:${bound.port}`
				: `${bound.address}:${bound.port}`
			: `${addr.host}:${addr.port}`;
	logger.info({ address }, "metrics listening");
	return {
		address,
		close: () => new Promise<void>((resolve) => server.close(() => resolve())),
	};
}
