import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { execa } from "execa";
import {
	AddressError,
	AddressPool,
	isLabAddress,
	parseIPv4,
	parseLabSubnet,
	type Subnet,
} from "./address.js";
import { isNatKind, type NatKind, natRuleset, type PortForward } from "./nat.js";
import { type LabProcess, SpawnedProcess } from "./process.js";
import {
	claimState,
	isAlive,
	type LabState,
	listLabNamespaces,
	NETNS_DIR,
	namespaceName,
	ownProcessRef,
	type ProcessRef,
	processStart,
	purgeNamespaces,
	purgeNamespacesSync,
	readState,
	registerForExit,
	removeLabDir,
	removeLeftovers,
	removeState,
	STATE_DIR,
	unregisterForExit,
	updateState,
	validateLabName,
	validateNodeName,
} from "./registry.js";
import { type ExecOptions, type ExecResult, run } from "./run.js";
import { labUnavailable } from "./skip.js";

/** Where every host sees its own state directory (the agent's default data directory). */
export const HOST_STATE_MOUNT = "/var/lib/starling";

/** The bridge inside each LAN namespace. */
const BRIDGE = "br0";

/**
 * Runs as each node's holder: private mounts, then sleep forever. `$1` is the state directory,
 * `$2` a log file (no pipes to us, so the holder does not keep Node's event loop alive).
 * The tmpfs on /run gives every node its own /run/wireguard (wireguard-go's control sockets),
 * /run/starling.sock and so on; /var/run is a symlink to /run on Debian, and a directory
 * elsewhere, hence the second mount.
 */
const HOLDER_SCRIPT = [
	'exec >>"$2" 2>&1',
	"set -e",
	"mount -t tmpfs -o mode=0755,size=64m starling-lab-run /run",
	"mkdir -p /run/wireguard /run/lock",
	"if [ ! -L /var/run ] && [ -d /var/run ]; then mount --bind /run /var/run; fi",
	`mount --bind "$1" ${HOST_STATE_MOUNT}`,
	// Its own host name too (a UTS namespace), as a real machine has.
	'hostname "$3"',
	"exec sleep infinity",
].join("\n");

const BUFFER_SYSCTLS = [
	"net.core.rmem_max=8388608",
	"net.core.wmem_max=8388608",
	"net.core.rmem_default=4194304",
	"net.core.wmem_default=4194304",
];

export interface LabOptions {
	/** Keep the nodes' state directories after destroy (default: delete them). */
	keepFiles?: boolean;
}

/** A switch: a Linux bridge in a namespace of its own. */
export interface Lan {
	readonly name: string;
	/** Canonical subnet text, e.g. "198.18.1.0/24". */
	readonly subnet: string;
	/** The namespace holding the bridge. */
	readonly netns: string;
	readonly prefixLength: number;
}

export interface SpawnOptions {
	env?: Record<string, string>;
	/** Shown in errors and `Lab.logs()` (default: the command's base name). */
	name?: string;
}

export interface PingOptions {
	/** Echo requests to send; all must be answered (default 1). */
	count?: number;
	/** Overall deadline in seconds (default 2). */
	timeoutSeconds?: number;
}

/** What hosts and routers have in common: a network namespace plus a private mount namespace. */
export interface LabNode {
	readonly name: string;
	readonly netns: string;
	/** A directory on the real filesystem, bind-mounted at /var/lib/starling inside the node. */
	readonly stateDir: string;
	/** The holder process: `nsenter --mount=/proc/<holderPid>/ns/mnt --net=/run/netns/<netns>` enters the node. */
	readonly holderPid: number;
	/** Runs a command inside the node (its network and mount namespace) and waits for it. */
	exec(command: string, args: string[], options?: ExecOptions): Promise<ExecResult>;
	/** Starts a long-running command inside the node; output is captured; killed by `destroy()`. */
	spawn(command: string, args: string[], options?: SpawnOptions): LabProcess;
	/** True when `address` answers ICMP echo from this node. */
	ping(address: string, options?: PingOptions): Promise<boolean>;
	/** Adds (or replaces) a route in the node: `destination` is a lab subnet or "default". */
	addRoute(destination: string, via: string): Promise<void>;
}

