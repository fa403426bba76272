// The `starling` CLI: parses the command and loads only what it needs.
// `version` and `help` load nothing more; `status` asks the daemon's status
// socket (node:net and the generated codecs); down, login and logout call
// the daemon through a small gRPC client on node:http2 (./daemon-call.js);
// `up`, `netcheck` and `service` load grpc-js and the daemon's own modules
// (./commands.js). Each is imported when its command runs.
import type { DaemonStatus } from "@starling/proto";
import { DEFAULT_SOCKET_PATH } from "../daemon/socket-path.js";
import { AGENT_VERSION } from "../version.js";
import { CliError, parse, socketPath } from "./cli-args.js";
import { fetchStatus } from "./status-call.js";

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
  routes [--json]       the routes this peer receives, the router in use for each and why
  exit-node use NAME | off | auto
                        route all traffic through the exit node NAME (its peer name
                        or network id), use none, or the automatically applied ones
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

async function gRpcStatus(socket: string, detail: boolean): Promise<DaemonStatus> {
	const { callDaemon, DaemonServiceService } = await import("./daemon-call.js");
	return callDaemon(socket, DaemonServiceService.status, { detail });
}

async function cmdStatus(args: string[]): Promise<void> {
	const { values } = parse(args, {
		json: { type: "boolean" },
		detail: { type: "boolean", short: "d" },
	});
	const detail = values.detail === true;
	const socket = socketPath(values.socket);
	const [status, format] = await Promise.all([
		fetchStatus(socket, detail).then(
			async (fromStatusSocket) =>
				// No status socket: the daemon is older, or not running (gRPC says which).
				fromStatusSocket ?? (await gRpcStatus(socket, detail)),
		),
		import("./status-format.js"),
	]);
	process.stdout.write(
		values.json
			? `${JSON.stringify(format.statusToJson(status, detail), null, 2)}\n`
			: `${format.statusToText(status, detail)}\n`,
	);
}

async function cmdSimple(command: "down" | "logout", args: string[]): Promise<void> {
	const { values, positionals } = parse(args, {});
	if (positionals.length > 0) throw new CliError(`unexpected argument '${positionals[0]}'`, 2);
	const socket = socketPath(values.socket);
	const { callDaemon, DaemonServiceService } = await import("./daemon-call.js");
	if (command === "down") {
		await callDaemon(socket, DaemonServiceService.down, {});
		process.stdout.write("Disconnected\n");
	} else {
		await callDaemon(socket, DaemonServiceService.logout, {});
		process.stdout.write("Logged out; this peer was removed from the network\n");
	}
}

async function cmdLogin(args: string[]): Promise<void> {
	const { values } = parse(args, {
		"management-url": { type: "string" },
		"setup-key": { type: "string" },
	});
	const { callDaemon, DaemonServiceService } = await import("./daemon-call.js");
	const res = await callDaemon(socketPath(values.socket), DaemonServiceService.login, {
		managementUrl: values["management-url"] ?? "",
		setupKey: values["setup-key"] ?? process.env.STARLING_SETUP_KEY ?? "",
	});
	process.stdout.write(
		`${res.registered ? "Registered" : "Logged in"} as ${res.fqdn} (${res.overlayAddress})\n`,
	);
}

async function cmdRoutes(args: string[]): Promise<void> {
	const { values, positionals } = parse(args, { json: { type: "boolean" } });
	if (positionals.length > 0) throw new CliError(`unexpected argument '${positionals[0]}'`, 2);
	const { callDaemon, DaemonServiceService } = await import("./daemon-call.js");
	const [res, format] = await Promise.all([
		callDaemon(socketPath(values.socket), DaemonServiceService.routes, {}),
		import("./routes-format.js"),
	]);
	process.stdout.write(
		values.json
			? `${JSON.stringify({ routes: res.routes.map(format.routeToJson), exit_node: res.exitNode, error: res.error }, null, 2)}\n`
			: `${[...format.routesToText(res.routes, res.exitNode), ...(res.error ? [`Error: ${res.error}`] : [])].join("\n")}\n`,
	);
}

async function cmdExitNode(args: string[]): Promise<void> {
	const { values, positionals } = parse(args, {});
	const [action, name, extra] = positionals;
	let wanted: string;
	if (action === "use" && name !== undefined && extra === undefined) wanted = name;
	else if ((action === "off" || action === "auto") && name === undefined) wanted = action;
	else throw new CliError("usage: starling exit-node use NAME | off | auto", 2);
	const { callDaemon, DaemonServiceService } = await import("./daemon-call.js");
	const res = await callDaemon(socketPath(values.socket), DaemonServiceService.setExitNode, {
		name: wanted,
	});
	process.stdout.write(
		wanted === "off"
			? "Exit node off\n"
			: res.router
				? `Exit node: ${res.router}\n`
				: wanted === "auto"
					? "Exit node: automatic (none applied now)\n"
					: `Exit node '${wanted}' selected; it is not reachable now\n`,
	);
}

async function main(argv: string[]): Promise<void> {
	const [command, ...args] = argv;
	switch (command) {
		case "up":
			return (await import("./commands.js")).cmdUp(args);
		case "down":
		case "logout":
			return cmdSimple(command, args);
		case "status":
			return cmdStatus(args);
		case "login":
			return cmdLogin(args);
		case "routes":
			return cmdRoutes(args);
		case "exit-node":
			return cmdExitNode(args);
		case "netcheck":
			return (await import("./commands.js")).cmdNetcheckWithDaemon(args);
		case "service":
			return (await import("./commands.js")).cmdService(args);
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
	const message = CliError.is(err)
		? err.message
		: // The daemon's failures (daemon-call.ts, status-call.ts) are one line already.
			err instanceof Error
			? err.message.split("\n")[0]
			: String(err);
	process.stderr.write(`starling: ${message}\n`);
	process.exit(CliError.is(err) ? err.exitCode : 1);
});
