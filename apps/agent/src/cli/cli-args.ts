// What every command shares: the one-line error, flag parsing, the socket.
import { parseArgs } from "node:util";
import { DEFAULT_SOCKET_PATH } from "../daemon/socket-path.js";

const CLI_ERROR = Symbol.for("starling.cli-error");

/** A failure to report as one line and a non-zero exit. */
export class CliError extends Error {
	readonly [CLI_ERROR] = true;

	constructor(
		message: string,
		readonly exitCode = 1,
	) {
		super(message);
	}

	/**
	 * Also true for a CliError of another copy of this module: the release
	 * bundles the light CLI and the heavier commands separately, each with its
	 * own copy, so `instanceof` would miss the commands' errors.
	 */
	static is(err: unknown): err is CliError {
		return typeof err === "object" && err !== null && CLI_ERROR in err;
	}
}

const globalOptions = {
	socket: { type: "string" },
	help: { type: "boolean", short: "h" },
} as const;

export function parse<T extends Record<string, { type: "string" | "boolean"; short?: string }>>(
	args: string[],
	options: T,
) {
	try {
		return parseArgs({
			args,
			options: { ...globalOptions, ...options },
			strict: true,
			allowPositionals: true,
		});
	} catch (err) {
		throw new CliError(`${(err as Error).message.split("\n")[0]} (see 'starling --help')`, 2);
	}
}

export function socketPath(value: string | boolean | undefined): string {
	return typeof value === "string" && value
		? value
		: (process.env.STARLING_SOCKET ?? DEFAULT_SOCKET_PATH);
}