export interface Host extends LabNode {
	/** The host's address on its LAN (interface eth0). */
	readonly address: string;
	readonly lan: Lan;
}

export interface Router extends LabNode {
	readonly wanAddress: string;
	readonly lanAddress: string;
	readonly wan: Lan;
	readonly lan: Lan;
	/** The NAT behaviour in force. */
	readonly nat: NatKind;
	/** Replaces the router's rules atomically with those for `kind`, then flushes conntrack. */
	setNat(kind: NatKind): Promise<void>;
	/** Adds a destination NAT from wanAddress:port to a host behind the router (kept across setNat). */
	forwardPort(protocol: "tcp" | "udp", port: number, to: string, toPort?: number): Promise<void>;
	/** Deletes all conntrack entries in the router (NAT mappings start afresh). */
	flushConntrack(): Promise<void>;
}

export interface HostOptions {
	lan: Lan;
	/** Default: the lowest free address of the LAN. */
	address?: string;
	/** The router to use as default gateway; it must have an interface on `lan`. */
	gateway?: Router;
}

export interface RouterOptions {
	wan: Lan;
	lan: Lan;
	/** Default: the lowest free address of the wan LAN. */
	wanAddress?: string;
	/** Default: the lowest free address of the lan LAN. */
	lanAddress?: string;
	nat: NatKind;
	/** An upstream router on the wan LAN to use as default gateway (e.g. a carrier-grade NAT). */
	wanGateway?: Router;
}

class LabLan implements Lan {
	readonly pool: AddressPool;
	constructor(
		readonly lab: Lab,
		readonly name: string,
		readonly parsed: Subnet,
		readonly netns: string,
	) {
		this.pool = new AddressPool(parsed);
	}
	get subnet(): string {
		return this.parsed.text;
	}
	get prefixLength(): number {
		return this.parsed.prefix;
	}
}

/** What nodes need from their lab. */
interface LabContext {
	readonly labName: string;
	assertOpen(): void;
	track(process: SpawnedProcess): void;
	recordHolder(ref: ProcessRef): void;
}

function startChild(
	name: string,
	command: string,
	args: readonly string[],
	options: { env?: Record<string, string> | undefined; quiet?: boolean } = {},
): SpawnedProcess {
	const common = { buffer: false, reject: false, env: options.env, extendEnv: true } as const;
	const subprocess = !options.quiet
		? execa(command, args, { ...common, stdin: "ignore" })
		: execa(command, args, {
				...common,
				stdin: "ignore",
				stdout: "ignore",
				stderr: "ignore",
			});
	void subprocess.catch(() => undefined); // results come from the "exit" event below
	if (subprocess.pid === undefined) {
		throw new Error(`${name}: could not start ${command}`);
	}
	subprocess.stdout?.setEncoding("utf8");
	subprocess.stderr?.setEncoding("utf8");
	return new SpawnedProcess(name, {
		pid: subprocess.pid,
		stdout: subprocess.stdout,
		stderr: subprocess.stderr,
		// On the process's own exit, not when its pipes close: a daemon it started may hold
		// them open for much longer.
		done: new Promise((resolve) => {
			subprocess.once("exit", (exitCode, signal) => resolve({ exitCode, signal }));
		}),
		onExit: (listener) => {
			subprocess.once("exit", listener);
		},
		unref: () => subprocess.unref(),
	});
}

abstract class BaseNode implements LabNode {
	#holder: SpawnedProcess | undefined;

	constructor(
		protected readonly context: LabContext,
		readonly name: string,
		readonly netns: string,
		readonly stateDir: string,
	) {}

