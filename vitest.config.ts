import { defineConfig } from "vitest/config";

export default defineConfig({
	test: {
		include: ["packages/*/src/**/*.test.ts", "apps/*/src/**/*.test.ts", "apps/*/test/**/*.test.ts"],
		exclude: ["**/node_modules/**", "**/dist/**"],
		testTimeout: 60_000,
		hookTimeout: 30_000,
		// Stops the run with one line unless it is on Node 24 (the project's runtime); then the
		// network-lab tests run, or the run fails in one line saying what is missing; they are
		// skipped only when asked (STARLING_SKIP_LAB=1), and then a line says so.
		globalSetup: ["scripts/node24-check.mjs", "packages/lab/src/vitest/gate.ts"],
		reporters: ["default", "./packages/lab/src/vitest/skip-reporter.ts"],
	},
});
