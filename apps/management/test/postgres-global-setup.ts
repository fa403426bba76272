// vitest globalSetup of `pnpm test:postgres`: one throw-away PostgreSQL
// cluster for the whole run (test/test-store.ts makes a database per test).
import { startPostgres } from "@starling/lab";
import type { TestProject } from "vitest/node";
import { PostgresStore } from "../src/store/postgres/postgres-store.js";

export default async function setup(project: TestProject) {
	if (process.env.STARLING_TEST_STORE !== "postgres") return;
	const cluster = await startPostgres({ settings: { max_connections: "400" } });
	// Migrated once here; every test's database is a copy of it.
	const template = "starling_template";
	const store = await PostgresStore.open(await cluster.createDatabase(template), { poolSize: 1 });
	await store.close();
	project.provide("postgresAdminDsn", cluster.dsn());
	project.provide("postgresTemplate", template);
	return async () => {
		await cluster.destroy();
	};
}