	/** Starts the holder process that owns the node's private mount namespace. */
	async start(): Promise<void> {
		mkdirSync(this.stateDir, { recursive: true, mode: 0o755 });
		// The mount point must exist on the real filesystem; it stays empty there.
		mkdirSync(HOST_STATE_MOUNT, { recursive: true, mode: 0o755 });
		// No pipes between us and the holder, and unref'd: it does not keep Node's event loop
		// alive, so a script that forgets destroy() still exits (and the exit handler cleans up).
		const logPath = join(dirname(this.stateDir), `.${this.name}.holder.log`);
		writeFileSync(logPath, "");
		const holder = startChild(
			`${this.name}/holder`,
			"ip",
			[
				"netns",
				"exec",
				this.netns,
				"unshare",
				"--mount",
				"--uts",
				"--propagation",
				"private",
				"--",
				"sh",
				"-c",
				HOLDER_SCRIPT,
				"starling-lab-holder",
				this.stateDir,
				logPath,
				this.name,
			],
			{ quiet: true },
		);
		holder.unref();
		this.#holder = holder;
		this.context.track(holder);
		// The script execs sleep only once its mounts are in place.
		const deadline = Date.now() + 10_000;
		while (readComm(holder.pid) !== "sleep") {
			if (!holder.running || Date.now() > deadline) {
				holder.signal("SIGKILL");
				const log = readFileSync(logPath, "utf8").trim();
				throw new Error(
					`${this.name}: could not set up the node's mount namespace${holder.running ? " (timed out)" : ""}: ${log || "no output"}`,
				);
			}
			await new Promise((resolve) => setTimeout(resolve, 5));
		}
		const start = processStart(holder.pid);
		if (start !== undefined) this.context.recordHolder({ pid: holder.pid, start, node: this.name });
	}

	/** The pid whose mount namespace the node's commands join. */
	get holderPid(): number {
		return this.#liveHolder().pid;
	}

	#liveHolder(): SpawnedProcess {
		this.context.assertOpen();
		const holder = this.#holder;
		if (!holder?.running) throw new Error(`${this.name}: the node's holder process is gone`);
		return holder;
	}

	/** nsenter arguments that run `command` in this node (network and mount namespace). */
	protected enterArgs(command: string, args: readonly string[]): string[] {
		const holder = this.#liveHolder();
		return [
			`--mount=/proc/${holder.pid}/ns/mnt`,
			`--uts=/proc/${holder.pid}/ns/uts`,
			`--net=${NETNS_DIR}/${this.netns}`,
			`--wd=${workingDirectory()}`,
			"--",
			command,
			...args,
		];
	}

	async exec(command: string, args: string[], options: ExecOptions = {}): Promise<ExecResult> {
		return run("nsenter", this.enterArgs(command, args), {
			...options,
			display: `${this.name}: ${[command, ...args].join(" ")}`,
		});
	}

	spawn(command: string, args: string[], options: SpawnOptions = {}): LabProcess {
		const label = `${this.name}/${options.name ?? command.split("/").pop() ?? command}`;
		const child = startChild(label, "nsenter", this.enterArgs(command, args), { env: options.env });
		this.context.track(child);
		return child;
	}

	async ping(address: string, options: PingOptions = {}): Promise<boolean> {
		parseIPv4(address);
		const count = options.count ?? 1;
		const timeout = options.timeoutSeconds ?? 2;
		const result = await this.exec(
			"ping",
			["-n", "-q", "-c", String(count), "-i", "0.2", "-w", String(timeout), address],
			{ allowFailure: true, timeoutMs: (timeout + 5) * 1000 },
		);
		return result.exitCode === 0;
	}

	async addRoute(destination: string, via: string): Promise<void> {
		this.context.assertOpen();
		const target = destination === "default" ? "default" : parseLabSubnet(destination).text;
		if (!isLabAddress(via)) throw new AddressError(`gateway ${via} is outside the lab range`);
		await run("ip", ["-n", this.netns, "route", "replace", target, "via", via]);
	}
}

class LabHost extends BaseNode implements Host {
	constructor(
		context: LabContext,
		name: string,
		netns: string,
		stateDir: string,
		readonly address: string,
		readonly lan: LabLan,
	) {
		super(context, name, netns, stateDir);
	}
}

class LabRouter extends BaseNode implements Router {
	#nat: NatKind = "none";
	readonly #forwards: PortForward[] = [];

	constructor(
		context: LabContext,
		name: string,
		netns: string,
		stateDir: string,
		readonly wan: LabLan,
		readonly lan: LabLan,
		readonly wanAddress: string,
		readonly lanAddress: string,
	) {
		super(context, name, netns, stateDir);
	}

	get nat(): NatKind {
		return this.#nat;
	}

	/** The router's address on `lan`, for hosts that use it as gateway. */
	addressOn(lan: Lan): string {
		if (lan === this.lan) return this.lanAddress;
		if (lan === this.wan) return this.wanAddress;
		throw new Error(`router ${this.name} has no interface on LAN ${lan.name}`);
	}

