export * from "./backend.js";
export * from "./cidr.js";
export * from "./device.js";
export * from "./ip-state.js";
export * from "./plan.js";
export * from "./wg-dump.js";
