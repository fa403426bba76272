// The built management binary (`pnpm build` first) as child processes of a
// test, and the throw-away PostgreSQL cluster of a test file: the set-ups the
// process, PostgreSQL, migration and failover tests share.
import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { freeLoopbackPort, type PostgresCluster, startPostgres } from "@starling/lab";
import { afterAll, afterEach, beforeAll } from "vitest";
import { tempDir } from "./helpers.js";

export const MAIN = resolve(__dirname, "../dist/main.js");

export interface SpawnedManagement {
	child: ChildProcess;
	port: number;
	/** `http://127.0.0.1:<port>`: REST and gRPC. */
	url: string;
	/** What it wrote so far: JSON log lines on stdout, the admin token and errors on stderr, and both as they came. */
	output(): { stdout: string; stderr: string; all: string };
}

/**
 * When a starting process counts as up: `rest` once REST answers
 * (`/api/openapi.json`); `serving` once it logs "management is serving".
 */
export type ReadyWhen = "rest" | "serving";

/** A generous start deadline: a loaded machine can take many seconds to start node. */
const START_DEADLINE_MS = 30_000;

/**
 * Starts MAIN with `env` on top of this process's environment, listening on
 * `port` (default: a free one) with its metrics on a free port; resolves once
 * it is up. Throws with its stderr when it exits first or is not up in time
 * (it is killed then).
 */
export async function spawnManagement(
	env: Record<string, string>,
	options: { port?: number; ready?: ReadyWhen } = {},
): Promise<SpawnedManagement> {
	const port = options.port ?? (await freeLoopbackPort());
	const child = spawn(process.execPath, [MAIN], {
		env: {
			...process.env,
			STARLING_MANAGEMENT_LISTEN: `127.0.0.1:${port}`,
			STARLING_MANAGEMENT_METRICS_LISTEN: "127.0.0.1:0",
			...env,
		},
		stdio: ["ignore", "pipe", "pipe"],
	});
	let stdout = "";
	let stderr = "";
	let all = "";
	child.stdout?.on("data", (d: Buffer) => {
		stdout += d.toString();
		all += d.toString();
	});
	child.stderr?.on("data", (d: Buffer) => {
		stderr += d.toString();
		all += d.toString();
	});
	const url = `http://127.0.0.1:${port}`;
	const started: SpawnedManagement = { child, port, url, output: () => ({ stdout, stderr, all }) };
	const ready = options.ready ?? "rest";
	const deadline = Date.now() + START_DEADLINE_MS;
	while (Date.now() < deadline) {
		if (child.exitCode !== null) throw new Error(`management exited early: ${stderr}`);
		if (ready === "serving" && stdout.includes("management is serving")) return started;
		if (ready === "rest") {
			try {
				if ((await fetch(`${url}/api/openapi.json`)).ok) return started;
			} catch {
				// not listening yet
			}
		}
		await new Promise((r) => setTimeout(r, 50));
	}
	child.kill("SIGKILL");
	throw new Error(
		`management did not start within ${START_DEADLINE_MS / 1000} s on ${url}: ${all}`,
	);
}

/**
 * The processes and data folders of a test file's tests, killed (SIGKILL)
 * and removed after each test. Call at the top of the file.
 */
export function trackManagementProcesses() {
	const children: ChildProcess[] = [];
	const dirs: ReturnType<typeof tempDir>[] = [];
	afterEach(async () => {
		for (const c of children.splice(0)) {
			if (c.exitCode === null && c.signalCode === null) {
				c.kill("SIGKILL");
				await new Promise((r) => c.once("exit", r));
			}
		}
		for (const d of dirs.splice(0)) d.remove();
	});
	return {
		/** A temporary folder removed after the test. */
		dir(): ReturnType<typeof tempDir> {
			const d = tempDir();
			dirs.push(d);
			return d;
		},
		/** `spawnManagement`, the process killed after the test. */
		async spawn(
			env: Record<string, string>,
			options?: { port?: number; ready?: ReadyWhen },
		): Promise<SpawnedManagement> {
			const started = await spawnManagement(env, options);
			children.push(started.child);
			return started;
		},
	};
}

/**
 * One throw-away PostgreSQL cluster for the test file (packages/lab's
 * `startPostgres`): started before its tests, destroyed after them. The
 * returned function gives it, inside tests and hooks that run later.
 */
export function postgresForFile(
	options?: Parameters<typeof startPostgres>[0],
): () => PostgresCluster {
	let cluster: PostgresCluster | undefined;
	beforeAll(async () => {
		cluster = await startPostgres(options);
	}, 60_000);
	afterAll(async () => {
		await cluster?.destroy();
	});
	return () => {
		if (!cluster) throw new Error("the PostgreSQL cluster of this file did not start");
		return cluster;
	};
}
