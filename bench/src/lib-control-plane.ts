import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
	MANAGEMENT_NODE_FLAGS,
	MANAGEMENT_PROCESS_ENV,
} from "@starling/management/process-options";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export function log(message: string): void {
	process.stderr.write(`[bench] ${message}\n`);
}

/**
 * The positional argument at `position` (1 = first after the benchmark's
 * name) as a positive number, or `fallback` when absent. Anything else stops
 * the benchmark with one line and exit code 2, before any lab is built.
 */
export function numberArg(position: number, name: string, fallback: number): number {
	const text = process.argv[position + 1];
	if (text === undefined || text === "") return fallback;
	const value = Number(text);
	if (!Number.isFinite(value) || value <= 0) {
		process.stderr.write(`bench: ${name} must be a positive number, got ${JSON.stringify(text)}\n`);
		process.exit(2);
	}
	return value;
}

export async function freePort(): Promise<number> {
	return new Promise((resolvePort, reject) => {
		const s = createServer();
		s.once("error", reject);
		s.listen(0, "127.0.0.1", () => {
			const addr = s.address();
			const port = typeof addr === "object" && addr ? addr.port : 0;
			s.close(() => resolvePort(port));
		});
	});
}

export interface ManagementProcess {
	port: number;
	url: string;
	adminToken: string;
	child: ChildProcess;
	rssBytes(): number;
	stop(): Promise<void>;
}

/** Starts the real management binary (apps/management/dist/main.js) on loopback with a fresh data dir. */
export async function startManagementProcess(
	env: Record<string, string> = {},
): Promise<ManagementProcess> {
	const dataDir = mkdtempSync(join(tmpdir(), "starling-bench-"));
	const port = await freePort();
	// A caller that brings its own (seeded) data dir brings the token file too.
	const tokenFile = env.STARLING_ADMIN_TOKEN_FILE ?? join(dataDir, "admin-token");
	// Started as deployments start it (the Dockerfile, start-control-plane),
	// unless BENCH_MANAGEMENT_UNTUNED=1 asks for Node's and glibc's defaults.
	const untuned = process.env.BENCH_MANAGEMENT_UNTUNED === "1";
	const flags = untuned ? [] : MANAGEMENT_NODE_FLAGS;
	const child = spawn(
		process.execPath,
		[...flags, join(repoRoot, "apps/management/dist/main.js")],
		{
			env: {
				...process.env,
				...(untuned ? {} : MANAGEMENT_PROCESS_ENV),
				STARLING_DATA_DIR: dataDir,
				STARLING_MANAGEMENT_LISTEN: `127.0.0.1:${port}`,
				STARLING_ADMIN_TOKEN_FILE: tokenFile,
				STARLING_LOG_LEVEL: process.env.BENCH_MANAGEMENT_LOG_LEVEL ?? "warn",
				NODE_OPTIONS: process.env.BENCH_MANAGEMENT_NODE_OPTIONS ?? "",
				// Its own metrics port: with the default (9090) a second management
				// on the machine fails after its API answered, dropping every stream.
				STARLING_MANAGEMENT_METRICS_LISTEN: "127.0.0.1:0",
				...env,
			},
			stdio: ["ignore", process.env.BENCH_MANAGEMENT_LOG_LEVEL ? "inherit" : "ignore", "pipe"],
		},
	);
	let stderr = "";
	child.stderr?.on("data", (d: Buffer) => {
		stderr += d.toString();
		if (process.env.BENCH_MANAGEMENT_LOG_LEVEL) process.stderr.write(d);
	});
	const url = `http://127.0.0.1:${port}`;
	const deadline = Date.now() + 15_000;
	for (;;) {
		if (child.exitCode !== null) throw new Error(`management exited: ${stderr}`);
		if (existsSync(tokenFile)) {
			try {
				const res = await fetch(`${url}/api/openapi.json`);
				if (res.ok) break;
			} catch {
				// not listening yet
			}
		}
		if (Date.now() > deadline) throw new Error(`management did not start: ${stderr}`);
		await new Promise((r) => setTimeout(r, 50));
	}
	const adminToken = readFileSync(tokenFile, "utf8").trim();
	return {
		port,
		url,
		adminToken,
		child,
		rssBytes() {
			const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
			const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
			return kb * 1024;
		},
		async stop() {
			// A child killed by a signal has signalCode set and exitCode still null.
			if (child.exitCode === null && child.signalCode === null) {
				child.kill("SIGTERM");
				await new Promise((r) => child.once("exit", r));
			}
			rmSync(dataDir, { recursive: true, force: true });
		},
	};
}

export async function createSetupKeyViaApi(
	m: ManagementProcess,
	body: Record<string, unknown> = {},
): Promise<string> {
	const res = await fetch(`${m.url}/api/setup-keys`, {
		method: "POST",
		headers: { authorization: `Token ${m.adminToken}`, "content-type": "application/json" },
		body: JSON.stringify({
			name: "bench",
			type: "reusable",
			expires_in: 86400,
			auto_groups: [],
			usage_limit: 0,
			...body,
		}),
	});
	if (!res.ok) throw new Error(`POST /api/setup-keys: ${res.status} ${await res.text()}`);
	return ((await res.json()) as { key: string }).key;
}

export function percentile(sorted: number[], p: number): number {
	if (sorted.length === 0) return Number.NaN;
	const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
	return sorted[i]!;
}

export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Runs `task` for each index with at most `limit` in flight. */
export async function pool<T>(
	count: number,
	limit: number,
	task: (i: number) => Promise<T>,
): Promise<T[]> {
	const results: T[] = new Array(count);
	let next = 0;
	await Promise.all(
		Array.from({ length: Math.min(limit, count) }, async () => {
			while (next < count) {
				const i = next++;
				results[i] = await task(i);
			}
		}),
	);
	return results;
}
