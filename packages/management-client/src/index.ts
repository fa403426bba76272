export * from "./management-client.js";
export * from "./target.js";
