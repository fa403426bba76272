// The commands that need grpc-js or the daemon's own modules: `up` (a
// server stream), `netcheck`, and `service` (install, uninstall, start, stop,
// status, and `run`, the daemon itself). cli.ts loads this module only for them.
import { realpathSync } from "node:fs";
import { connect } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { createLogger } from "@starling/log";
import { DaemonServiceClient, type UpProgress } from "@starling/proto";
import { Agent } from "../daemon/agent.js";
import { startDaemonServer } from "../daemon/daemon-server.js";
import { trustSystemCertificates } from "../daemon/server-trust.js";
import { StateDir } from "../daemon/state-dir.js";
import { parseMetricsAddr, startMetricsServer } from "../metrics/metrics-server.js";
import { CommandError, run } from "../system/exec.js";
import { CliError, parse, socketPath } from "./cli-args.js";
import { daemonNotRunning } from "./daemon-call.js";
import { cmdNetcheck } from "./netcheck.js";
import { ServiceManager } from "./systemd.js";
import { UninstallError, uninstallAgent } from "./uninstall.js";

const DEFAULT_STATE_DIR = "/var/lib/starling";

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
	if (!reachable) throw daemonNotRunning(socket);
}

export async function cmdUp(args: string[]): Promise<void> {
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
	const trust = trustSystemCertificates();
	if ("error" in trust) {
		logger.warn(
			{ error: trust.error },
			"cannot read the system CA store; trusting Node's CAs and NODE_EXTRA_CA_CERTS only",
		);
	} else {
		logger.info(
			{ certificateAuthorities: trust.trusted },
			"trusting the system CA store, Node's CAs and NODE_EXTRA_CA_CERTS",
		);
	}
	const stateDir = new StateDir(
		values["state-dir"] ?? process.env.STARLING_DATA_DIR ?? DEFAULT_STATE_DIR,
	);
	stateDir.ensure();
	stateDir.loadOrCreateKeyPair();
	const agent = new Agent({ stateDir, runner: run, logger });
	const daemon = await startDaemonServer(agent, socketPath(values.socket), logger);
	// prom-client (and the OpenTelemetry API it loads, ~90 modules) only when metrics are on.
	const metrics = metricsAddr
		? await startMetricsServer(
				metricsAddr,
				(await import("../metrics/agent-metrics.js")).agentMetrics(agent),
				logger,
			).catch(async (err) => {
				await daemon.close();
				throw new CliError(`metrics: cannot listen on ${metricsText}: ${(err as Error).message}`);
			})
		: undefined;
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

async function serviceAction(args: string[]): Promise<void> {
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
			// The unit runs the command's entry (bin/starling's script), not this module.
			const cli = realpathSync(process.argv[1] ?? "");
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
			if (report.forwardingRestored) {
				lines.push("Gave net.ipv4.ip_forward back its value from before the agent changed it");
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

/** `starling netcheck`: probes by itself, or asks the daemon (through grpc-js). */
export function cmdNetcheckWithDaemon(args: string[]): Promise<void> {
	return cmdNetcheck(args, { client, socketPath, usageError: (m) => new CliError(m, 2) });
}

/** `starling service ...`; failures of the commands it runs become one line. */
export async function cmdService(args: string[]): Promise<void> {
	try {
		await serviceAction(args);
	} catch (err) {
		if (err instanceof CommandError || err instanceof UninstallError) {
			throw new CliError(err.message);
		}
		throw err;
	}
}
