import { execa, execaSync } from "execa";

export interface ExecOptions {
	/** Written to the command's stdin. */
	input?: string;
	/** Kill the command after this long (default 20 s). */
	timeoutMs?: number;
	/** Extra environment variables (the rest is inherited). */
	env?: Record<string, string>;
	/** Don't throw on a non-zero exit; return it. */
	allowFailure?: boolean;
}

export interface ExecResult {
	stdout: string;
	stderr: string;
	/** The exit code; -1 when the command was killed (timeout, signal) or could not start. */
	exitCode: number;
}

/** A lab command failed; `message` names the command and the first line of its error output. */
export class LabCommandError extends Error {
	override name = "LabCommandError";
	constructor(
		message: string,
		readonly command: string,
		readonly args: readonly string[],
		readonly result: ExecResult,
	) {
		super(message);
	}
}

const debug = process.env["STARLING_LAB_DEBUG"] === "1";

export function debugLog(message: string): void {
	if (debug) process.stderr.write(`[lab] ${message}\n`);
}

function firstLine(text: string): string {
	return (
		text
			.split("\n")
			.map((l) => l.trim())
			.find(Boolean) ?? ""
	);
}

function failure(
	command: string,
	args: readonly string[],
	result: ExecResult,
	timedOut: boolean,
	fallback: string,
	display: string | undefined,
): LabCommandError {
	const detail = timedOut
		? "timed out"
		: firstLine(result.stderr) || firstLine(result.stdout) || fallback;
	const shown = display ?? [command, ...args].join(" ");
	return new LabCommandError(
		`${shown.length > 300 ? `${shown.slice(0, 300)}…` : shown}: ${detail}`,
		command,
		args,
		result,
	);
}

/** Runs a command directly (never through a shell). */
export async function run(
	command: string,
	args: readonly string[],
	options: ExecOptions & { cwd?: string; display?: string } = {},
): Promise<ExecResult> {
	debugLog(`$ ${command} ${args.join(" ")}`);
	const result = await execa(command, args, {
		input: options.input,
		stdin: options.input === undefined ? "ignore" : "pipe",
		reject: false,
		timeout: options.timeoutMs ?? 20_000,
		env: options.env,
		extendEnv: true,
		cwd: options.cwd,
		stripFinalNewline: false,
	});
	const out: ExecResult = {
		stdout: String(result.stdout ?? ""),
		stderr: String(result.stderr ?? ""),
		exitCode: typeof result.exitCode === "number" ? result.exitCode : -1,
	};
	if (result.failed && !options.allowFailure) {
		throw failure(
			command,
			args,
			out,
			result.timedOut,
			String(result.shortMessage ?? ""),
			options.display,
		);
	}
	return out;
}

/** The synchronous twin of `run`, for process-exit handlers. Never throws on a failed command. */
export function runSync(command: string, args: readonly string[]): ExecResult {
	try {
		const result = execaSync(command, args, {
			stdin: "ignore",
			reject: false,
			timeout: 10_000,
			extendEnv: true,
		});
		return {
			stdout: String(result.stdout ?? ""),
			stderr: String(result.stderr ?? ""),
			exitCode: typeof result.exitCode === "number" ? result.exitCode : -1,
		};
	} catch (error) {
		return { stdout: "", stderr: String(error), exitCode: -1 };
	}
}
