import { defineConfig } from "vitest/config";

// `pnpm test:postgres`: management's tests (apps/management/test/, the ones
// that run a store) again with STARLING_TEST_STORE=postgres, on one throw-away
// PostgreSQL cluster with a fresh database per test (test/test-store.ts).
// The store's own conformance suite runs on both backends in `pnpm test`.
export default defineConfig({
	test: {
		include: ["apps/management/test/**/*.test.ts"],
		exclude: ["**/node_modules/**", "**/dist/**"],
		testTimeout: 60_000,
		hookTimeout: 30_000,
		env: { STARLING_TEST_STORE: "postgres" },
		globalSetup: ["scripts/node24-check.mjs", "apps/management/test/postgres-global-setup.ts"],
	},
});
