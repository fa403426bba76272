export * from "./system/exec.js";
