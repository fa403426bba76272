import { spawn } from "node:child_process";

/** A system command failed; `message` is one readable line. */
export class CommandError extends Error {
	override name = "CommandError";
	constructor(
		message: string,
		readonly command: string,
		readonly exitCode: number | undefined,
		readonly stderr: string,
	) {
		super(message);
	}

	/** True when the failure was a missing privilege (not root, no CAP_NET_ADMIN). */
	get permissionDenied(): boolean {
		return /operation not permitted|permission denied|must be run as root/i.test(this.stderr);
	}
}

export interface RunOptions {
	/** Written to the command's stdin (e.g. an `nft -f -` rule set). */
	input?: string;
	/** Don't throw on a non-zero exit; return it. */
	allowFailure?: boolean;
	timeoutMs?: number;
}

export interface RunResult {
	stdout: string;
	stderr: string;
	exitCode: number;
}

/** Runs one system command (`ip`, `wg`, `nft`, ...). Arguments are never passed through a shell. */
export type Runner = (
	command: string,
	args: readonly string[],
	options?: RunOptions,
) => Promise<RunResult>;

/** SIGTERM at the timeout, SIGKILL this long after if the command is still there. */
const FORCE_KILL_AFTER_MS = 5_000;

/**
 * node:child_process directly, not execa: execa and its dependencies are some
 * 120 modules, ~7 MB of the daemon's resident memory, for what fits here.
 * Like execa with `reject: false`: the output as UTF-8 with one final newline
 * stripped, `LC_ALL=C` on top of our environment, SIGTERM after the timeout.
 */
export const run: Runner = (command, args, options = {}) =>
	new Promise((resolve, reject) => {
		const timeoutMs = options.timeoutMs ?? 15_000;
		const child = spawn(command, args, {
			env: { ...process.env, LC_ALL: "C" },
			stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
		});
		const stdout: Buffer[] = [];
		const stderr: Buffer[] = [];
		child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
		child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk));
		if (options.input !== undefined && child.stdin) {
			// A command that exits without reading its input closes the pipe: not our failure.
			child.stdin.on("error", () => {});
			child.stdin.end(options.input);
		}
		let timedOut = false;
		let forceKill: NodeJS.Timeout | undefined;
		const timer = setTimeout(() => {
			timedOut = true;
			child.kill("SIGTERM");
			forceKill = setTimeout(() => child.kill("SIGKILL"), FORCE_KILL_AFTER_MS);
		}, timeoutMs);
		let spawnError: NodeJS.ErrnoException | undefined;
		child.on("error", (error) => {
			spawnError = error;
		});
		child.on("close", (code, signal) => {
			clearTimeout(timer);
			clearTimeout(forceKill);
			const out = stripFinalNewline(Buffer.concat(stdout).toString("utf8"));
			const err = stripFinalNewline(Buffer.concat(stderr).toString("utf8"));
			const failed = spawnError !== undefined || timedOut || code !== 0;
			if (failed && !options.allowFailure) {
				const commandLine = [command, ...args].join(" ");
				const reason = timedOut
					? `Command timed out after ${timeoutMs} milliseconds: ${commandLine}`
					: spawnError !== undefined
						? `Command failed with ${spawnError.code ?? spawnError.message}: ${commandLine}`
						: signal !== null
							? `Command was killed with ${signal}: ${commandLine}`
							: `Command failed with exit code ${code}: ${commandLine}`;
				const detail = firstLine(err) || firstLine(out) || reason;
				reject(
					new CommandError(
						spawnError?.code === "ENOENT"
							? `${command} is not installed (not found in PATH)`
							: `${command} ${args.join(" ")}: ${detail}`,
						command,
						spawnError === undefined ? (code ?? undefined) : undefined,
						err,
					),
				);
				return;
			}
			// A command that could not start has no exit code (Node reports -errno).
			resolve({ stdout: out, stderr: err, exitCode: spawnError === undefined ? (code ?? -1) : -1 });
		});
	});

function stripFinalNewline(text: string): string {
	if (text.endsWith("\r\n")) return text.slice(0, -2);
	return text.endsWith("\n") ? text.slice(0, -1) : text;
}

function firstLine(text: unknown): string {
	return (
		String(text ?? "")
			.split("\n")
			.map((l) => l.trim())
			.find(Boolean) ?? ""
	);
}
