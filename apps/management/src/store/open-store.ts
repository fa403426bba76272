import type { ManagementConfig } from "../config.js";
import { SqliteStore } from "./sqlite/sqlite-store.js";
import type { Store } from "./store.js";

/**
 * Opens the store the configuration names (STARLING_STORE, validated by
 * config.ts): the one place that knows the backends.
 */
export async function openStore(
	config: Pick<ManagementConfig, "store" | "databasePath">,
): Promise<Store> {
	switch (config.store) {
		case "sqlite":
			return SqliteStore.open(config.databasePath);
	}
}
