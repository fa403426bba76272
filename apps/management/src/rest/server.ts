import type { Logger } from "@starling/log";
import { evaluateHealth, type HealthChecks } from "@starling/service-runtime";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { validatorCompiler } from "fastify-type-provider-zod";
import type { NetworkChangeSink } from "../app/events.js";
import type { RestRequestSample } from "../metrics/management-metrics.js";
import type { Store } from "../store/store.js";
import { requireRole, requireToken } from "./auth.js";
import {
	clientErrorHandler,
	errorBody,
	frameworkErrorHandler,
	installErrorHandling,
} from "./errors.js";
import { AccountListings } from "./listings.js";
import { openApiRoute, registerApiDocs, registerOpenApi } from "./openapi.js";
import { accountRoutes } from "./routes/accounts.js";
import type { RouteDeps } from "./routes/deps.js";
import { eventRoutes } from "./routes/events.js";
import { groupRoutes } from "./routes/groups.js";
import { networkRoutes } from "./routes/networks.js";
import { peerRoutes } from "./routes/peers.js";
import { policyRoutes } from "./routes/policies.js";
import { routeCheckRoutes } from "./routes/route-check.js";
import { routeRoutes } from "./routes/routes.js";
import { setupKeyRoutes } from "./routes/setup-keys.js";
import { userAdminRoutes, userSelfServiceRoutes } from "./routes/users.js";
import { fastSerializerCompiler } from "./serializer.js";

export interface RestApiDeps {
	store: Store;
	sink: NetworkChangeSink;
	/**
	 * Used as given, for fastify's request logs too: the caller binds the
	 * component (management's server passes `component: "rest"`). Binding it
	 * here again wrote the key twice on every line, since pino's child loggers
	 * append their bindings rather than replace them.
	 */
	logger: Logger;
	/** Clock (tests); defaults to the system clock. */
	now?: () => Date;
	/** Where account networks may lie (STARLING_NETWORK_RANGE); default 100.64.0.0/10. */
	networkPool?: string;
	/** Told of every answered request, with its route pattern (metrics). */
	observeRequest?: (sample: RestRequestSample) => void;
	/** Served unauthenticated at /healthz and /readyz, outside the OpenAPI document. */
	health?: { live: HealthChecks; ready: HealthChecks };
	/**
	 * Registered at the root, beside the API, before the instance is made
	 * ready: no token, the server's hooks and error handling. The rest-scale
	 * benchmark adds its baseline routes here, so they run on the same server.
	 */
	extraRoutes?: (app: FastifyInstance) => Promise<void>;
}

/** Request bodies above this are refused with 413 (the largest legitimate body is well under 8 KiB). */
export const BODY_LIMIT = 64 * 1024;

/**
 * Builds the admin REST API (`/api/*`). The instance is returned ready
 * (`app.ready()` has run) and not listening: call `app.listen(...)`, or hand
 * connections to `app.server` (e.g. `app.server.emit("connection", socket)`)
 * when the port is shared with gRPC. Routes cannot be added afterwards.
 * Close it with `app.close()`; the store is the caller's to close.
 */
export async function buildRestApi(deps: RestApiDeps): Promise<FastifyInstance> {
	const logger: FastifyBaseLogger = deps.logger;
	const app = Fastify({
		loggerInstance: logger,
		// Fastify's default request logs carry method, URL, addresses and status:
		// never headers (Authorization) nor bodies (keys and tokens in answers).
		bodyLimit: BODY_LIMIT,
		onProtoPoisoning: "error",
		onConstructorPoisoning: "error",
		requestTimeout: 30_000,
		// Fastify's own 503 while closing has another body shape: see below.
		return503OnClosing: false,
		frameworkErrors: frameworkErrorHandler,
		clientErrorHandler,
	});
	app.setValidatorCompiler(validatorCompiler);
	app.setSerializerCompiler(fastSerializerCompiler);
	installErrorHandling(app);

	// While closing, requests still arriving on kept-alive connections get a 503.
	let closing = false;
	app.addHook("preClose", async () => {
		closing = true;
	});
	app.addHook("onRequest", async (_request, reply) => {
		if (closing) {
			return reply.code(503).header("connection", "close").send(errorBody(503, "shutting down"));
		}
	});

	const observe = deps.observeRequest;
	if (observe) {
		app.addHook("onResponse", async (request, reply) => {
			// The pattern, not the URL: ids in paths would make a series per object.
			const route = request.routeOptions.url ?? "unmatched";
			observe({ method: request.method, route, status: reply.statusCode });
		});
	}

	await registerOpenApi(app);
	openApiRoute(app);
	if (deps.health) healthRoutes(app, deps.health);
	await registerApiDocs(app);

	const routeDeps: RouteDeps = {
		store: deps.store,
		sink: deps.sink,
		now: deps.now ?? (() => new Date()),
		networkPool: deps.networkPool ?? "100.64.0.0/10",
		listings: new AccountListings(deps.store),
	};
	await app.register(async (authenticated) => {
		requireToken(authenticated, routeDeps);
		await authenticated.register(userSelfServiceRoutes, routeDeps);
		await authenticated.register(async (admin) => {
			requireRole(admin, ["owner", "admin"]);
			await admin.register(setupKeyRoutes, routeDeps);
			await admin.register(peerRoutes, routeDeps);
			await admin.register(userAdminRoutes, routeDeps);
			await admin.register(groupRoutes, routeDeps);
			await admin.register(policyRoutes, routeDeps);
			await admin.register(routeRoutes, routeDeps);
			await admin.register(routeCheckRoutes, routeDeps);
			await admin.register(networkRoutes, routeDeps);
			await admin.register(accountRoutes, routeDeps);
			await admin.register(eventRoutes, routeDeps);
		});
	});

	if (deps.extraRoutes) await app.register(deps.extraRoutes);

	await app.ready();
	return app;
}

/**
 * GET /healthz and /readyz for load balancers and container health checks:
 * no token, JSON, 503 with {message, code} when a check fails. Hidden from
 * the OpenAPI document, which describes the NetBird-compatible API only.
 */
function healthRoutes(app: FastifyInstance, health: { live: HealthChecks; ready: HealthChecks }) {
	for (const [path, checks] of [
		["/healthz", health.live],
		["/readyz", health.ready],
	] as const) {
		// Probed every few seconds: no "request completed" line per probe.
		app.get(path, { schema: { hide: true }, logLevel: "warn" }, async (_request, reply) => {
			const answer = await evaluateHealth(checks);
			return reply.code(answer.status).header("cache-control", "no-store").send(answer.body);
		});
	}
}
