// HAProxy in front of several management (and signal) instances: the config
// as a pure function of the backends, so what the lab runs and what the
// `ha` compose deployment ships can be checked without a process.

/** One instance behind the proxy. */
export interface HaproxyServer {
	/** Unique within its backend: letters, digits, `_`, `.`, `-`. */
	name: string;
	/** `host:port` the proxy connects to (h2c for gRPC backends, HTTP/1.1 otherwise). */
	address: string;
	/** Health-check this port instead of the backend's `health.port` (instances on one host). */
	checkPort?: number;
}

/** How the proxy decides whether a server takes requests. */
export interface HaproxyHealthCheck {
	/** Path of a GET that answers 200 while the instance can serve, e.g. `/readyz`. */
	path: string;
	/**
	 * `h1` or `h2` for the check connection. Management answers HTTP/1.1 and
	 * gRPC on one port and sends every HTTP/2 connection to gRPC, so its
	 * `/readyz` is only reachable over `h1`.
	 */
	protocol: "h1" | "h2";
	/** Check another port than the server's (signal serves `/readyz` on its metrics port). */
	port?: number;
}

export interface HaproxyBackend {
	/** Unique: letters, digits, `_`, `.`, `-`. */
	name: string;
	/** `grpc`: HTTP/2 without TLS (h2c) to the servers; `http`: HTTP/1.1. */
	protocol: "grpc" | "http";
	/**
	 * Requests whose path starts with one of these come here, e.g.
	 * `/starling.v1.ManagementService/`. Empty: the default backend, which
	 * takes every request no other backend matched (at most one).
	 */
	pathPrefixes: string[];
	servers: HaproxyServer[];
	health: HaproxyHealthCheck;
}

