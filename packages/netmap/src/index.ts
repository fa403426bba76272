export * from "./delta.js";
