import type { NetworkChangeSink } from "../../app/events.js";
import type { Store } from "../../store/store.js";
import type { AccountListings } from "../listings.js";

/** What route modules get as plugin options. */
export interface RouteDeps {
	store: Store;
	sink: NetworkChangeSink;
	now: () => Date;
	/** Where account networks may lie (STARLING_NETWORK_RANGE). */
	networkPool: string;
	/** The account-wide listings, cached by account revision. */
	listings: AccountListings;
}

/** Order-preserving de-duplication (group id lists). */
export function unique<T>(items: readonly T[]): T[] {
	return [...new Set(items)];
}