	async setNat(kind: NatKind): Promise<void> {
		if (!isNatKind(kind)) throw new Error(`unknown NAT kind ${JSON.stringify(kind)}`);
		await this.exec("nft", ["-f", "-"], { input: natRuleset(kind, this.#forwards) });
		this.#nat = kind;
		await this.flushConntrack();
	}

	async forwardPort(
		protocol: "tcp" | "udp",
		port: number,
		to: string,
		toPort = port,
	): Promise<void> {
		if (protocol !== "tcp" && protocol !== "udp")
			throw new Error(`bad protocol ${String(protocol)}`);
		for (const p of [port, toPort]) {
			if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`bad port ${p}`);
		}
		if (!isLabAddress(to)) throw new AddressError(`${to} is outside the lab range`);
		this.#forwards.push({ protocol, port, toAddress: to, toPort });
		await this.setNat(this.#nat);
	}

	async flushConntrack(): Promise<void> {
		await this.exec("conntrack", ["-F"]);
	}
}

/**
 * A network lab: LANs (bridges), hosts and routers, each in its own network namespace named
 * `stl-<lab>-<node>`. See README.md.
 */
export class Lab {
	readonly #nodes = new Map<string, "lan" | "host" | "router">();
	readonly #namespaces: string[] = [];
	readonly #processes = new Set<SpawnedProcess>();
	readonly #state: LabState;
	readonly #keepFiles: boolean;
	#ports = 0;
	#destroying: Promise<void> | undefined;
	#tornDown = false;
	#buffers: "untried" | "ok" | "read-only" = "untried";
	/** Things worth knowing about this machine, e.g. sysctls that could not be set. */
	readonly notes: string[] = [];

	private constructor(
		readonly name: string,
		/** Parent directory of the nodes' state directories. */
		readonly dir: string,
		state: LabState,
		options: LabOptions,
	) {
		this.#state = state;
		this.#keepFiles = options.keepFiles ?? false;
	}

	/**
	 * Creates a lab. `name` is 1-6 characters of [a-z0-9], unique among labs running at the same
	 * time (one per test file, say). First removes what crashed runs left behind.
	 */
	static async create(name: string, options: LabOptions = {}): Promise<Lab> {
		validateLabName(name);
		if (labUnavailable) throw new Error(`cannot create lab ${name}: ${labUnavailable}`);
		mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
		await removeLeftovers();
		const dir = join(tmpdir(), "starling-lab", name);
		const state: LabState = {
			version: 1,
			lab: name,
			owner: ownProcessRef(),
			dir,
			keepFiles: options.keepFiles ?? false,
			processes: [],
			createdAt: new Date().toISOString(),
		};
		if (!claimState(state)) {
			const existing = readState(name);
			if (existing && isAlive(existing.owner)) {
				const who =
					existing.owner.pid === process.pid ? "this process" : `process ${existing.owner.pid}`;
				throw new Error(`lab ${name} is in use by ${who}; destroy it first or pick another name`);
			}
			// Its owner died after the leftover sweep above.
			await purgeNamespaces(listLabNamespaces(name), existing?.processes ?? []);
			removeState(name, existing?.owner);
			if (!claimState(state))
				throw new Error(`lab ${name} was claimed concurrently by another process`);
		}
		rmSync(dir, { recursive: true, force: true });
		mkdirSync(dir, { recursive: true, mode: 0o755 });
		const lab = new Lab(name, dir, state, options);
		registerForExit(lab);
		return lab;
	}

	/** Removes every lab left behind by dead processes (what `create` does first). */
	static removeLeftovers(): Promise<string[]> {
		return removeLeftovers();
	}

	/** A switch: a bridge in namespace `stl-<lab>-<name>`, for `subnet` (inside 198.18.0.0/15). */
	async lan(name: string, subnet: string): Promise<Lan> {
		this.#reserve(name, "lan");
		const parsed = parseLabSubnet(subnet);
		const ns = await this.#addNamespace(name, false);
		await run("ip", ["-n", ns, "link", "add", BRIDGE, "type", "bridge", "forward_delay", "0"]);
		await run("ip", ["-n", ns, "link", "set", BRIDGE, "up"]);
		return new LabLan(this, name, parsed, ns);
	}

	/** A host with one interface (eth0) on `lan`. */
	async host(name: string, options: HostOptions): Promise<Host> {
		this.#reserve(name, "host");
		const lan = this.#ownLan(options.lan);
		const gatewayAddress = options.gateway
			? this.#ownRouter(options.gateway).addressOn(lan)
			: undefined;
		const address = lan.pool.allocate(options.address);
		const ns = await this.#addNamespace(name, false);
		await this.#attach(ns, "eth0", lan, address);
		if (gatewayAddress)
			await run("ip", ["-n", ns, "route", "add", "default", "via", gatewayAddress]);
		const host = new LabHost(this.#context, name, ns, this.#stateDirOf(name), address, lan);
		await host.start();
		return host;
	}

	/** A router with interfaces "wan" and "lan", forwarding between them, with the given NAT. */
	async router(name: string, options: RouterOptions): Promise<Router> {
		this.#reserve(name, "router");
		if (!isNatKind(options.nat)) throw new Error(`unknown NAT kind ${JSON.stringify(options.nat)}`);
		const wan = this.#ownLan(options.wan);
		const lan = this.#ownLan(options.lan);
		if (wan === lan) throw new Error(`router ${name}: wan and lan must be different LANs`);
		const upstream = options.wanGateway
			? this.#ownRouter(options.wanGateway).addressOn(wan)
			: undefined;
		const wanAddress = wan.pool.allocate(options.wanAddress);
		const lanAddress = lan.pool.allocate(options.lanAddress);
		const ns = await this.#addNamespace(name, true);
		await this.#attach(ns, "wan", wan, wanAddress);
		await this.#attach(ns, "lan", lan, lanAddress);
		if (upstream) await run("ip", ["-n", ns, "route", "add", "default", "via", upstream]);
		const router = new LabRouter(
			this.#context,
			name,
			ns,
			this.#stateDirOf(name),
			wan,
			lan,
			wanAddress,
			lanAddress,
		);
		await router.start();
		await router.setNat(options.nat);
		return router;
	}

	/** Output of every process started in the lab (most recent 40 lines each), for test failure messages. */
	logs(): string {
		return [...this.#processes]
			.filter((p) => !p.name.endsWith("/holder"))
			.map((p) => {
				const lines = p.output().trimEnd().split("\n").slice(-40).join("\n");
				return `--- ${p.name} (pid ${p.pid}${p.running ? "" : ", exited"}) ---\n${lines}`;
			})
			.join("\n");
	}

	/** Namespaces this lab created. */
	get namespaces(): readonly string[] {
		return [...this.#namespaces];
	}

	/** Kills every process started in the lab, deletes its namespaces and files. Idempotent. */
	destroy(): Promise<void> {
		this.#destroying ??= this.#destroy();
		return this.#destroying;
	}

	async #destroy(): Promise<void> {
		unregisterForExit(this);
		const children = [...this.#processes];
		for (const child of children) child.signal("SIGKILL");
		await purgeNamespaces([...this.#namespaces, ...listLabNamespaces(this.name)].filter(unique), [
			...this.#state.processes,
		]);
		await Promise.race([
			Promise.all(children.map((c) => c.exited)),
			new Promise((resolve) => setTimeout(resolve, 5_000)),
		]);
		this.#finish();
	}

	/** The synchronous teardown used by exit and signal handlers. */
	destroySync(): void {
		if (this.#tornDown) return;
		this.#destroying ??= Promise.resolve();
		unregisterForExit(this);
		for (const child of this.#processes) child.signal("SIGKILL");
		purgeNamespacesSync([...this.#namespaces, ...listLabNamespaces(this.name)].filter(unique), [
			...this.#state.processes,
		]);
		this.#finish();
	}

	#finish(): void {
		if (this.#tornDown) return;
		this.#tornDown = true;
		if (!this.#keepFiles) removeLabDir(this.dir, this.name);
		removeState(this.name, this.#state.owner);
	}

	get #context(): LabContext {
		return {
			labName: this.name,
			assertOpen: () => this.#assertOpen(),
			track: (process) => {
				this.#processes.add(process);
			},
			recordHolder: (ref) => {
				this.#state.processes.push(ref);
				if (!this.#destroying) updateState(this.#state);
			},
		};
	}

	#assertOpen(): void {
		if (this.#destroying) throw new Error(`lab ${this.name} has been destroyed`);
	}

	#reserve(name: string, kind: "lan" | "host" | "router"): void {
		this.#assertOpen();
		validateNodeName(name);
		const existing = this.#nodes.get(name);
		if (existing) throw new Error(`lab ${this.name} already has a ${existing} named ${name}`);
		this.#nodes.set(name, kind);
	}

	#ownLan(lan: Lan): LabLan {
		if (!(lan instanceof LabLan) || lan.lab !== this)
			throw new Error(`LAN ${lan.name} is not part of lab ${this.name}`);
		return lan;
	}

	#ownRouter(router: Router): LabRouter {
		if (!(router instanceof LabRouter) || !this.#namespaces.includes(router.netns)) {
			throw new Error(`router ${router.name} is not part of lab ${this.name}`);
		}
		return router;
	}

	#stateDirOf(node: string): string {
		return join(this.dir, node);
	}

	async #addNamespace(node: string, forwarding: boolean): Promise<string> {
		const ns = namespaceName(this.name, node);
		this.#namespaces.push(ns); // before creating it, so that destroy() finds a half-made one
		await run("ip", ["netns", "add", ns]);
		const enter = [`--net=${NETNS_DIR}/${ns}`, "--", "sysctl", "-q", "-w"];
		await run("nsenter", [
			...enter,
			// Only the lab's 198.18.0.0/15 addresses: no IPv6 link-local on new interfaces (lo keeps ::1).
			"net.ipv6.conf.default.disable_ipv6=1",
			"net.ipv4.conf.all.rp_filter=0",
			"net.ipv4.conf.default.rp_filter=0",
			`net.ipv4.ip_forward=${forwarding ? 1 : 0}`,
		]);
		if (this.#buffers !== "read-only") {
			// Bigger socket buffers help wireguard-go; many kernels make these read-only outside
			// the root namespace (a new namespace then inherits the root's values).
			const result = await run("nsenter", [...enter, ...BUFFER_SYSCTLS], { allowFailure: true });
			// sysctl exits 0 even when a key could not be written; it says so on stderr.
			const failed = result.exitCode !== 0 || result.stderr.trim() !== "";
			if (failed && this.#buffers === "untried") {
				this.#buffers = "read-only";
				this.notes.push(
					`net.core.{r,w}mem_{max,default} cannot be set inside lab namespaces on this kernel; they inherit the root namespace's values (rmem_default ${rootSysctl("net/core/rmem_default")}, rmem_max ${rootSysctl("net/core/rmem_max")})`,
				);
			} else if (!failed) {
				this.#buffers = "ok";
			}
		}
		await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
		return ns;
	}

	/** Connects `ifname` in namespace `ns` to the LAN's bridge and gives it `address`. */
	async #attach(ns: string, ifname: string, lan: LabLan, address: string): Promise<void> {
		const port = `p${++this.#ports}`;
		await run("ip", [
			"-n",
			lan.netns,
			"link",
			"add",
			port,
			"type",
			"veth",
			"peer",
			"name",
			ifname,
			"netns",
			ns,
		]);
		await run("ip", ["-n", lan.netns, "link", "set", port, "master", BRIDGE, "up"]);
		await run("ip", ["-n", ns, "addr", "add", `${address}/${lan.prefixLength}`, "dev", ifname]);
		await run("ip", ["-n", ns, "link", "set", ifname, "up"]);
	}
}

function unique<T>(value: T, index: number, all: T[]): boolean {
	return all.indexOf(value) === index;
}

function rootSysctl(path: string): string {
	try {
		return readFileSync(`/proc/sys/${path}`, "utf8").trim();
	} catch {
		return "unknown";
	}
}

function readComm(pid: number): string | undefined {
	try {
		return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
	} catch {
		return undefined;
	}
}

/** Our working directory, unless the node can't see it (its /run and /var/lib/starling are its own). */
function workingDirectory(): string {
	const cwd = process.cwd();
	const hidden = ["/run", "/var/run", HOST_STATE_MOUNT].some(
		(d) => cwd === d || cwd.startsWith(`${d}/`),
	);
	return hidden ? "/" : cwd;
}
