import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const mainJs = fileURLToPath(new URL("../dist/main.js", import.meta.url));

/** One starling-signal process (the built executable) on a free loopback port. */
export interface SignalProcess {
	readonly port: number;
	readonly pid: number;
	readonly url: string;
	/** Every log line so far, parsed. */
	readonly logs: Record<string, unknown>[];
	/** Log messages (`msg`) so far. */
	messages(): string[];
	/** Sends `signal` and resolves with the exit code (null when killed by a signal) once it is gone. */
	kill(signal: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts the executable with `env` on top of a free listen address and
 * resolves once it logs that it listens. Rejects (a test failure) when it
 * exits or says nothing for 10 s.
 */
export async function startSignalProcess(env: Record<string, string>): Promise<SignalProcess> {
	if (!existsSync(mainJs)) throw new Error(`${mainJs} is missing: run pnpm build first`);
	const child: ChildProcess = spawn(process.execPath, [mainJs], {
		env: {
			PATH: process.env.PATH ?? "",
			STARLING_SIGNAL_LISTEN: "127.0.0.1:0",
			STARLING_SIGNAL_METRICS_LISTEN: "off",
			STARLING_LOG_FORMAT: "json",
			...env,
		},
		stdio: ["ignore", "pipe", "pipe"],
	});
	const exited = new Promise<number | null>((resolve) =>
		child.once("exit", (code) => resolve(code)),
	);
	const logs: Record<string, unknown>[] = [];
	let stderr = "";
	child.stderr?.on("data", (chunk: Buffer) => {
		stderr += chunk.toString();
	});
	const port = await new Promise<number>((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error("signal did not report listening")), 10_000);
		child.once("exit", (code) => {
			clearTimeout(timer);
			reject(new Error(`signal exited (${code}) before listening: ${stderr}`));
		});
		createInterface({ input: child.stdout! }).on("line", (line) => {
			let entry: Record<string, unknown>;
			try {
				entry = JSON.parse(line) as Record<string, unknown>;
			} catch {
				return;
			}
			logs.push(entry);
			if (entry.msg === "signal server listening") {
				clearTimeout(timer);
				resolve(entry.port as number);
			}
		});
	}).catch((err: unknown) => {
		child.kill("SIGKILL");
		throw err;
	});
	return {
		port,
		pid: child.pid ?? 0,
		url: `127.0.0.1:${port}`,
		logs,
		messages: () => logs.map((entry) => String(entry.msg)),
		kill: async (signal) => {
			if (child.exitCode === null && child.signalCode === null) child.kill(signal);
			return exited;
		},
	};
}

/**
 * A TCP front standing in for the load balancer: each connection goes to
 * the first backend that accepts it, so when one signal instance dies its
 * clients' reconnects land on the next.
 */
export async function startTcpFront(backends: number[]): Promise<{ port: number; close(): void }> {
	const sockets = new Set<Socket>();
	const server: Server = createServer((inbound) => {
		sockets.add(inbound);
		inbound.on("close", () => sockets.delete(inbound));
		inbound.on("error", () => inbound.destroy());
		inbound.pause();
		const tryBackend = (index: number): void => {
			const port = backends[index];
			if (port === undefined) {
				inbound.destroy();
				return;
			}
			const outbound = createConnection({ host: "127.0.0.1", port });
			let connected = false;
			outbound.on("error", () => {
				outbound.destroy();
				if (connected) inbound.destroy();
				else tryBackend(index + 1);
			});
			outbound.once("connect", () => {
				connected = true;
				sockets.add(outbound);
				outbound.on("close", () => {
					sockets.delete(outbound);
					inbound.destroy();
				});
				inbound.on("close", () => outbound.destroy());
				inbound.pipe(outbound);
				outbound.pipe(inbound);
				inbound.resume();
			});
		};
		tryBackend(0);
	});
	const port = await new Promise<number>((resolve) => {
		server.listen(0, "127.0.0.1", () => {
			const address = server.address();
			resolve(typeof address === "object" && address ? address.port : 0);
		});
	});
	return {
		port,
		close: () => {
			server.close();
			for (const socket of sockets) socket.destroy();
		},
	};
}
