/**
 * Creating and deleting the WireGuard interface, with the kernel module or with wireguard-go.
 * Everything after creation (keys, peers, addresses) is the same `wg`/`ip` commands for both,
 * see device.ts.
 */

import { spawn as spawnChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createInterface as readLines } from "node:readline";
import type { Logger } from "@starling/log";
import { CommandError, type Runner } from "../system/exec.js";

export interface WireGuardBackend {
	readonly kind: "kernel" | "userspace";
	/** Creates the interface, or keeps it when it already exists and is usable. */
	createInterface(name: string): Promise<void>;
	/** Removes the interface and whatever belongs to it; no error when it is already gone. */
	deleteInterface(name: string): Promise<void>;
	interfaceExists(name: string): Promise<boolean>;
}

export type BackendPreference = "auto" | "kernel" | "userspace";

/** One line, for the operator. */
export class WireGuardBackendError extends Error {
	override name = "WireGuardBackendError";
}

export const PERMISSION_DENIED_MESSAGE =
	"permission denied creating interfaces: run as root (CAP_NET_ADMIN)";

/** Where wireguard-go listens and `wg` looks; compiled into both, so not configurable. */
export const WIREGUARD_SOCKET_DIRECTORY = "/var/run/wireguard";

export function socketPathFor(name: string): string {
	return `${WIREGUARD_SOCKET_DIRECTORY}/${name}.sock`;
}

/**
 * Linux interface names: at most 15 bytes, no "/", whitespace or ":". Checked before the name
 * becomes part of a socket path or a command.
 */
export function assertInterfaceName(name: string): void {
	if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name) || name === "." || name === "..") {
		throw new WireGuardBackendError(
			`invalid interface name ${JSON.stringify(name)}: 1-15 characters of letters, digits, "_", "-", "."`,
		);
	}
}

function rethrowPermission(error: unknown): never {
	if (error instanceof CommandError && error.permissionDenied) {
		throw new WireGuardBackendError(PERMISSION_DENIED_MESSAGE);
	}
	throw error;
}

async function linkExists(runner: Runner, name: string): Promise<boolean> {
	const result = await runner("ip", ["link", "show", "dev", name], { allowFailure: true });
	return result.exitCode === 0;
}

/** undefined: no such link; "": a link without a kind (e.g. a physical NIC). */
async function readLinkKind(runner: Runner, name: string): Promise<string | undefined> {
	const result = await runner("ip", ["-j", "-d", "link", "show", "dev", name], {
		allowFailure: true,
	});
	if (result.exitCode !== 0) return undefined;
	try {
		const [link] = JSON.parse(result.stdout) as Array<{ linkinfo?: { info_kind?: unknown } }>;
		const kind = link?.linkinfo?.info_kind;
		return typeof kind === "string" ? kind : "";
	} catch {
		return "";
	}
}

