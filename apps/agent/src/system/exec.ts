import { execa } from "execa";

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

export const run: Runner = async (command, args, options = {}) => {
	const result = await execa(command, args, {
		input: options.input,
		reject: false,
		timeout: options.timeoutMs ?? 15_000,
		stripFinalNewline: true,
		env: { LC_ALL: "C" },
		extendEnv: true,
	});
	const exitCode = result.exitCode ?? -1;
	if (result.failed && !options.allowFailure) {
		const detail = firstLine(result.stderr) || firstLine(result.stdout) || result.shortMessage;
		const missing = (result as { code?: string }).code === "ENOENT";
		throw new CommandError(
			missing
				? `${command} is not installed (not found in PATH)`
				: `${command} ${args.join(" ")}: ${detail}`,
			command,
			result.exitCode,
			String(result.stderr ?? ""),
		);
	}
	return { stdout: String(result.stdout ?? ""), stderr: String(result.stderr ?? ""), exitCode };
};

function firstLine(text: unknown): string {
	return (
		String(text ?? "")
			.split("\n")
			.map((l) => l.trim())
			.find(Boolean) ?? ""
	);
}
