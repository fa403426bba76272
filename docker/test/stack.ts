// What the compose tests (compose.test.ts, compose-ha.test.ts) share:
// commands run from the repository root, one compose project with its files
// and env file in a temporary folder, the first admin token from
// management's logs, and the teardown that leaves no container behind.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(__dirname, "../..");

export interface Run {
	stdout: string;
	stderr: string;
	code: number;
}

/** Runs a command from the repository root; never throws (a failure is its code and stderr). */
export function run(command: string, args: string[], timeoutMs = 180_000): Promise<Run> {
	return new Promise((resolvePromise) => {
		execFile(
			command,
			args,
			{ cwd: ROOT, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
			(err, stdout, stderr) => {
				const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
				resolvePromise({ stdout, stderr, code });
			},
		);
	});
}

/** Runs the command; its stdout, or an error with its stderr when it fails. */
export async function mustRun(
	command: string,
	args: string[],
	timeoutMs?: number,
): Promise<string> {
	const r = await run(command, args, timeoutMs);
	if (r.code !== 0) {
		throw new Error(`${command} ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
	}
	return r.stdout;
}

/**
 * One compose project of a test: `docker-compose -p <project> -f <file>...
 * --env-file <env>`, with the env file and anything else the test writes in
 * `workDir`, a temporary folder.
 */
export class ComposeProject {
	readonly workDir: string;
	readonly envFile: string;

	constructor(
		readonly project: string,
		private readonly files: readonly string[],
	) {
		this.workDir = mkdtempSync(join(tmpdir(), `starling-${project}-test-`));
		this.envFile = join(this.workDir, "compose.env");
	}

	/** The project, files and env file before `args`. */
	args(args: string[]): string[] {
		return [
			"-p",
			this.project,
			...this.files.flatMap((f) => ["-f", f]),
			"--env-file",
			this.envFile,
			...args,
		];
	}

	compose(args: string[], timeoutMs?: number): Promise<Run> {
		return run("docker-compose", this.args(args), timeoutMs);
	}

	mustCompose(args: string[], timeoutMs?: number): Promise<string> {
		return mustRun("docker-compose", this.args(args), timeoutMs);
	}

	/** Writes the env file, one `NAME=value` a line. */
	writeEnv(settings: Record<string, string>): void {
		const lines = Object.entries(settings).map(([name, value]) => `${name}=${value}`);
		writeFileSync(this.envFile, `${lines.join("\n")}\n`);
	}

	/**
	 * Removes a crashed earlier run's stack. Compose wants the variables the
	 * files require even to take a stack down: `placeholders` gives them.
	 */
	async removeLeftovers(placeholders: Record<string, string>): Promise<void> {
		this.writeEnv(placeholders);
		await this.compose(["down", "-v", "--remove-orphans", "--timeout", "5"]);
	}

	/** The first admin token, shown once in `service`'s logs. */
	async adminToken(service: string): Promise<string> {
		const logs = await this.mustCompose(["logs", "--no-color", service]);
		const match = /Admin token \(shown once[^)]*\): (\S+)/.exec(logs);
		if (!match) throw new Error(`no admin token in ${service}'s logs:\n${logs}`);
		return match[1]!;
	}

	/** `down -v`: containers, networks and volumes. */
	down(): Promise<Run> {
		return this.compose(["down", "-v", "--remove-orphans", "--timeout", "10"]);
	}

	/** Ids of any container still labelled with the project ("" when none). */
	async leftContainers(): Promise<string> {
		const left = await run("docker", [
			"ps",
			"-aq",
			"--filter",
			`label=com.docker.compose.project=${this.project}`,
		]);
		return left.stdout.trim();
	}

	removeWorkDir(): void {
		rmSync(this.workDir, { recursive: true, force: true });
	}
}
