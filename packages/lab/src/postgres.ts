import { execFileSync } from "node:child_process";
import {
	chmodSync,
	chownSync,
	existsSync,
	mkdirSync,
	mkdtempSync,
	readdirSync,
	readFileSync,
	rmSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { freeLoopbackPort } from "./ports.js";

// Throw-away PostgreSQL clusters for tests: initdb + pg_ctl from Debian's
// postgresql-15 in a temporary folder, listening on a free loopback port and
// a Unix socket in that folder, trust authentication, durability off (a test
// cluster is thrown away). The server runs as the `postgres` user when the
// tests run as root (initdb refuses root).
//
// Every folder is named `starling-pgtest-<pid of the test process>-...`: a
// new cluster first clears what a crashed run left behind (folders whose
// owner process is gone, and the server still running in them), never a
// live run's cluster.

/** Where Debian installs PostgreSQL 15's server programs (not on PATH). */
export const POSTGRES_BIN = "/usr/lib/postgresql/15/bin";
/** The marker in every test cluster's folder name. */
export const POSTGRES_TEST_MARKER = "starling-pgtest-";

export interface PostgresCluster {
	readonly host: "127.0.0.1";
	readonly port: number;
	/** The temporary folder: data/, server.log and the Unix socket. */
	readonly dir: string;
	/** The server's process id while it runs (postmaster.pid), else undefined. */
	pid(): number | undefined;
	/** A connection string for `database` (user postgres, no password). */
	dsn(database?: string): string;
	/**
	 * Creates a database (a fresh name when none is given) and returns its
	 * DSN; `template` copies an existing database (which must have no
	 * connections), e.g. one already migrated.
	 */
	createDatabase(name?: string, options?: { template?: string }): Promise<string>;
	/** Stops the server (fast shutdown), keeping its data: tests of a lost database. */
	stopServer(): Promise<void>;
	/** Starts the stopped server again on the same port with the same data. */
	startServer(): Promise<void>;
	/** Stops the server (by PID if pg_ctl cannot) and removes the folder. Safe to call twice. */
	destroy(): Promise<void>;
}

const asRoot = process.getuid?.() === 0;

/** Runs a PostgreSQL program, as `postgres` when we are root. */
function pgCommand(program: string, args: string[]): [string, string[]] {
	const path = join(POSTGRES_BIN, program);
	return asRoot ? ["runuser", ["-u", "postgres", "--", path, ...args]] : [path, args];
}

async function pg(program: string, args: string[]): Promise<void> {
	const [file, argv] = pgCommand(program, args);
	const result = await execa(file, argv, { reject: false, all: true });
	if (result.exitCode !== 0) {
		throw new Error(`${program} failed (exit ${result.exitCode}): ${String(result.all).trim()}`);
	}
}

/** True while process `pid` runs (a zombie, exited but not yet reaped, counts as gone). */
export function isRunning(pid: number): boolean {
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
		if (stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z") return false;
	} catch {
		// No /proc entry: ask the kernel below.
	}
	try {
		process.kill(pid, 0);
		return true;
	} catch (err) {
		return (err as NodeJS.ErrnoException).code === "EPERM";
	}
}

/** The postmaster's PID from `data/postmaster.pid`, when the file exists. */
function postmasterPid(dir: string): number | undefined {
	const file = join(dir, "data", "postmaster.pid");
	if (!existsSync(file)) return undefined;
	const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
	return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** True when process `pid` is a PostgreSQL server of `dir` (its command line names the folder). */
function isServerOf(pid: number, dir: string): boolean {
	try {
		return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(dir);
	} catch {
		return false;
	}
}

/** Stops a server by PID: SIGQUIT is PostgreSQL's immediate shutdown; SIGKILL if it lingers. */
async function killServer(pid: number, dir: string): Promise<void> {
	if (!isServerOf(pid, dir)) return;
	process.kill(pid, "SIGQUIT");
	const deadline = Date.now() + 5000;
	while (isRunning(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
	if (isServerOf(pid, dir)) process.kill(pid, "SIGKILL");
}

/**
 * Removes what crashed runs left: folders with our marker whose test process
 * is gone, after stopping the server still running in them.
 */
export async function clearPostgresLeftovers(base = tmpdir()): Promise<string[]> {
	const cleared: string[] = [];
	for (const name of readdirSync(base)) {
		if (!name.startsWith(POSTGRES_TEST_MARKER)) continue;
		const owner = Number(name.slice(POSTGRES_TEST_MARKER.length).split("-")[0]);
		if (Number.isInteger(owner) && owner > 0 && isRunning(owner)) continue;
		const dir = join(base, name);
		const pid = postmasterPid(dir);
		if (pid !== undefined) await killServer(pid, dir);
		rmSync(dir, { recursive: true, force: true });
		cleared.push(dir);
	}
	return cleared;
}

/** Every cluster this process started and has not destroyed: stopped on exit even when a test failed. */
const running = new Set<{ dir: string; pid: () => number | undefined }>();
let exitHookInstalled = false;
function installExitHook(): void {
	if (exitHookInstalled) return;
	exitHookInstalled = true;
	process.once("exit", () => {
		for (const cluster of running) {
			const pid = cluster.pid();
			if (pid !== undefined && isServerOf(pid, cluster.dir)) process.kill(pid, "SIGQUIT");
			rmSync(cluster.dir, { recursive: true, force: true });
		}
	});
}

export interface StartPostgresOptions {
	/** Extra server settings (`-c name=value`). */
	settings?: Record<string, string>;
}

/**
 * Starts a throw-away PostgreSQL 15 cluster (about 2 s). A cluster that
 * cannot start throws with the server's log: a test failure, never a skip.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresCluster> {
	await clearPostgresLeftovers();
	if (!existsSync(join(POSTGRES_BIN, "initdb"))) {
		throw new Error(`PostgreSQL 15 is not installed (${POSTGRES_BIN}): run scripts/setup.sh`);
	}
	const dir = mkdtempSync(join(tmpdir(), `${POSTGRES_TEST_MARKER}${process.pid}-`));
	// mkdtemp makes a 0700 folder the postgres user cannot enter.
	chmodSync(dir, 0o755);
	const data = join(dir, "data");
	mkdirSync(data, { mode: 0o700 });
	if (asRoot) {
		const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
		const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
		chownSync(data, uid, gid);
		chownSync(dir, uid, gid);
	}
	const entry = { dir, pid: () => postmasterPid(dir) };
	running.add(entry);
	installExitHook();
	const log = join(dir, "server.log");
	let port = 0;
	const settings = {
		fsync: "off",
		synchronous_commit: "off",
		full_page_writes: "off",
		max_connections: "200",
		...options.settings,
	};

	const start = async () => {
		const flags = [
			"-c listen_addresses=127.0.0.1",
			`-p ${port}`,
			`-k ${dir}`,
			...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`),
		].join(" ");
		await pg("pg_ctl", ["-D", data, "-l", log, "-w", "-t", "30", "-o", flags, "start"]);
	};
	const stop = async () => {
		const pid = postmasterPid(dir);
		if (pid === undefined) return;
		try {
			await pg("pg_ctl", ["-D", data, "-m", "fast", "-w", "-t", "20", "stop"]);
		} catch {
			await killServer(pid, dir);
		}
		// pg_ctl returns once postmaster.pid is gone, which the postmaster
		// removes just before it exits: wait for the exit itself, so that a
		// stopped server is really gone (its port free, its PID unused).
		const deadline = Date.now() + 5000;
		while (isRunning(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
		if (isRunning(pid)) await killServer(pid, dir);
	};

	try {
		await pg("initdb", [
			"-D",
			data,
			"-U",
			"postgres",
			"-A",
			"trust",
			"--no-sync",
			"-E",
			"UTF8",
			"--locale=C.UTF-8",
		]);
		port = await freeLoopbackPort();
		await start();
	} catch (err) {
		const serverLog = existsSync(log) ? readFileSync(log, "utf8").slice(-2000) : "";
		await stop().catch(() => undefined);
		rmSync(dir, { recursive: true, force: true });
		running.delete(entry);
		throw new Error(`could not start PostgreSQL: ${(err as Error).message}\n${serverLog}`);
	}

	let counter = 0;
	const cluster: PostgresCluster = {
		host: "127.0.0.1",
		port,
		dir,
		pid: () => postmasterPid(dir),
		dsn: (database = "postgres") => `postgres://postgres@127.0.0.1:${port}/${database}`,
		async createDatabase(name, options = {}) {
			counter += 1;
			const database = name ?? `t${process.pid}_${counter}_${Date.now().toString(36)}`;
			const template = options.template ? ["-T", options.template] : [];
			await pg("createdb", [
				"-h",
				dir,
				"-p",
				String(port),
				"-U",
				"postgres",
				...template,
				database,
			]);
			return cluster.dsn(database);
		},
		stopServer: stop,
		startServer: start,
		async destroy() {
			if (!running.has(entry)) return;
			await stop();
			rmSync(dir, { recursive: true, force: true });
			running.delete(entry);
		},
	};
	return cluster;
}
