export * from "./delta.js";
export * from "./firewall-changes.js";
