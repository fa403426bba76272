// Policy evaluation and map computation, for benchmarks and tools.
export { bootstrapIfEmpty, createAccount } from "./app/accounts.js";
export { registerPeer } from "./app/peers.js";
export { createSetupKey } from "./app/setup-keys.js";
export { createPersonalAccessToken } from "./app/tokens.js";
export * from "./config.js";
export { defaultPolicy } from "./core/account-rules.js";
export { deltaForViewer, MapTransition } from "./core/map-updates.js";
export { computeNetworkMap, type ServiceEndpoints } from "./core/network-map.js";
export { type AccessConfig, AccessIndex } from "./core/policy.js";
export {
	accountFixture,
	peerFixture,
	policyFixture,
	routeFixture,
	ruleFixture,
	setupKeyFixture,
} from "./domain/fixtures.js";
export type * from "./domain/types.js";
export { buildRestApi, type RestApiDeps } from "./rest/index.js";
export * from "./server.js";
export { openStore } from "./store/open-store.js";
export { SqliteStore } from "./store/sqlite/sqlite-store.js";
export type { Store } from "./store/store.js";
