import { type ChildProcess, spawn } from "node:child_process";
import { killOrphans } from "./leftovers.js";
import { freeLoopbackPort } from "./ports.js";

/** Marks test NATS servers by their owner's pid, so a crashed run's servers are found. */
const MARKER = "starling-test-nats-";

export interface NatsServer {
	readonly port: number;
	/** `nats://127.0.0.1:<port>` */
	readonly url: string;
	readonly pid: number;
	/** Stops the server (SIGTERM, then SIGKILL after 5 s); resolves once it is gone. */
	stop(): Promise<void>;
	/** Sends `signal` (e.g. SIGKILL for a crash) and resolves once the process is gone. */
	kill(signal: NodeJS.Signals): Promise<void>;
	/** Starts it again on the same port (after stop or kill). */
	restart(): Promise<void>;
	/** What the server printed (last 256 KiB). */
	output(): string;
}

/**
 * Debian's nats-server (core NATS, no JetStream) on a free loopback port, in
 * the foreground as a child of the test. Servers a crashed earlier run left
 * are killed first. Throws (a test failure, not a skip) when it cannot start.
 */
export async function startNatsServer(
	options: {
		port?: number;
		/** More nats-server arguments, e.g. `["--user", "u", "--pass", "p"]`. */
		args?: string[];
	} = {},
): Promise<NatsServer> {
	killOrphans(MARKER);
	const port = options.port ?? (await freeLoopbackPort());
	let child: ChildProcess | undefined;
	let output = "";
	let exited: Promise<void> = Promise.resolve();

	const launch = async () => {
		output = "";
		const c = spawn(
			"nats-server",
			[
				"-a",
				"127.0.0.1",
				"-p",
				String(port),
				"-n",
				`${MARKER}${process.pid}`,
				...(options.args ?? []),
			],
			{ stdio: ["ignore", "pipe", "pipe"] },
		);
		child = c;
		exited = new Promise((resolve) => c.once("exit", () => resolve()));
		const append = (chunk: Buffer) => {
			output = (output + chunk.toString()).slice(-256 * 1024);
		};
		c.stdout?.on("data", append);
		c.stderr?.on("data", append);
		const ready = await new Promise<boolean>((resolve) => {
			const timer = setTimeout(() => resolve(false), 10_000);
			const check = () => {
				if (/Server is ready/.test(output)) {
					clearTimeout(timer);
					resolve(true);
				}
			};
			c.stdout?.on("data", check);
			c.stderr?.on("data", check);
			c.once("error", (err) => {
				output += `\n${err.message}`;
				clearTimeout(timer);
				resolve(false);
			});
			c.once("exit", () => {
				clearTimeout(timer);
				resolve(false);
			});
		});
		if (!ready) {
			c.kill("SIGKILL");
			throw new Error(
				`nats-server did not start on 127.0.0.1:${port}: ${output.trim().slice(-500)}`,
			);
		}
	};

	const kill = async (signal: NodeJS.Signals) => {
		const c = child;
		if (!c || c.exitCode !== null || c.signalCode !== null) return;
		c.kill(signal);
		const escalate = setTimeout(() => c.kill("SIGKILL"), 5_000);
		await exited;
		clearTimeout(escalate);
	};

	await launch();
	return {
		port,
		url: `nats://127.0.0.1:${port}`,
		get pid() {
			return child?.pid ?? 0;
		},
		stop: () => kill("SIGTERM"),
		kill,
		restart: launch,
		output: () => output,
	};
}
