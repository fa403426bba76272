import type { Readable } from "node:stream";

/** A long-running process inside a lab node. */
export interface LabProcess {
	readonly pid: number;
	readonly name: string;
	/** stdout and stderr so far, interleaved in arrival order (the last 4 MiB). */
	output(): string;
	/** Resolves with the first match of `re` in the output (earlier output included); rejects on timeout or exit. */
	waitForOutput(re: RegExp, timeoutMs?: number): Promise<string>;
	/** Resolves with the exit code, or null when the process was killed by a signal. */
	readonly exited: Promise<number | null>;
	/** Sends `signal` (default SIGTERM), escalates to SIGKILL after 5 s, resolves once the process is gone. */
	kill(signal?: NodeJS.Signals): Promise<void>;
}

const OUTPUT_LIMIT = 4 * 1024 * 1024;

export interface ChildHandle {
	pid: number;
	stdout: Readable | null;
	stderr: Readable | null;
	/** Resolves once the process has exited (its output pipes may stay open longer). */
	done: Promise<{ exitCode: number | null; signal: string | null }>;
	/** Called synchronously by the owner as soon as the OS reports the exit. */
	onExit(listener: () => void): void;
	/** Lets Node exit while the process still runs. */
	unref(): void;
}

export class SpawnedProcess implements LabProcess {
	readonly pid: number;
	readonly exited: Promise<number | null>;
	#output = "";
	#dropped = 0;
	#running = true;
	#finished = false;
	#exitCode: number | null = null;
	#signal: string | null = null;
	readonly #listeners = new Set<() => void>();
	readonly #unref: () => void;

	constructor(
		readonly name: string,
		child: ChildHandle,
	) {
		this.pid = child.pid;
		this.#unref = () => child.unref();
		const append = (chunk: Buffer | string) => {
			this.#output += chunk.toString();
			if (this.#output.length > OUTPUT_LIMIT) {
				const cut = this.#output.length - OUTPUT_LIMIT;
				this.#output = this.#output.slice(cut);
				this.#dropped += cut;
			}
			this.#notify();
		};
		child.stdout?.on("data", append);
		child.stderr?.on("data", append);
		child.onExit(() => {
			this.#running = false;
		});
		this.exited = child.done.then(({ exitCode, signal }) => {
			this.#running = false;
			this.#finished = true;
			this.#exitCode = exitCode;
			this.#signal = signal;
			this.#notify();
			return exitCode;
		});
	}

	/** False as soon as the OS has reported the exit (before `exited` resolves). */
	get running(): boolean {
		return this.#running;
	}

	output(): string {
		return this.#dropped > 0
			? `[… ${this.#dropped} characters dropped]\n${this.#output}`
			: this.#output;
	}

	waitForOutput(re: RegExp, timeoutMs = 10_000): Promise<string> {
		const pattern = new RegExp(re.source, re.flags.replace("g", "").replace("y", ""));
		return new Promise<string>((resolve, reject) => {
			let timer: NodeJS.Timeout | undefined;
			const check = () => {
				const match = pattern.exec(this.#output);
				if (match) {
					finish();
					resolve(match[0]);
				} else if (this.#finished) {
					finish();
					reject(
						new Error(
							`${this.name} exited (${this.#exitDescription()}) before printing ${re}; output:\n${this.#tail()}`,
						),
					);
				}
			};
			const finish = () => {
				if (timer) clearTimeout(timer);
				this.#listeners.delete(check);
			};
			timer = setTimeout(() => {
				finish();
				reject(
					new Error(
						`${this.name} did not print ${re} within ${timeoutMs} ms; output:\n${this.#tail()}`,
					),
				);
			}, timeoutMs);
			this.#listeners.add(check);
			check();
		});
	}

	async kill(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
		if (!this.#running) {
			await this.exited;
			return;
		}
		this.signal(signal);
		const timeout = new Promise<"timeout">((resolve) => {
			const t = setTimeout(() => resolve("timeout"), 5_000);
			void this.exited.then(() => clearTimeout(t));
		});
		if ((await Promise.race([this.exited, timeout])) === "timeout") this.signal("SIGKILL");
		await this.exited;
	}

	/** Lets Node's event loop end while this process runs (only sensible without output pipes). */
	unref(): void {
		this.#unref();
	}

	/** Sends a signal if the process still runs (never to a reused pid: we are its parent). */
	signal(signal: NodeJS.Signals): void {
		if (!this.#running) return;
		try {
			process.kill(this.pid, signal);
		} catch {
			// already gone
		}
	}

	#exitDescription(): string {
		return this.#signal ? `signal ${this.#signal}` : `code ${this.#exitCode}`;
	}

	#tail(): string {
		const lines = this.#output.trimEnd().split("\n");
		return lines.slice(-30).join("\n");
	}

	#notify(): void {
		for (const listener of [...this.#listeners]) listener();
	}
}
