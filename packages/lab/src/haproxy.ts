import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
	type HaproxyConfig,
	type HaproxyServerState,
	parseHaproxyStat,
	renderHaproxyConfig,
} from "./haproxy-config.js";
import { isAlive, killOrphans } from "./leftovers.js";
import { freeLoopbackPort } from "./ports.js";
import { waitFor } from "./wait.js";

/**
 * Test proxies run from a folder named `<MARKER><owner pid>-...` (the config
 * path is on their command line), so a crashed run's proxies and folders are found.
 */
const MARKER = "starling-test-haproxy-";
const execFileAsync = promisify(execFile);

export type HaproxyOptions = Omit<HaproxyConfig, "listen" | "adminSocket"> & {
	/** Default: a free loopback port. */
	port?: number;
	/**
	 * The address it listens on. Default 127.0.0.1; a root uplink's address
	 * (`addRootUplink`) lets lab namespaces reach it.
	 */
	address?: string;
};

export interface RunningHaproxy {
	readonly port: number;
	/** `http://<address>:<port>`, or `https://` with a TLS PEM file. */
	readonly url: string;
	readonly pid: number;
	/** The haproxy.cfg it runs. */
	readonly configText: string;
	/** `show stat` from the admin socket: every frontend, backend and server with its state. */
	states(): Promise<HaproxyServerState[]>;
	/** Resolves once `backend/server` has `status` (e.g. `UP`, `DOWN`). */
	waitForServer(backend: string, server: string, status: string, timeoutMs?: number): Promise<void>;
	/** SIGTERM (SIGKILL after 5 s); resolves once it is gone and its folder removed. */
	stop(): Promise<void>;
	/** What haproxy printed (last 256 KiB). */
	output(): string;
}

/** Kills proxies of crashed runs and removes their folders. */
function clearLeftovers(): void {
	killOrphans(MARKER);
	for (const entry of readdirSync(tmpdir())) {
		if (!entry.startsWith(MARKER)) continue;
		const owner = Number(/^\d+/.exec(entry.slice(MARKER.length))?.[0]);
		if (owner && !isAlive(owner)) rmSync(join(tmpdir(), entry), { recursive: true, force: true });
	}
}

/** Sends one command to HAProxy's admin socket and returns its whole answer. */
function adminCommand(socketPath: string, command: string): Promise<string> {
	return new Promise((resolve, reject) => {
		const socket = connect(socketPath);
		let answer = "";
		socket.setTimeout(5_000, () => socket.destroy(new Error(`${command}: no answer in 5 s`)));
		socket.on("connect", () => socket.end(`${command}\n`));
		socket.on("data", (chunk) => {
			answer += chunk.toString();
		});
		socket.on("error", reject);
		socket.on("close", () => resolve(answer));
	});
}

/**
 * Debian's haproxy (2.6) in the foreground (`haproxy -db -f cfg`) on a free
 * loopback port, in front of `options.backends`, with an admin socket in its
 * own temporary folder. Proxies and folders a crashed earlier run left are
 * removed first. Throws (a test failure, not a skip) when the config is
 * refused or the proxy does not start; the process is stopped then too.
 */
export async function startHaproxy(options: HaproxyOptions): Promise<RunningHaproxy> {
	clearLeftovers();
	const port = options.port ?? (await freeLoopbackPort());
	const address = options.address ?? "127.0.0.1";
	const dir = mkdtempSync(join(tmpdir(), `${MARKER}${process.pid}-`));
	const adminSocket = join(dir, "admin.sock");
	const configPath = join(dir, "haproxy.cfg");
	let child: ChildProcess | undefined;
	let output = "";

	const stop = async () => {
		const c = child;
		if (c && c.exitCode === null && c.signalCode === null) {
			const exited = new Promise((resolve) => c.once("exit", resolve));
			c.kill("SIGTERM");
			const escalate = setTimeout(() => c.kill("SIGKILL"), 5_000);
			await exited;
			clearTimeout(escalate);
		}
		rmSync(dir, { recursive: true, force: true });
	};

	try {
		const { port: _port, address: _address, ...rest } = options;
		const configText = renderHaproxyConfig({
			...rest,
			listen: { address, port },
			adminSocket,
		});
		writeFileSync(configPath, configText);
		// `-c` names the bad line; starting with a bad config would only exit.
		await execFileAsync("haproxy", ["-c", "-q", "-f", configPath]).catch((err: unknown) => {
			const e = err as { stderr?: string; message: string };
			throw new Error(`haproxy refuses its config: ${(e.stderr ?? e.message).trim()}`);
		});

		const c = spawn("haproxy", ["-db", "-f", configPath], { stdio: ["ignore", "pipe", "pipe"] });
		child = c;
		const append = (chunk: Buffer) => {
			output = (output + chunk.toString()).slice(-256 * 1024);
		};
		c.stdout?.on("data", append);
		c.stderr?.on("data", append);
		const failed = new Promise<string>((resolve) => {
			c.once("error", (err) => resolve(err.message));
			c.once("exit", (code, signal) => resolve(`exited (${code ?? signal})`));
		});
		// Up when its admin socket answers (it is bound after the listener).
		const up = waitFor(
			"haproxy's admin socket",
			async () =>
				(await adminCommand(adminSocket, "show info")).includes("Pid:") ? true : undefined,
			10_000,
			50,
		);
		up.catch(() => {}); // when the process fails first, its outcome is the error
		const outcome = await Promise.race([up.then(() => undefined), failed]);
		if (outcome !== undefined) throw new Error(`haproxy ${outcome}: ${output.trim().slice(-500)}`);

		const states = async () => parseHaproxyStat(await adminCommand(adminSocket, "show stat"));
		return {
			port,
			url: `${options.tlsPemFile ? "https" : "http"}://${address}:${port}`,
			get pid() {
				return c.pid ?? 0;
			},
			configText,
			states,
			async waitForServer(backend, server, status, timeoutMs = 10_000) {
				await waitFor(
					`haproxy server ${backend}/${server} ${status}`,
					async () => {
						const row = (await states()).find((s) => s.backend === backend && s.server === server);
						if (!row) throw new Error(`no server ${backend}/${server}`);
						if (row.status !== status) throw new Error(`it is ${row.status}`);
						return true;
					},
					timeoutMs,
					100,
				);
			},
			stop,
			output: () => output,
		};
	} catch (err) {
		await stop();
		throw err;
	}
}
