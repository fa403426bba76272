#!/usr/bin/env node
import { realpathSync } from "node:fs";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { createLogger } from "@starling/log";
import { DaemonServiceClient, type DaemonStatus, type UpProgress } from "@starling/proto";
import { Agent } from "../daemon/agent.js";
import { DEFAULT_SOCKET_PATH, startDaemonServer } from "../daemon/daemon-server.js";
import { StateDir } from "../daemon/state-dir.js";
import {
	type MetricsServer,
	parseMetricsAddr,
	startMetricsServer,
} from "../metrics/metrics-server.js";
import { CommandError, run } from "../system/exec.js";
import { AGENT_VERSION } from "../version.js";
import { cmdNetcheck } from "./netcheck.js";
import { statusToJson, statusToText } from "./status-format.js";
import { ServiceManager } from "./systemd.js";
import { UninstallError, uninstallAgent } from "./uninstall.js";

const DEFAULT_STATE_DIR = "/var/lib/starling";

const USAGE = `usage: starling <command> [flags]

commands:
  up [--management-url URL] [--setup-key KEY] [--interface-name NAME]
     [--wireguard-port N] [--wireguard-backend auto|kernel|userspace]
     [--disable-firewall | --enable-firewall]
                        join the network and bring the interface up
  down                  remove the interface; keep this peer's identity
  status [--json] [--detail]
  login [--management-url URL] [--setup-key KEY]
  logout                go down and deregister this peer
  netcheck [--json] [--stun HOST[:PORT]]... [--relay URL]... [--timeout MS]
                        this host's NAT (UDP, mapping), STUN and relay reachability,
                        and why peers are not direct
  service install|start|stop|status|run
  service uninstall [--purge] [--state-dir DIR]
                        stop and remove the service, its interface and nftables
                        tables; --purge also deletes the state (key, config)
  version

global flags: --socket PATH (or STARLING_SOCKET; default ${DEFAULT_SOCKET_PATH})
daemon flags (service run): --state-dir DIR (or STARLING_DATA_DIR; default /var/lib/starling)
  --metrics-addr 127.0.0.1:PORT (or STARLING_METRICS_ADDR; off by default)
                        serve Prometheus metrics on GET /metrics, loopback only`;

/** A failure to report as one line and a non-zero exit. */
class CliError extends Error {
	constructor(
		message: string,
		readonly exitCode = 1,
	) {
		super(message);
	}
}

const globalOptions = {
	socket: { type: "string" },
	help: { type: "boolean", short: "h" },
} as const;

