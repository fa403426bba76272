import { resolve } from "node:path";
import { defineConfig } from "vitest/config";

// The compose stack test alone (scripts/ci/docker-test.sh runs it after
// building the images); not part of `pnpm test`.
export default defineConfig({
	root: resolve(__dirname, "../.."),
	test: {
		include: ["docker/test/**/*.test.ts"],
		testTimeout: 180_000,
		hookTimeout: 240_000,
		fileParallelism: false,
		reporters: ["default"],
		globalSetup: ["scripts/node24-check.mjs"],
	},
});
