export { createSetupKey } from "./app/setup-keys.js";
export * from "./config.js";
export * from "./server.js";
export { SqliteStore } from "./store/sqlite-store.js";
export type { Store } from "./store/store.js";