function sleep(milliseconds: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

export class KernelBackend implements WireGuardBackend {
	readonly kind = "kernel";

	constructor(private readonly runner: Runner) {}

	async createInterface(name: string): Promise<void> {
		assertInterfaceName(name);
		const kind = await readLinkKind(this.runner, name);
		// An interface left by an earlier run is reused: its peers keep their sessions and the
		// device's apply* calls reconcile the rest.
		if (kind === "wireguard") return;
		if (kind !== undefined) {
			throw new WireGuardBackendError(
				`interface ${name} already exists and is not a kernel WireGuard interface (kind ${kind || "none"}); remove it with: ip link del ${name}`,
			);
		}
		await this.runner("ip", ["link", "add", "dev", name, "type", "wireguard"]).catch(
			rethrowPermission,
		);
	}

	async deleteInterface(name: string): Promise<void> {
		assertInterfaceName(name);
		if (!(await linkExists(this.runner, name))) return;
		await this.runner("ip", ["link", "del", "dev", name]).catch(rethrowPermission);
	}

	interfaceExists(name: string): Promise<boolean> {
		assertInterfaceName(name);
		return linkExists(this.runner, name);
	}
}

export interface ChildExit {
	code: number | null;
	signal: NodeJS.Signals | null;
	/** Set when it could not be started at all. */
	error?: Error;
}

/** A long-running process as the backend needs it: whether and how it ended, and a way to signal it. */
export interface SpawnedChild {
	readonly pid: number | undefined;
	readonly exited: Promise<ChildExit>;
	kill(signal: NodeJS.Signals): void;
}

export interface SpawnOptions {
	/** Added to the inherited environment. */
	env: Record<string, string>;
	/** Each line the process prints, stdout and stderr alike. */
	onOutputLine: (line: string) => void;
}

/**
 * Starts a long-running process. The default spawns on this machine; tests pass one that starts
 * it inside a lab host, next to where the Runner runs its commands.
 */
export type ProcessSpawner = (
	command: string,
	args: readonly string[],
	options: SpawnOptions,
) => SpawnedChild;

export const spawnProcess: ProcessSpawner = (command, args, options) => {
	const child = spawnChildProcess(command, [...args], {
		env: { ...process.env, ...options.env },
		stdio: ["ignore", "pipe", "pipe"],
	});
	const exited = new Promise<ChildExit>((resolve) => {
		child.once("error", (error) => resolve({ code: null, signal: null, error }));
		// "close" rather than "exit": by then all its output has been read, last words included.
		child.once("close", (code, signal) => resolve({ code, signal }));
	});
	for (const stream of [child.stdout, child.stderr]) {
		readLines({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on(
			"line",
			options.onOutputLine,
		);
	}
	return {
		pid: child.pid,
		exited,
		kill: (signal) => {
			child.kill(signal);
		},
	};
};

export interface UserspaceBackendOptions {
	runner: Runner;
	spawn?: ProcessSpawner;
	/** wireguard-go's output is logged here (its ERROR lines as warn, the rest as debug). */
	logger?: Logger;
	/** Default "wireguard-go". */
	binary?: string;
	/** How long wireguard-go may take to open its control socket. Default 5000. */
	startTimeoutMs?: number;
	/** How long to wait for it to exit before signalling harder. Default 3000. */
	stopTimeoutMs?: number;
	/**
	 * wireguard-go died on its own. The interface and its whole configuration are gone with it;
	 * the owner decides whether to create and configure it again.
	 */
	onUnexpectedExit?: (name: string, reason: string) => void;
}

interface SupervisedProcess {
	child: SpawnedChild;
	exitStatus: ChildExit | undefined;
	/** Set once it answered on its socket: an exit before that is a failed start, not a crash. */
	ready: boolean;
	/** Set when we stop it, so its exit is not reported as a crash. */
	stopping: boolean;
	/** The last lines it printed, for error messages. */
	recentOutput: string[];
}

const RECENT_OUTPUT_LINES = 20;
const POLL_INTERVAL_MS = 20;
/** "DEBUG: (wg0) 2022/03/16 12:00:00 message" */
const WIREGUARD_GO_LINE =
	/^(DEBUG|INFO|ERROR): \([^)]*\) \d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2} (.*)$/;

function describeExit(status: ChildExit): string {
	if (status.error) return status.error.message;
	return status.signal ? `killed by ${status.signal}` : `exit code ${status.code}`;
}

/** wireguard-go in the foreground (`-f`), one child process per interface, supervised by us. */
export class UserspaceBackend implements WireGuardBackend {
	readonly kind = "userspace";
	private readonly runner: Runner;
	private readonly spawn: ProcessSpawner;
	private readonly logger: Logger | undefined;
	private readonly binary: string;
	private readonly startTimeoutMs: number;
	private readonly stopTimeoutMs: number;
	private readonly onUnexpectedExit: ((name: string, reason: string) => void) | undefined;
	private readonly processes = new Map<string, SupervisedProcess>();
	/** Creating and deleting run one at a time: each starts by looking at what is there. */
	private queue: Promise<unknown> = Promise.resolve();

	constructor(options: UserspaceBackendOptions) {
		this.runner = options.runner;
		this.spawn = options.spawn ?? spawnProcess;
		this.logger = options.logger;
		this.binary = options.binary ?? "wireguard-go";
		this.startTimeoutMs = options.startTimeoutMs ?? 5000;
		this.stopTimeoutMs = options.stopTimeoutMs ?? 3000;
		this.onUnexpectedExit = options.onUnexpectedExit;
	}

	/** The wireguard-go process id for an interface we started, for diagnostics. */
	processIdOf(name: string): number | undefined {
		const supervised = this.processes.get(name);
		return supervised?.exitStatus === undefined ? supervised?.child.pid : undefined;
	}

	private exclusive<T>(operation: () => Promise<T>): Promise<T> {
		const result = this.queue.then(operation);
		this.queue = result.catch(() => {});
		return result;
	}

	createInterface(name: string): Promise<void> {
		assertInterfaceName(name);
		return this.exclusive(() => this.create(name));
	}

	deleteInterface(name: string): Promise<void> {
		assertInterfaceName(name);
		return this.exclusive(() => this.remove(name));
	}

	private async create(name: string): Promise<void> {
		const running = this.processes.get(name);
		if (running && running.exitStatus === undefined && (await this.isUsable(name))) return;
		if (running) await this.remove(name);

		const kind = await readLinkKind(this.runner, name);
		if (kind !== undefined) {
			if (kind !== "tun" && kind !== "wireguard") {
				throw new WireGuardBackendError(
					`interface ${name} already exists and is not a WireGuard interface (kind ${kind || "none"}); remove it with: ip link del ${name}`,
				);
			}
			// Most likely the wireguard-go of an agent that died without cleaning up: we cannot
			// supervise a process we did not start, so remove it (deleting the link ends it).
			this.logger?.warn(
				{ interface: name, kind },
				"removing WireGuard interface left by an earlier run",
			);
			await this.runner("ip", ["link", "del", "dev", name]).catch(rethrowPermission);
		}
		await this.clearSocket(name);

		const supervised = this.startProcess(name);
		this.processes.set(name, supervised);
		try {
			await this.waitUntilReady(name, supervised);
		} catch (error) {
			supervised.stopping = true;
			supervised.child.kill("SIGTERM");
			await this.stopProcess(supervised);
			this.processes.delete(name);
			await this.clearSocket(name).catch(() => {});
			throw error;
		}
		supervised.ready = true;
		this.logger?.info({ interface: name, pid: supervised.child.pid }, "wireguard-go started");
	}

	private async remove(name: string): Promise<void> {
		const supervised = this.processes.get(name);
		if (supervised) supervised.stopping = true;
		// Deleting the link makes wireguard-go shut down cleanly (exit 0, socket removed), and
		// works for a process we don't hold too.
		if (await linkExists(this.runner, name)) {
			await this.runner("ip", ["link", "del", "dev", name]).catch(rethrowPermission);
		}
		if (supervised) {
			await this.stopProcess(supervised);
			this.processes.delete(name);
		}
		await this.clearSocket(name);
	}

	interfaceExists(name: string): Promise<boolean> {
		assertInterfaceName(name);
		return linkExists(this.runner, name);
	}

	private startProcess(name: string): SupervisedProcess {
		const log = this.logger?.child({ interface: name, component: "wireguard-go" });
		const recentOutput: string[] = [];
		const child = this.spawn(this.binary, ["-f", name], {
			env: {
				// Set by wireguard-go itself for its daemon child; it also silences the banner
				// that tells users to prefer the kernel module.
				WG_PROCESS_FOREGROUND: "1",
				LOG_LEVEL: this.logger?.isLevelEnabled("debug") ? "verbose" : "error",
			},
			onOutputLine: (line) => {
				if (line.trim() === "") return;
				recentOutput.push(line);
				if (recentOutput.length > RECENT_OUTPUT_LINES) recentOutput.shift();
				const match = WIREGUARD_GO_LINE.exec(line);
				// wireguard-go reports routine events at ERROR (e.g. a handshake to a peer with no
				// endpoint yet): worth a warning, not an error of ours.
				if (match?.[1] === "ERROR") log?.warn(match[2]);
				else log?.debug(match?.[2] ?? line);
			},
		});
		const supervised: SupervisedProcess = {
			child,
			exitStatus: undefined,
			ready: false,
			stopping: false,
			recentOutput,
		};
		void child.exited.then((status) => {
			supervised.exitStatus = status;
			if (supervised.ready && !supervised.stopping) this.reportCrash(name, supervised, status);
		});
		return supervised;
	}

	private reportCrash(name: string, supervised: SupervisedProcess, status: ChildExit): void {
		const lastLine = supervised.recentOutput.at(-1);
		const reason = `wireguard-go for ${name} exited unexpectedly (${describeExit(status)})${lastLine ? `: ${lastLine}` : ""}`;
		this.logger?.error({ interface: name }, reason);
		if (this.processes.get(name) === supervised) this.processes.delete(name);
		this.onUnexpectedExit?.(name, reason);
	}

	/**
	 * Ready = the control socket listens and `wg` can talk through it. Listening, not just there:
	 * wireguard-go bind()s the socket before it listen()s, and `wg` unlinks a socket that refuses
	 * its connection (it takes it for a dead daemon's); wireguard-go then exits with "Failed to
	 * listen on uapi socket: no such file or directory".
	 */
	private async isUsable(name: string): Promise<boolean> {
		const listening = await this.runner(
			"ss",
			["-xnH", "state", "listening", "src", socketPathFor(name)],
			{ allowFailure: true },
		);
		if (listening.exitCode !== 0 || listening.stdout.trim() === "") return false;
		const show = await this.runner("wg", ["show", name], { allowFailure: true });
		return show.exitCode === 0;
	}

	private async waitUntilReady(name: string, supervised: SupervisedProcess): Promise<void> {
		const deadline = Date.now() + this.startTimeoutMs;
		for (;;) {
			if (supervised.exitStatus !== undefined) {
				const output = supervised.recentOutput.join("\n");
				if (/operation not permitted|permission denied/i.test(output)) {
					throw new WireGuardBackendError(PERMISSION_DENIED_MESSAGE);
				}
				const lastLine = supervised.recentOutput.at(-1);
				throw new WireGuardBackendError(
					`wireguard-go for ${name} exited while starting (${describeExit(supervised.exitStatus)})${lastLine ? `: ${lastLine}` : ""}`,
				);
			}
			if (await this.isUsable(name)) return;
			if (Date.now() > deadline) {
				throw new WireGuardBackendError(
					`wireguard-go for ${name} did not open ${socketPathFor(name)} within ${this.startTimeoutMs} ms`,
				);
			}
			await sleep(POLL_INTERVAL_MS);
		}
	}

	/** Waits for the exit, signalling harder each time it doesn't come. */
	private async stopProcess(supervised: SupervisedProcess): Promise<void> {
		supervised.stopping = true;
		const exitedWithin = (milliseconds: number) =>
			Promise.race([
				supervised.child.exited.then(() => true),
				sleep(milliseconds).then(() => false),
			]);
		if (supervised.exitStatus !== undefined) return;
		if (await exitedWithin(this.stopTimeoutMs)) return;
		supervised.child.kill("SIGTERM");
		if (await exitedWithin(this.stopTimeoutMs)) return;
		supervised.child.kill("SIGKILL");
		if (await exitedWithin(this.stopTimeoutMs)) return;
		throw new WireGuardBackendError(
			`wireguard-go (pid ${supervised.child.pid}) does not exit, even after SIGKILL`,
		);
	}

	/**
	 * Removes the control socket once nothing answers on it any more. A crashed or SIGKILLed
	 * wireguard-go leaves it behind, and `wg` then fails on it instead of reporting "no device".
	 * A socket that still answers while we have no such link belongs to a wireguard-go in another
	 * network namespace sharing this mount namespace: never taken away from it.
	 */
	private async clearSocket(name: string): Promise<void> {
		const path = socketPathFor(name);
		const deadline = Date.now() + this.stopTimeoutMs;
		for (;;) {
			const socket = await this.runner("test", ["-S", path], { allowFailure: true });
			if (socket.exitCode !== 0) return;
			const show = await this.runner("wg", ["show", name], { allowFailure: true });
			if (show.exitCode !== 0) break;
			// A wireguard-go whose link was just deleted answers until it has shut down.
			if (Date.now() > deadline) {
				throw new WireGuardBackendError(
					`${path} is in use by a wireguard-go that is not ours (another network namespace?); use another interface name or a private /var/run/wireguard`,
				);
			}
			await sleep(POLL_INTERVAL_MS);
		}
		this.logger?.debug({ interface: name, path }, "removing stale wireguard-go socket");
		await this.runner("rm", ["-f", path]);
	}
}

async function commandWorks(
	runner: Runner,
	command: string,
	args: readonly string[],
): Promise<boolean> {
	try {
		return (await runner(command, args, { allowFailure: true })).exitCode === 0;
	} catch {
		// Even with allowFailure a missing binary ends up here on some Runner implementations.
		return false;
	}
}

/**
 * Whether this kernel can make WireGuard links: creating (and at once deleting) a probe link is
 * the one test that also covers a module that exists but isn't loaded yet (the kernel loads it on
 * demand) or is built in (then /sys/module may not show it). It takes a few milliseconds.
 * Returns undefined when it works, otherwise why not.
 */
async function probeKernelModule(runner: Runner): Promise<string | undefined> {
	const probeName = `wgprobe${randomBytes(3).toString("hex")}`;
	try {
		await runner("ip", ["link", "add", "dev", probeName, "type", "wireguard"]);
	} catch (error) {
		if (error instanceof CommandError && error.permissionDenied) {
			throw new WireGuardBackendError(PERMISSION_DENIED_MESSAGE);
		}
		const detail =
			error instanceof CommandError ? error.stderr.trim() || error.message : String(error);
		return detail.split("\n")[0];
	}
	await runner("ip", ["link", "del", "dev", probeName], { allowFailure: true });
	return undefined;
}

/**
 * Picks the backend. "auto" prefers the kernel module and falls back to wireguard-go. Throws a
 * WireGuardBackendError with one line for the operator when nothing fits.
 */
export async function selectBackend(
	preference: BackendPreference,
	runner: Runner,
	userspaceOptions: Omit<UserspaceBackendOptions, "runner"> = {},
): Promise<WireGuardBackend> {
	if (!(await commandWorks(runner, "wg", ["--version"]))) {
		throw new WireGuardBackendError("wg is not installed: install wireguard-tools");
	}
	let kernelProblem: string | undefined;
	if (preference !== "userspace") {
		kernelProblem = await probeKernelModule(runner);
		if (kernelProblem === undefined) return new KernelBackend(runner);
		if (preference === "kernel") {
			throw new WireGuardBackendError(
				`the kernel cannot create WireGuard interfaces (${kernelProblem}); use the userspace backend (wireguard-go)`,
			);
		}
	}
	const binary = userspaceOptions.binary ?? "wireguard-go";
	if (!(await commandWorks(runner, binary, ["--version"]))) {
		throw new WireGuardBackendError(
			kernelProblem === undefined
				? `${binary} is not installed: install wireguard-go`
				: `no WireGuard available: the kernel cannot create WireGuard interfaces (${kernelProblem}) and ${binary} is not installed`,
		);
	}
	return new UserspaceBackend({ ...userspaceOptions, runner });
}
