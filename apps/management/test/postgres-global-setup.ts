// vitest globalSetup of `pnpm test:postgres`: one throw-away PostgreSQL
// cluster for the whole run (test/test-store.ts makes a database per test).
import { startPostgres } from "@starling/lab";
import type { TestProject } from "vitest/node";

export default async function setup(project: TestProject) {
	if (process.env.STARLING_TEST_STORE !== "postgres") return;
	const cluster = await startPostgres({ settings: { max_connections: "400" } });
	project.provide("postgresAdminDsn", cluster.dsn());
	return async () => {
		await cluster.destroy();
	};
}
