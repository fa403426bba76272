import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Logger } from "@starling/log";
import { errorJson, respond } from "./http-answer.js";

/** What one health check found: "ok", or why not. */
export type CheckResult = { ok: true } | { ok: false; reason: string };

/** Named checks; the service is healthy (or ready) when every one is ok. */
export type HealthChecks = () => Promise<Record<string, CheckResult>> | Record<string, CheckResult>;

/** The JSON a health endpoint answers, and its HTTP status. */
export interface HealthAnswer {
	status: 200 | 503;
	body: {
		status: "ok" | "unavailable";
		checks: Record<string, string>;
		/** Present on 503 only, as every Starling error body: one line and the status. */
		message?: string;
		code?: number;
	};
}

/**
 * Runs the checks and turns them into an answer: 200 when all pass, else 503
 * naming the failed ones. A check that throws counts as failed with its
 * message, so a broken dependency is a 503, never a 500.
 */
export async function evaluateHealth(checks: HealthChecks): Promise<HealthAnswer> {
	let results: Record<string, CheckResult>;
	try {
		results = await checks();
	} catch (err) {
		results = { checks: { ok: false, reason: errorText(err) } };
	}
	const shown: Record<string, string> = {};
	const failed: string[] = [];
	for (const [name, result] of Object.entries(results)) {
		shown[name] = result.ok ? "ok" : result.reason;
		if (!result.ok) failed.push(`${name}: ${result.reason}`);
	}
	if (failed.length === 0) return { status: 200, body: { status: "ok", checks: shown } };
	return {
		status: 503,
		body: { status: "unavailable", checks: shown, message: failed.join("; "), code: 503 },
	};
}

/** Runs one check, turning a throw (or a rejected promise) into a failed result. */
export async function check(run: () => unknown): Promise<CheckResult> {
	try {
		await run();
		return { ok: true };
	} catch (err) {
		return { ok: false, reason: errorText(err) };
	}
}

export interface OpsServerOptions {
	/** Address to bind; IPv6 literals without brackets. */
	host: string;
	/** Port to bind; 0 picks a free one (see the returned port). */
	port: number;
	/** Liveness: the process serves (GET /healthz). */
	live: HealthChecks;
	/** Readiness: the service can do its work (GET /readyz). */
	ready: HealthChecks;
	/** The Prometheus exposition (GET /metrics). */
	metrics(): Promise<{ contentType: string; body: string }>;
	logger: Logger;
}

export interface OpsServer {
	readonly port: number;
	close(): Promise<void>;
}

/**
 * A small plain-HTTP listener for operators: /healthz, /readyz and /metrics,
 * apart from the service's own port so that metrics need not be public where
 * the API is. GET and HEAD only; anything else is a JSON 404 or 405.
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
	const { logger } = options;
	const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
		handle(req, res, options).catch((err: unknown) => {
			logger.error({ err: errorText(err), path: req.url }, "operations endpoint failed");
			if (!res.headersSent) respond(res, 500, "application/json", errorJson(500, "internal error"));
			else res.destroy();
		});
	};
	const server: Server = createServer(onRequest);
	server.headersTimeout = 10_000;
	server.requestTimeout = 15_000;
	await new Promise<void>((resolve, reject) => {
		const onError = (err: Error): void =>
			reject(new Error(`cannot listen on ${options.host}:${options.port}: ${err.message}`));
		server.once("error", onError);
		server.listen(options.port, options.host, () => {
			server.off("error", onError);
			resolve();
		});
	});
	server.on("error", (err) => logger.error({ err: err.message }, "operations listener error"));
	const address = server.address();
	const port = typeof address === "object" && address ? address.port : options.port;
	let closing: Promise<void> | undefined;
	return {
		port,
		close() {
			closing ??= new Promise<void>((resolve) => {
				server.close(() => resolve());
				server.closeAllConnections();
			});
			return closing;
		},
	};
}

async function handle(
	req: IncomingMessage,
	res: ServerResponse,
	options: OpsServerOptions,
): Promise<void> {
	const path = (req.url ?? "/").split("?")[0];
	if (path !== "/healthz" && path !== "/readyz" && path !== "/metrics") {
		respond(res, 404, "application/json", errorJson(404, "not found"));
		return;
	}
	if (req.method !== "GET" && req.method !== "HEAD") {
		respond(res, 405, "application/json", errorJson(405, "only GET and HEAD"), {
			Allow: "GET, HEAD",
		});
		return;
	}
	if (path === "/metrics") {
		const { contentType, body } = await options.metrics();
		respond(res, 200, contentType, body);
		return;
	}
	const answer = await evaluateHealth(path === "/healthz" ? options.live : options.ready);
	respond(res, answer.status, "application/json", `${JSON.stringify(answer.body)}\n`);
}

function errorText(err: unknown): string {
	return err instanceof Error ? err.message : String(err);
}
