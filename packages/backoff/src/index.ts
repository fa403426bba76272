export * from "./backoff.js";
