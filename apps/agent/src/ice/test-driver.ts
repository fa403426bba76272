/**
 * A test driver: runs one IceAgent (and a PortRewriter) in whatever network
 * namespace it is started in, controlled over a unix socket (path in argv[2])
 * with JSON lines. Lab tests start it inside a host (lab processes have no
 * stdin, and a socket in the host's bind-mounted state directory is reachable
 * from outside) and relay descriptions and candidates between two drivers, as
 * signal would. Prints "listening" once the socket accepts connections.
 *
 * Commands, one object per line ("id" is echoed in the answer):
 *   {cmd:"start", ...StartSessionOptions}
 *   {cmd:"remote-description", sessionId, sdp, type}
 *   {cmd:"remote-candidate", sessionId, candidate, mid}
 *   {cmd:"close-session", sessionId}   → {event:"session-closed", sessionId, localPort?, portFree}
 *   {cmd:"worker-pid"}                 → {event:"worker-pid", pid}
 *   {cmd:"port-rewrite", wgPort, tableName?, entries}  → {event:"port-rewrite-applied"}
 *   {cmd:"port-rewrite-counters", wgPort, tableName?}  → {event:"port-rewrite-counters", counters}
 *   {cmd:"port-rewrite-clear", wgPort, tableName?}     → {event:"port-rewrite-cleared"}
 *   {cmd:"quit"}
 * Events: every IceAgent event as {event:<name>, ...payload}, and
 * {event:"error", cmd, message} when a command failed. When the client
 * disconnects the driver closes its agent and exits. Not part of the daemon.
 */

import { rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { createInterface } from "node:readline";
import {
	type PortRewriteEntry,
	PortRewriter,
	type PortRewriterOptions,
} from "../netfilter/port-rewrite.js";
import { run } from "../system/exec.js";
import {
	IceAgent,
	type IceAgentEvents,
	type SdpType,
	type StartSessionOptions,
} from "./ice-agent.js";
import { isUdpPortFree } from "./udp-port.js";

type DriverCommand =
	| ({ cmd: "start"; id?: string } & StartSessionOptions)
	| { cmd: "remote-description"; id?: string; sessionId: string; sdp: string; type: SdpType }
	| { cmd: "remote-candidate"; id?: string; sessionId: string; candidate: string; mid: string }
	| { cmd: "close-session"; id?: string; sessionId: string }
	| { cmd: "worker-pid"; id?: string }
	| ({ cmd: "port-rewrite"; id?: string; entries: PortRewriteEntry[] } & PortRewriterOptions)
	| ({ cmd: "port-rewrite-counters"; id?: string } & PortRewriterOptions)
	| ({ cmd: "port-rewrite-clear"; id?: string } & PortRewriterOptions)
	| { cmd: "quit"; id?: string };

const socketPath = process.argv[2];
if (socketPath === undefined) {
	process.stderr.write("usage: test-driver <unix socket path>\n");
	process.exit(2);
}
let client: Socket | undefined;

function emit(event: string, payload: object = {}): void {
	const line = `${JSON.stringify({ event, ...payload })}\n`;
	// Also on stdout, so the lab's process log shows what happened.
	process.stdout.write(line);
	client?.write(line);
}

const agent = new IceAgent();
const localPorts = new Map<string, number>();
const eventNames: (keyof IceAgentEvents)[] = [
	"local-description",
	"local-candidate",
	"connected",
	"failed",
	"log",
	"worker-exit",
];
for (const name of eventNames) {
	agent.on(name, (payload: object) => emit(name, payload));
}
agent.on("connected", (e) => localPorts.set(e.sessionId, e.localPort));

function rewriter(options: PortRewriterOptions): PortRewriter {
	return new PortRewriter(run, options);
}

async function handle(command: DriverCommand): Promise<void> {
	const id = command.id === undefined ? {} : { id: command.id };
	switch (command.cmd) {
		case "start": {
			const { cmd: _cmd, id: _id, ...options } = command;
			agent.startSession(options);
			return;
		}
		case "remote-description":
			agent.setRemoteDescription(command.sessionId, command.sdp, command.type);
			return;
		case "remote-candidate":
			agent.addRemoteCandidate(command.sessionId, command.candidate, command.mid);
			return;
		case "close-session": {
			await agent.closeSession(command.sessionId);
			const localPort = localPorts.get(command.sessionId);
			const portFree = localPort === undefined ? true : await isUdpPortFree(localPort);
			emit("session-closed", {
				...id,
				sessionId: command.sessionId,
				...(localPort === undefined ? {} : { localPort }),
				portFree,
			});
			return;
		}
		case "worker-pid":
			emit("worker-pid", { ...id, pid: agent.workerPid ?? null });
			return;
		case "port-rewrite": {
			const portRewriter = rewriter(command);
			for (const entry of command.entries) portRewriter.set(entry.peerKey, entry);
			await portRewriter.apply();
			emit("port-rewrite-applied", id);
			return;
		}
		case "port-rewrite-counters": {
			const counters = await rewriter(command).counters();
			emit("port-rewrite-counters", { ...id, counters: Object.fromEntries(counters) });
			return;
		}
		case "port-rewrite-clear":
			await rewriter(command).clear();
			emit("port-rewrite-cleared", id);
			return;
		case "quit":
			await agent.close();
			process.exit(0);
	}
}

function serve(connection: Socket): void {
	client = connection;
	const lines = createInterface({ input: connection });
	lines.on("line", (line) => {
		if (line.trim() === "") return;
		let command: DriverCommand;
		try {
			command = JSON.parse(line) as DriverCommand;
		} catch {
			emit("error", { cmd: null, message: `not JSON: ${line.slice(0, 200)}` });
			return;
		}
		handle(command).catch((error: unknown) => {
			emit("error", {
				cmd: command.cmd,
				...(command.id === undefined ? {} : { id: command.id }),
				message: error instanceof Error ? error.message : String(error),
			});
		});
	});
	// The test went away: leave nothing behind in the namespace.
	connection.on("close", () => {
		void agent.close().then(() => process.exit(0));
	});
	connection.on("error", () => undefined);
}

rmSync(socketPath, { force: true });
const server = createServer((connection) => {
	if (client !== undefined) {
		connection.end('{"event":"error","cmd":null,"message":"one client only"}\n');
		return;
	}
	serve(connection);
});
server.listen(socketPath, () => process.stdout.write("listening\n"));
