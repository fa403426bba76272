import { defineConfig } from "vitest/config";

export default defineConfig({
	test: {
		include: ["packages/*/src/**/*.test.ts", "apps/*/src/**/*.test.ts", "apps/*/test/**/*.test.ts"],
		exclude: ["**/node_modules/**", "**/dist/**"],
		testTimeout: 60_000,
		hookTimeout: 30_000,
		reporters: ["default"],
		// Stops the run with one line unless it is on Node 24 (the project's runtime).
		globalSetup: ["scripts/node24-check.mjs"],
	},
});