export interface HaproxyConfig {
	/** Where clients connect. */
	listen: { address: string; port: number };
	/**
	 * A PEM file with the certificate chain and its private key: the proxy
	 * terminates TLS and offers ALPN `h2` (gRPC, REST) and `http/1.1` (REST).
	 * Without it the listener speaks plaintext HTTP/1.1 and h2c (prior knowledge).
	 */
	tlsPemFile?: string;
	backends: HaproxyBackend[];
	/** A unix socket for `show stat` (operators, tests); none when unset. */
	adminSocket?: string;
	/** Health check interval; a server is out after 2 failed checks, back after 2 good ones. Default 500 ms. */
	checkIntervalMs?: number;
	/**
	 * Idle time a connection or stream may stay silent (client, server, tunnel):
	 * long, because Sync and signal streams live for hours; agents and servers
	 * send keepalives far more often. Default 1 h.
	 */
	streamIdleTimeout?: string;
	/**
	 * A DNS server (`host:port`) to resolve server names with at run time, e.g.
	 * docker's `127.0.0.11:53`: a container that restarts with a new address is
	 * found again, and an unresolvable name at start leaves that server DOWN
	 * instead of stopping the proxy.
	 */
	resolver?: string;
	/** A plain HTTP listener (`host:port`) whose `/healthz` answers 200 while the proxy runs. */
	monitor?: string;
	/** Started as root (to read a root-only key), drop to this user and group after binding. */
	runAs?: { user: string; group: string };
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const ADDRESS = /^[A-Za-z0-9_.-]+:(\d{1,5})$/;
/** A path prefix goes into the config verbatim: no spaces, quotes or comment marks. */
const PATH_PREFIX = /^\/[A-Za-z0-9_./-]*$/;

/** What an `http` backend answers when none of its servers is up: the REST API's error shape. */
export const NO_INSTANCE_BODY = JSON.stringify({
	message: "no instance of this service is ready; try again shortly",
	code: 503,
});

/** A config the renderer refuses, with what is wrong. */
export class HaproxyConfigError extends Error {
	override readonly name = "HaproxyConfigError";
}

function checkPort(what: string, port: number): void {
	if (!Number.isInteger(port) || port < 1 || port > 65535) {
		throw new HaproxyConfigError(`${what}: port ${port} is not 1 to 65535`);
	}
}

function validate(config: HaproxyConfig): void {
	checkPort("listen", config.listen.port);
	if (config.backends.length === 0) throw new HaproxyConfigError("no backends");
	const names = new Set<string>();
	let defaults = 0;
	for (const backend of config.backends) {
		if (!NAME.test(backend.name)) {
			throw new HaproxyConfigError(`backend name '${backend.name}' is not [A-Za-z0-9_.-]`);
		}
		if (names.has(backend.name)) throw new HaproxyConfigError(`backend '${backend.name}' twice`);
		names.add(backend.name);
		if (backend.pathPrefixes.length === 0) defaults += 1;
		for (const prefix of backend.pathPrefixes) {
			if (!PATH_PREFIX.test(prefix)) {
				throw new HaproxyConfigError(`backend '${backend.name}': bad path prefix '${prefix}'`);
			}
		}
		if (backend.servers.length === 0) {
			throw new HaproxyConfigError(`backend '${backend.name}' has no servers`);
		}
		const serverNames = new Set<string>();
		for (const server of backend.servers) {
			if (!NAME.test(server.name) || serverNames.has(server.name)) {
				throw new HaproxyConfigError(
					`backend '${backend.name}': server name '${server.name}' is not unique [A-Za-z0-9_.-]`,
				);
			}
			serverNames.add(server.name);
			const port = ADDRESS.exec(server.address)?.[1];
			if (!port) {
				throw new HaproxyConfigError(
					`backend '${backend.name}', server '${server.name}': address '${server.address}' is not host:port`,
				);
			}
			checkPort(`server '${server.name}'`, Number(port));
			if (server.checkPort !== undefined) {
				checkPort(`server '${server.name}' health`, server.checkPort);
			}
		}
		if (!PATH_PREFIX.test(backend.health.path)) {
			throw new HaproxyConfigError(
				`backend '${backend.name}': bad health path '${backend.health.path}'`,
			);
		}
		if (backend.health.port !== undefined) {
			checkPort(`backend '${backend.name}' health`, backend.health.port);
		}
	}
	if (defaults > 1) {
		throw new HaproxyConfigError("more than one backend without path prefixes (the default)");
	}
	for (const [what, address] of [
		["resolver", config.resolver],
		["monitor", config.monitor],
	] as const) {
		if (address === undefined) continue;
		const port = ADDRESS.exec(address)?.[1];
		if (!port) throw new HaproxyConfigError(`${what} '${address}' is not host:port`);
		checkPort(what, Number(port));
	}
	if (config.runAs && !(NAME.test(config.runAs.user) && NAME.test(config.runAs.group))) {
		throw new HaproxyConfigError("runAs: user and group must be [A-Za-z0-9_.-]");
	}
	const interval = config.checkIntervalMs ?? 500;
	if (!Number.isInteger(interval) || interval < 100) {
		throw new HaproxyConfigError(`checkIntervalMs ${interval} is below 100`);
	}
}

/** The haproxy.cfg for `config`; throws HaproxyConfigError on a config it cannot render. */
export function renderHaproxyConfig(config: HaproxyConfig): string {
	validate(config);
	const idle = config.streamIdleTimeout ?? "1h";
	const interval = config.checkIntervalMs ?? 500;
	const lines: string[] = [
		"# Rendered by renderHaproxyConfig (@starling/lab).",
		"global",
		// In the foreground (-db) the proxy's own messages (servers going down and up) go to stderr.
		"    log stderr format raw daemon notice",
	];
	if (config.adminSocket) {
		lines.push(`    stats socket ${config.adminSocket} mode 600 level admin`);
	}
	if (config.runAs) {
		lines.push(`    user ${config.runAs.user}`, `    group ${config.runAs.group}`);
	}
	if (config.resolver) {
		lines.push(
			"",
			"resolvers dns",
			`    nameserver dns1 ${config.resolver}`,
			"    hold valid 10s",
			"    hold nx 1s",
		);
	}
	lines.push(
		"",
		"defaults",
		"    mode http",
		"    log global",
		"    timeout connect 2s",
		"    timeout check 2s",
		"    timeout http-request 10s",
		"    timeout http-keep-alive 10s",
		// Sync and signal streams stay open for hours and are silent between keepalives.
		`    timeout client ${idle}`,
		`    timeout server ${idle}`,
		`    timeout tunnel ${idle}`,
		// A request that cannot reach its server (refused, reset before an answer) is
		// tried again, on another server, before the health checks notice.
		"    retries 2",
		"    option redispatch 1",
		`    default-server inter ${interval}ms fall 2 rise 2`,
		"",
	);
	if (config.monitor) {
		lines.push("frontend monitor", `    bind ${config.monitor}`, "    monitor-uri /healthz", "");
	}
	lines.push("frontend starling");
	const bind = `${config.listen.address}:${config.listen.port}`;
	lines.push(
		config.tlsPemFile
			? `    bind ${bind} ssl crt ${config.tlsPemFile} alpn h2,http/1.1`
			: `    bind ${bind}`,
	);
	for (const backend of config.backends) {
		if (backend.pathPrefixes.length === 0) continue;
		lines.push(`    use_backend ${backend.name} if { path_beg ${backend.pathPrefixes.join(" ")} }`);
	}
	const fallback = config.backends.find((b) => b.pathPrefixes.length === 0);
	if (fallback) lines.push(`    default_backend ${fallback.name}`);

	for (const backend of config.backends) {
		lines.push(
			"",
			`backend ${backend.name}`,
			"    balance roundrobin",
			"    option httpchk",
			// Without the version and Host header, HTTP/2 checks fail.
			`    http-check send meth GET uri ${backend.health.path} ver HTTP/1.1 hdr host localhost`,
			"    http-check expect status 200",
		);
		if (backend.protocol === "http") {
			// With no instance ready the proxy answers itself: in the API's error shape.
			lines.push(
				`    http-error status 503 content-type application/json string "${NO_INSTANCE_BODY.replaceAll('"', '\\"')}"`,
			);
		}
		const proto = backend.protocol === "grpc" ? " proto h2" : "";
		for (const server of backend.servers) {
			const port = server.checkPort ?? backend.health.port;
			const check = [
				...(config.resolver ? ["resolvers dns", "init-addr libc,none"] : []),
				"check",
				`check-proto ${backend.health.protocol}`,
				...(port === undefined ? [] : [`port ${port}`]),
			].join(" ");
			lines.push(`    server ${server.name} ${server.address}${proto} ${check}`);
		}
	}
	return `${lines.join("\n")}\n`;
}

/** One row of HAProxy's `show stat`: a server (or FRONTEND/BACKEND) and its state. */
export interface HaproxyServerState {
	backend: string;
	server: string;
	/** `UP`, `DOWN`, `MAINT`, `no check`, `UP 1/2` (going down), `DOWN 1/2` (coming up), `OPEN` for frontends. */
	status: string;
	/** Sessions it has served so far. */
	sessionsTotal: number;
}

/** Parses the CSV `show stat` prints (a `# pxname,svname,...` header, one row per line). */
export function parseHaproxyStat(csv: string): HaproxyServerState[] {
	const lines = csv.split("\n").filter((l) => l.trim() !== "");
	const header = lines.shift();
	if (!header?.startsWith("# ")) throw new Error(`not a 'show stat' answer: ${csv.slice(0, 200)}`);
	const columns = header.slice(2).split(",");
	const at = (name: string) => {
		const i = columns.indexOf(name);
		if (i < 0) throw new Error(`'show stat' has no ${name} column`);
		return i;
	};
	const [pxname, svname, status, stot] = [at("pxname"), at("svname"), at("status"), at("stot")];
	return lines.map((line) => {
		const cells = line.split(",");
		return {
			backend: cells[pxname] ?? "",
			server: cells[svname] ?? "",
			status: cells[status] ?? "",
			sessionsTotal: Number(cells[stot] ?? 0),
		};
	});
}