function parse<T extends Record<string, { type: "string" | "boolean"; short?: string }>>(
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

function socketPath(value: string | boolean | undefined): string {
	return typeof value === "string" && value
		? value
		: (process.env.STARLING_SOCKET ?? DEFAULT_SOCKET_PATH);
}

async function client(socket: string): Promise<DaemonServiceClient> {
	await requireDaemon(socket);
	return new DaemonServiceClient(`unix:${socket}`, grpc.credentials.createInsecure());
}

function daemonError(err: grpc.ServiceError): CliError {
	return new CliError(err.details || err.message);
}

/** Fails with one clear line when no daemon listens on the socket. */
async function requireDaemon(socket: string): Promise<void> {
	const reachable = await new Promise<boolean>((resolve) => {
		const s = connect(socket);
		s.once("connect", () => {
			s.destroy();
			resolve(true);
		});
		s.once("error", () => resolve(false));
	});
	if (!reachable) {
		throw new CliError(
			`the starling daemon is not running (nothing listens on ${socket}); start it with 'starling service start' or 'starling service run'`,
		);
	}
}

function unary<Req, Res>(
	call: (
		req: Req,
		meta: grpc.Metadata,
		opts: grpc.CallOptions,
		cb: (err: grpc.ServiceError | null, res: Res) => void,
	) => unknown,
	req: Req,
	timeoutMs = 30_000,
): Promise<Res> {
	return new Promise((resolve, reject) => {
		call(req, new grpc.Metadata(), { deadline: new Date(Date.now() + timeoutMs) }, (err, res) =>
			err ? reject(daemonError(err)) : resolve(res),
		);
	});
}

async function cmdUp(args: string[]): Promise<void> {
	const { values, positionals } = parse(args, {
		"management-url": { type: "string" },
		"setup-key": { type: "string" },
		"interface-name": { type: "string" },
		"wireguard-port": { type: "string" },
		"wireguard-backend": { type: "string" },
		"disable-firewall": { type: "boolean" },
		"enable-firewall": { type: "boolean" },
	});
	if (positionals.length > 0) throw new CliError(`unexpected argument '${positionals[0]}'`, 2);
	if (values["disable-firewall"] && values["enable-firewall"]) {
		throw new CliError("--disable-firewall and --enable-firewall contradict each other", 2);
	}
	const portText = values["wireguard-port"];
	const port = portText === undefined ? 0 : Number(portText);
	if (portText !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
		throw new CliError(`--wireguard-port must be a port number (1-65535), got '${portText}'`, 2);
	}
	const socket = socketPath(values.socket);
	const c = await client(socket);
	try {
		await new Promise<void>((resolve, reject) => {
			const call = c.up(
				{
					managementUrl: values["management-url"] ?? "",
					setupKey: values["setup-key"] ?? process.env.STARLING_SETUP_KEY ?? "",
					interfaceName: values["interface-name"] ?? "",
					wireguardPort: port,
					wireguardBackend: values["wireguard-backend"] ?? "",
					// Unset keeps the saved choice.
					disableFirewall: values["disable-firewall"]
						? true
						: values["enable-firewall"]
							? false
							: undefined,
				},
				{ deadline: new Date(Date.now() + 60_000) },
			);
			call.on("data", (p: UpProgress) => {
				if (!p.done) process.stdout.write(`${p.message}\n`);
			});
			call.on("error", (err: grpc.ServiceError) => reject(daemonError(err)));
			call.on("end", () => resolve());
		});
		process.stdout.write("Connected\n");
	} finally {
		c.close();
	}
}

async function cmdStatus(args: string[]): Promise<void> {
	const { values } = parse(args, {
		json: { type: "boolean" },
		detail: { type: "boolean", short: "d" },
	});
	const socket = socketPath(values.socket);
	const c = await client(socket);
	try {
		const status = await unary<{ detail: boolean }, DaemonStatus>(c.status.bind(c), {
			detail: values.detail === true,
		});
		const detail = values.detail === true;
		process.stdout.write(
			values.json
				? `${JSON.stringify(statusToJson(status, detail), null, 2)}\n`
				: `${statusToText(status, detail)}\n`,
		);
	} finally {
		c.close();
	}
}

async function cmdSimple(command: "down" | "logout", args: string[]): Promise<void> {
	const { values, positionals } = parse(args, {});
	if (positionals.length > 0) throw new CliError(`unexpected argument '${positionals[0]}'`, 2);
	const socket = socketPath(values.socket);
	const c = await client(socket);
	try {
		if (command === "down") await unary(c.down.bind(c), {});
		else await unary(c.logout.bind(c), {});
		process.stdout.write(
			command === "down"
				? "Disconnected\n"
				: "Logged out; this peer was removed from the network\n",
		);
	} finally {
		c.close();
	}
}

async function cmdLogin(args: string[]): Promise<void> {
	const { values } = parse(args, {
		"management-url": { type: "string" },
		"setup-key": { type: "string" },
	});
	const socket = socketPath(values.socket);
	const c = await client(socket);
	try {
		const res = await unary(c.login.bind(c), {
			managementUrl: values["management-url"] ?? "",
			setupKey: values["setup-key"] ?? process.env.STARLING_SETUP_KEY ?? "",
		});
		process.stdout.write(
			`${res.registered ? "Registered" : "Logged in"} as ${res.fqdn} (${res.overlayAddress})\n`,
		);
	} finally {
		c.close();
	}
}

async function serviceRun(args: string[]): Promise<void> {
	const { values } = parse(args, {
		"state-dir": { type: "string" },
		"metrics-addr": { type: "string" },
	});
	const metricsText = values["metrics-addr"] ?? process.env.STARLING_METRICS_ADDR ?? "";
	let metricsAddr: { host: string; port: number } | undefined;
	try {
		metricsAddr = metricsText ? parseMetricsAddr(metricsText) : undefined;
	} catch (err) {
		throw new CliError((err as Error).message, 2);
	}
	const logger = createLogger("agent");
	const stateDir = new StateDir(
		values["state-dir"] ?? process.env.STARLING_DATA_DIR ?? DEFAULT_STATE_DIR,
	);
	stateDir.ensure();
	stateDir.loadOrCreateKeyPair();
	const agent = new Agent({ stateDir, runner: run, logger });
	const daemon = await startDaemonServer(agent, socketPath(values.socket), logger);
	let metrics: MetricsServer | undefined;
	if (metricsAddr) {
		// prom-client (and the OpenTelemetry API it loads, ~90 modules) only when metrics are on.
		const { agentMetrics } = await import("../metrics/agent-metrics.js");
		metrics = await startMetricsServer(metricsAddr, agentMetrics(agent), logger).catch(
			async (err) => {
				await daemon.close();
				throw new CliError(`metrics: cannot listen on ${metricsText}: ${(err as Error).message}`);
			},
		);
	}
	let stopping = false;
	const stop = (signal: string) => {
		if (stopping) return;
		stopping = true;
		logger.info({ signal }, "daemon stopping");
		// Remove what we created; the saved config remembers we were up.
		void agent
			.shutdown()
			.catch(() => undefined)
			.then(() => metrics?.close())
			.then(() => daemon.close())
			.finally(() => process.exit(0));
	};
	process.on("SIGTERM", () => stop("SIGTERM"));
	process.on("SIGINT", () => stop("SIGINT"));
	await agent.restore();
}

async function cmdService(args: string[]): Promise<void> {
	const [action, ...rest] = args;
	if (action === "run") return serviceRun(rest);
	const { values, positionals } = parse(
		rest,
		action === "uninstall"
			? { purge: { type: "boolean" }, "state-dir": { type: "string" } }
			: ({} as Record<string, never>),
	);
	if (positionals.length > 0) throw new CliError(`unexpected argument '${positionals[0]}'`, 2);
	const manager = new ServiceManager(run);
	switch (action) {
		case "install": {
			const cli = realpathSync(fileURLToPath(import.meta.url));
			const env: Record<string, string> = {};
			for (const name of ["STARLING_DATA_DIR", "STARLING_SOCKET", "STARLING_LOG_LEVEL"]) {
				const v = process.env[name];
				if (v) env[name] = v;
			}
			const result = await manager.install(process.execPath, cli, env);
			process.stdout.write(
				result.systemdRunning
					? `Installed ${manager.unitPath}; start it with 'starling service start'\n`
					: `Installed ${manager.unitPath}${result.enabled ? " (enabled)" : ""}; systemd is not running here, so it starts on the next boot under systemd\n`,
			);
			return;
		}
		case "uninstall": {
			// What the installed unit told the daemon wins over this shell's environment.
			const unitEnv = manager.installedEnvironment();
			const stateDir =
				(typeof values["state-dir"] === "string" ? values["state-dir"] : undefined) ??
				unitEnv.STARLING_DATA_DIR ??
				process.env.STARLING_DATA_DIR ??
				DEFAULT_STATE_DIR;
			const socket =
				typeof values.socket === "string"
					? values.socket
					: (unitEnv.STARLING_SOCKET ?? socketPath(undefined));
			const report = await uninstallAgent(run, manager, {
				stateDir,
				socketPath: socket,
				purge: values.purge === true,
			});
			const lines = [
				report.unitRemoved
					? `Removed the starling service (${manager.unitPath})`
					: "No starling service was installed",
			];
			if (report.interfaceRemoved) lines.push(`Removed interface ${report.interfaceRemoved}`);
			if (report.tablesRemoved.length > 0) {
				lines.push(`Removed nftables tables: ${report.tablesRemoved.join(", ")}`);
			}
			lines.push(
				report.statePurged
					? `Deleted the state in ${stateDir}`
					: values.purge === true
						? `No state in ${stateDir}`
						: `Kept the state in ${stateDir} (this peer's key and config; --purge deletes it)`,
			);
			process.stdout.write(`${lines.join("\n")}\n`);
			return;
		}
		case "start":
			await manager.start();
			process.stdout.write("Started the starling service\n");
			return;
		case "stop":
			await manager.stop();
			process.stdout.write("Stopped the starling service\n");
			return;
		case "status":
			process.stdout.write(`${await manager.status()}\n`);
			return;
		default:
			throw new CliError(
				`unknown service action '${action ?? ""}' (install, uninstall, start, stop, status, run)`,
				2,
			);
	}
}

async function main(argv: string[]): Promise<void> {
	const [command, ...args] = argv;
	switch (command) {
		case "up":
			return cmdUp(args);
		case "down":
		case "logout":
			return cmdSimple(command, args);
		case "status":
			return cmdStatus(args);
		case "login":
			return cmdLogin(args);
		case "netcheck":
			return cmdNetcheck(args, { client, socketPath, usageError: (m) => new CliError(m, 2) });
		case "service":
			return cmdService(args);
		case "version":
		case "--version":
			process.stdout.write(`${AGENT_VERSION}\n`);
			return;
		case undefined:
		case "help":
		case "--help":
		case "-h":
			process.stdout.write(`${USAGE}\n`);
			return;
		default:
			throw new CliError(`unknown command '${command}' (see 'starling --help')`, 2);
	}
}

main(process.argv.slice(2)).catch((err: unknown) => {
	const message =
		err instanceof CliError || err instanceof CommandError || err instanceof UninstallError
			? err.message
			: err instanceof Error
				? err.message.split("\n")[0]
				: String(err);
	process.stderr.write(`starling: ${message}\n`);
	process.exit(err instanceof CliError ? err.exitCode : 1);
});
