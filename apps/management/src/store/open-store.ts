import type { Logger } from "@starling/log";
import type { ManagementConfig } from "../config.js";
import { PostgresStore } from "./postgres/postgres-store.js";
import { SqliteStore } from "./sqlite/sqlite-store.js";
import type { Store } from "./store.js";

/**
 * Opens the store the configuration names (STARLING_STORE, validated by
 * config.ts): the one place that knows the backends. PostgreSQL out of reach
 * throws StoreUnavailableError naming host:port; later outages are logged by
 * `logger`, one line when the database goes away and one when it is back.
 */
export async function openStore(
	config: Pick<ManagementConfig, "store" | "databasePath" | "postgres">,
	logger?: Logger,
): Promise<Store> {
	switch (config.store) {
		case "sqlite":
			return SqliteStore.open(config.databasePath);
		case "postgres": {
			if (!config.postgres) throw new Error("STARLING_STORE=postgres without a DSN");
			return PostgresStore.open(config.postgres.dsn, {
				poolSize: config.postgres.poolSize,
				onAvailabilityChange(available, detail) {
					if (available) logger?.info({ store: "postgres" }, detail);
					else logger?.error({ store: "postgres" }, detail);
				},
			});
		}
	}
}
