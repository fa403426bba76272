import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { freeLoopbackPort, type HaproxyBackend } from "@starling/lab";

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

/** A signal instance of a scaled-out deployment: on NATS, with the metrics listener HAProxy checks. */
export interface SignalInstance extends SignalProcess {
	/** Port of `/readyz` (HAProxy's health check: the gRPC port has none). */
	readonly metricsPort: number;
}

/** Starts one signal instance on the NATS at `natsUrl` (`STARLING_NATS_URL`), `env` on top. */
export async function startSignalInstance(
	natsUrl: string,
	env: Record<string, string> = {},
): Promise<SignalInstance> {
	const metricsPort = await freeLoopbackPort();
	const started = await startSignalProcess({
		STARLING_NATS_URL: natsUrl,
		STARLING_SIGNAL_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
		...env,
	});
	return Object.assign(started, { metricsPort });
}

/**
 * HAProxy's backend for signal instances, as the `ha` compose deployment
 * has it: gRPC (h2c) to each instance, `/readyz` checked on its metrics port.
 * `pathPrefixes` [] makes it the default backend (a proxy for signal alone).
 */
export function signalHaproxyBackend(
	servers: readonly { name: string; instance: SignalInstance }[],
	pathPrefixes: string[] = ["/starling.v1.SignalService/"],
): HaproxyBackend {
	return {
		name: "signal_grpc",
		protocol: "grpc",
		pathPrefixes,
		servers: servers.map(({ name, instance }) => ({
			name,
			address: instance.url,
			checkPort: instance.metricsPort,
		})),
		health: { path: "/readyz", protocol: "h1" },
	};
}

/**
 * The keys an instance holds a ready stream for, from its "peer connected"
 * and "peer disconnected" log lines (the key is the line's `peer`). Counted,
 * not set: a stream replaced by a newer one of the same key on this instance
 * logs its end after the newer one's start.
 */
export function connectedPeers(instance: SignalProcess): Set<string> {
	const streams = new Map<string, number>();
	for (const entry of instance.logs) {
		if (typeof entry.peer !== "string") continue;
		const change = entry.msg === "peer connected" ? 1 : entry.msg === "peer disconnected" ? -1 : 0;
		streams.set(entry.peer, (streams.get(entry.peer) ?? 0) + change);
	}
	return new Set([...streams].filter(([, n]) => n > 0).map(([peer]) => peer));
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
