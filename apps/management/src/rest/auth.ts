import type { FastifyInstance, FastifyRequest } from "fastify";
import { AppError } from "../app/errors.js";
import { type AuthContext, authenticateToken } from "../app/tokens.js";
import type { UserRole } from "../domain/types.js";
import type { Store } from "../store/store.js";

// Authentication and authorization of /api routes. Routes are placed in
// scopes (fastify encapsulation) rather than each declaring its own check,
// so a route can only be reachable without a token, or by a role, if it is
// registered in a scope that says so:
//
//   root              /api/openapi.json, no token
//   authenticated     any valid personal access token (all roles)
//     admin           owner or admin only

const contexts = new WeakMap<FastifyRequest, AuthContext>();

/** The authenticated caller of a request in an authenticated scope. */
export function authOf(request: FastifyRequest): AuthContext {
	const ctx = contexts.get(request);
	// Only reachable if a route were registered outside an authenticated scope.
	if (!ctx) throw new AppError(401, "not authenticated");
	return ctx;
}

export interface AuthOptions {
	store: Store;
	now: () => Date;
}

/**
 * Makes `scope` (and every plugin registered in it) require
 * `Authorization: Token <personal access token>`; failures are 401.
 * Updating the token's last use is done by authenticateToken.
 */
export function requireToken(scope: FastifyInstance, opts: AuthOptions): void {
	scope.addHook("onRequest", async (request) => {
		const ctx = await authenticateToken(opts.store, request.headers.authorization, opts.now());
		contexts.set(request, ctx);
	});
}

/** Makes `scope` answer 403 to callers whose role is not in `roles`. Register after requireToken. */
export function requireRole(scope: FastifyInstance, roles: readonly UserRole[]): void {
	scope.addHook("onRequest", async (request) => {
		const { user } = authOf(request);
		if (!roles.includes(user.role)) {
			throw new AppError(403, `this needs the ${roles.join(" or ")} role; you are ${user.role}`);
		}
	});
}
