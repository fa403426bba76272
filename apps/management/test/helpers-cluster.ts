// Several management instances on one database with a real nats-server
// between them: what the cluster tests start, on SQLite and on PostgreSQL.
// The store is a parameter: a backend gives the environment that points an
// instance at a fresh database.
import type { ChildProcess } from "node:child_process";
import {
	type NatsServer,
	type PostgresCluster,
	startNatsServer,
	startPostgres,
} from "@starling/lab";
import { loadManagementConfig } from "../src/config.js";
import { type RunningManagement, startManagement } from "../src/server.js";
import { silentLogger, tempDir } from "./helpers.js";
import { spawnManagement } from "./helpers-process.js";

/** A store backend for the cluster tests: the environment of a fresh, empty database. */
export interface ClusterStoreBackend {
	name: string;
	open(): Promise<{ env: Record<string, string>; destroy(): Promise<void> }>;
}

/** SQLite: one file in a temporary data directory, shared by every instance. */
export const sqliteBackend: ClusterStoreBackend = {
	name: "sqlite",
	async open() {
		const dir = tempDir("starling-cluster-");
		return { env: { STARLING_DATA_DIR: dir.path }, destroy: async () => dir.remove() };
	},
};

/**
 * PostgreSQL: one real cluster for the test file, started at the first
 * database asked for (a failure to start fails that test), a fresh database
 * per test. Call `stopCluster` in afterAll.
 */
export function postgresBackend(): ClusterStoreBackend & { stopCluster(): Promise<void> } {
	let cluster: Promise<PostgresCluster> | undefined;
	return {
		name: "postgres",
		async open() {
			cluster ??= startPostgres();
			const dsn = await (await cluster).createDatabase();
			// The database goes with the cluster; a test leaves nothing else behind.
			return {
				env: { STARLING_STORE: "postgres", STARLING_POSTGRES_DSN: dsn },
				destroy: async () => undefined,
			};
		},
		async stopCluster() {
			const started = cluster;
			cluster = undefined;
			if (started) await (await started.catch(() => undefined))?.destroy();
		},
	};
}

/** Settings every test instance gets: fast batching, a quick check, short heartbeats. */
export const FAST_CLUSTER_ENV = {
	STARLING_SYNC_FLUSH_MS: "20",
	STARLING_SYNC_CHECK_MS: "500",
	STARLING_INSTANCE_HEARTBEAT_MS: "200",
	STARLING_INSTANCE_EXPIRE_MS: "1000",
};

/** Starts one instance in this process (real sockets), listening on a free port. */
export function startInstance(env: Record<string, string>): Promise<RunningManagement> {
	return startManagement(
		loadManagementConfig({
			STARLING_MANAGEMENT_LISTEN: "127.0.0.1:0",
			STARLING_MANAGEMENT_METRICS_LISTEN: "off",
			...FAST_CLUSTER_ENV,
			...env,
		}),
		silentLogger,
	);
}

export interface ManagementProcess {
	child: ChildProcess;
	port: number;
	url: string;
	output(): string;
}

/**
 * Starts the built binary (`pnpm build` first) as its own process on `port`
 * (default: a free one); resolves once REST answers.
 */
export async function startInstanceProcess(
	env: Record<string, string>,
	port?: number,
): Promise<ManagementProcess> {
	const started = await spawnManagement(
		{
			STARLING_MANAGEMENT_METRICS_LISTEN: "off",
			STARLING_LOG_LEVEL: "warn",
			...FAST_CLUSTER_ENV,
			...env,
		},
		{ port },
	);
	return { ...started, output: () => started.output().all };
}

/** A database and a nats-server for a test; `stop` stops both (call it in afterEach). */
export async function startClusterBase(backend: ClusterStoreBackend): Promise<{
	nats: NatsServer;
	/** The environment every instance gets: the database and STARLING_NATS_URL. */
	env: Record<string, string>;
	stop(): Promise<void>;
}> {
	const db = await backend.open();
	let nats: NatsServer;
	try {
		nats = await startNatsServer();
	} catch (err) {
		await db.destroy();
		throw err;
	}
	return {
		nats,
		env: { ...db.env, STARLING_NATS_URL: nats.url },
		async stop() {
			await nats.stop();
			await db.destroy();
		},
	};
}
