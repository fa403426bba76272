import { chmodSync, existsSync, unlinkSync } from "node:fs";
import { connect } from "node:net";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "@starling/log";
import { type DaemonServiceServer, DaemonServiceService } from "@starling/proto";
import type { Agent } from "./agent.js";
import { AgentError, type AgentErrorKind } from "./agent-error.js";
import { daemonNetcheck } from "./netcheck-rpc.js";
import { startStatusSocket } from "./status-socket.js";
import { statusSocketPath } from "./status-wire.js";

export { DEFAULT_SOCKET_PATH } from "./socket-path.js";

/** The gRPC status the CLI gets for each kind of agent error. */
export function grpcStatusOf(kind: AgentErrorKind): grpc.status {
	switch (kind) {
		case "invalid-argument":
			return grpc.status.INVALID_ARGUMENT;
		case "already-up":
			return grpc.status.ALREADY_EXISTS;
		case "not-up":
		case "host-not-ready":
		case "login-failed":
		case "server-not-trusted":
			return grpc.status.FAILED_PRECONDITION;
		case "management-unreachable":
			return grpc.status.UNAVAILABLE;
		case "login-refused":
		case "permission-denied":
			return grpc.status.PERMISSION_DENIED;
		case "internal":
			return grpc.status.INTERNAL;
	}
}

/** An error of a daemon call as the gRPC status the CLI sees (one line). */
export function toStatus(err: unknown, logger: Logger): Partial<grpc.StatusObject> {
	if (err instanceof AgentError) return { code: grpcStatusOf(err.kind), details: err.message };
	logger.error(
		{ error: err instanceof Error ? err.message : String(err) },
		"daemon request failed",
	);
	return {
		code: grpc.status.INTERNAL,
		details: err instanceof Error ? err.message.split("\n")[0] : String(err),
	};
}

async function socketInUse(path: string): Promise<boolean> {
	if (!existsSync(path)) return false;
	return new Promise((resolve) => {
		const s = connect(path);
		s.once("connect", () => {
			s.destroy();
			resolve(true);
		});
		s.once("error", () => resolve(false));
	});
}

export interface RunningDaemon {
	agent: Agent;
	close(): Promise<void>;
}

/**
 * Serves the CLI's DaemonService on a unix socket only root can open (mode
 * 0600), and the same Status on the status socket beside it (status-wire.ts).
 */
export async function startDaemonServer(
	agent: Agent,
	socketPath: string,
	logger: Logger,
): Promise<RunningDaemon> {
	if (await socketInUse(socketPath)) {
		throw new Error(`another starling daemon is already listening on ${socketPath}`);
	}
	if (existsSync(socketPath)) unlinkSync(socketPath);

	const service: DaemonServiceServer = {
		up(call) {
			const progress = (message: string) => {
				if (!call.cancelled) call.write({ message, done: false });
			};
			agent.up(call.request, progress).then(
				() => {
					call.write({ message: "up", done: true });
					call.end();
				},
				(err) => call.emit("error", toStatus(err, logger)),
			);
		},
		down(_call, callback) {
			agent.down().then(
				() => callback(null, {}),
				(err) => callback(toStatus(err, logger)),
			);
		},
		status(call, callback) {
			agent.status(call.request.detail).then(
				(status) => callback(null, status),
				(err) => callback(toStatus(err, logger)),
			);
		},
		login(call, callback) {
			agent.login(call.request.managementUrl, call.request.setupKey).then(
				(res) => callback(null, res),
				(err) => callback(toStatus(err, logger)),
			);
		},
		netcheck(call, callback) {
			daemonNetcheck(agent, call.request).then(
				(report) => callback(null, report),
				(err) => callback(toStatus(err, logger)),
			);
		},
		routes(_call, callback) {
			agent.routes().then(
				(res) => callback(null, res),
				(err) => callback(toStatus(err, logger)),
			);
		},
		setExitNode(call, callback) {
			agent.setExitNode(call.request.name).then(
				(res) => callback(null, res),
				(err) => callback(toStatus(err, logger)),
			);
		},
		logout(_call, callback) {
			agent.logout().then(
				() => callback(null, {}),
				(err) => callback(toStatus(err, logger)),
			);
		},
	};
	const server = new grpc.Server();
	server.addService(DaemonServiceService, service);
	await new Promise<void>((resolve, reject) =>
		server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) =>
			err ? reject(err) : resolve(),
		),
	);
	chmodSync(socketPath, 0o600);
	const statusSocket = await startStatusSocket(
		statusSocketPath(socketPath),
		(detail) => agent.status(detail),
		logger,
	).catch((err) => {
		server.forceShutdown();
		throw err;
	});
	logger.info({ socket: socketPath }, "daemon listening");
	return {
		agent,
		async close() {
			await statusSocket.close();
			await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
			if (existsSync(socketPath)) unlinkSync(socketPath);
		},
	};
}
