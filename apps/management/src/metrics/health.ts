import { check, type HealthChecks } from "@starling/service-runtime";
import type { Store } from "../store/store.js";

/** Liveness: the process answers. */
export const managementLive: HealthChecks = () => ({ process: { ok: true } });

/**
 * Readiness: not shutting down, and the store answers a real query (a count
 * over the users table), so a closed or unreachable database is a 503.
 */
export function managementReady(store: Store, isClosing: () => boolean): HealthChecks {
	return async () => ({
		serving: isClosing() ? { ok: false, reason: "shutting down" } : { ok: true },
		store: await check(() => store.countUsers()),
	});
}
