export * from "./box.js";
export * from "./envelope.js";
export * from "./keys.js";
