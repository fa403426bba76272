export * from "./box.js";
export * from "./crc32.js";
export * from "./envelope.js";
export * from "./keys.js";
