import { hostname, release, type } from "node:os";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { backoffDelay, resolveBackoff } from "@starling/backoff";
import { encodeKey, type KeyPair } from "@starling/crypto";
import type { Logger } from "@starling/log";
import { ManagementCallError, ManagementClient } from "@starling/management-client";
import type {
	DaemonLoginResponse,
	DaemonStatus,
	LoginResponse,
	NetworkMap,
	PeerStatus,
	PeerSystemMeta,
	UpRequest,
} from "@starling/proto";
import { RelayClient, RelayUdpBridge } from "@starling/relay-client";
import { SignalClient } from "@starling/signal-client";
import { ControlLoop, oneLine } from "../control/control-loop.js";
import { Engine } from "../engine/engine.js";
import { IceAgent } from "../ice/ice-agent.js";
import type { NetcheckInputs } from "../netcheck/netcheck.js";
import { PeerLatency } from "../netcheck/peer-latency.js";
import { DEFAULT_FIREWALL_TABLE, Firewall, renderFirewallRemoval } from "../netfilter/firewall.js";
import { FirewallConsumer } from "../netfilter/firewall-consumer.js";
import { PortRewriter } from "../netfilter/port-rewrite.js";
import type { ForwardingConsumer } from "../routing/forwarding-consumer.js";
import type { Runner } from "../system/exec.js";
import { AGENT_VERSION } from "../version.js";
import { selectBackend, type WireGuardBackend } from "../wireguard/backend.js";
import { WireGuardDevice } from "../wireguard/device.js";
import { AgentError } from "./agent-error.js";
import { type BringUpSteps, bringUp } from "./bring-up.js";
import { removeServedRoutesLeftovers, startServedRoutes } from "./served-routes.js";
import { describeRefusal, probeCertificate } from "./server-trust.js";
import type { AgentConfig, StateDir, WireGuardBackendPreference } from "./state-dir.js";

export const WIREGUARD_MTU = 1280;
/** Retries of coming back up after a daemon restart (management may still be down). */
const RESTORE_RETRY = resolveBackoff({ initialDelayMs: 1_000, maxDelayMs: 30_000 });
const PORT_REWRITE_TABLE = "starling-paths";
const INTERFACE_NAME = /^[a-zA-Z0-9_=+.-]{1,15}$/;

/** What a successful `up` leaves running, and how to take it down. */
interface Running {
	config: AgentConfig;
	keyPair: KeyPair;
	client: ManagementClient;
	login: LoginResponse;
	backend: WireGuardBackend;
	engine: Engine;
	control: ControlLoop;
	/** This peer as a routing peer (the map's served routes). */
	servedRoutes: ForwardingConsumer;
	/** Undoes every step of `up`, last first (see bring-up.ts). */
	undo(): Promise<void>;
}

export interface AgentOptions {
	stateDir: StateDir;
	runner: Runner;
	logger: Logger;
}

/**
 * The agent's lifecycle behind the daemon API: up (log in, create and
 * configure the interface, start syncing), down, login, logout and status.
 * Operations are serialised; a failed `up` leaves nothing behind.
 */
export class Agent {
	private running: Running | undefined;
	private phase: "down" | "connecting" | "up" = "down";
	private queue: Promise<unknown> = Promise.resolve();
	private lastError = "";
	/** The latest network map while up: netcheck's STUN servers and relays. */
	private networkMap: NetworkMap | undefined;
	private readonly peerLatency: PeerLatency;

	constructor(private readonly options: AgentOptions) {
		this.peerLatency = new PeerLatency(options.runner);
	}

	private serial<T>(op: () => Promise<T>): Promise<T> {
		const next = this.queue.then(op, op);
		this.queue = next.catch(() => undefined);
		return next;
	}

	private meta(): PeerSystemMeta {
		return {
			hostname: hostname(),
			os: type().toLowerCase(),
			kernelVersion: release(),
			agentVersion: AGENT_VERSION,
			osVersion: "",
		};
	}

	/** Called once when the daemon starts: clean up after a crash, come back up if we were up. */
	async restore(): Promise<void> {
		const config = this.options.stateDir.loadConfig();
		await this.removeLeftovers(config).catch((err) =>
			this.options.logger.warn({ error: String(err) }, "could not clean up after an earlier run"),
		);
		if (!config.wantUp) return;
		this.options.logger.info("was up before the daemon stopped: bringing the interface back up");
		const retry = async (attempt: number): Promise<void> => {
			try {
				await this.up(
					{
						managementUrl: "",
						setupKey: "",
						interfaceName: "",
						wireguardPort: 0,
						wireguardBackend: "",
					},
					() => {},
				);
			} catch (err) {
				if (err instanceof AgentError && err.kind === "already-up") return;
				if (!this.options.stateDir.loadConfig().wantUp) return;
				if (err instanceof AgentError && err.kind === "server-not-trusted") {
					// Trust is read when the daemon starts: retrying cannot fix it, a
					// restart after the CA is installed does. Status shows the line.
					this.options.logger.error({ error: err.message }, "coming back up failed; not retrying");
					return;
				}
				const delay = backoffDelay(attempt, RESTORE_RETRY);
				this.options.logger.warn(
					{ error: (err as Error).message, retryInMs: delay },
					"coming back up failed",
				);
				setTimeout(() => void retry(attempt + 1), delay).unref();
			}
		};
		void retry(0);
	}

	up(request: UpRequest, progress: (message: string) => void): Promise<void> {
		return this.serial(() => this.doUp(request, progress));
	}

	private resolveConfig(request: UpRequest): AgentConfig {
		const saved = this.options.stateDir.loadConfig();
		const backend = request.wireguardBackend || saved.wireguardBackend;
		if (!["auto", "kernel", "userspace"].includes(backend)) {
			throw new AgentError(
				"invalid-argument",
				`unknown WireGuard backend '${backend}' (auto, kernel or userspace)`,
			);
		}
		const config: AgentConfig = {
			managementUrl: request.managementUrl || saved.managementUrl,
			interfaceName: request.interfaceName || saved.interfaceName,
			wireguardPort: request.wireguardPort || saved.wireguardPort,
			wireguardBackend: backend as WireGuardBackendPreference,
			disableFirewall: request.disableFirewall ?? saved.disableFirewall,
			wantUp: saved.wantUp,
		};
		if (!INTERFACE_NAME.test(config.interfaceName)) {
			throw new AgentError(
				"invalid-argument",
				`invalid interface name '${config.interfaceName}' (1-15 letters, digits, _=+.-)`,
			);
		}
		if (
			!Number.isInteger(config.wireguardPort) ||
			config.wireguardPort < 1 ||
			config.wireguardPort > 65535
		) {
			throw new AgentError("invalid-argument", `invalid WireGuard port ${config.wireguardPort}`);
		}
		return config;
	}

	private async doLogin(
		client: ManagementClient,
		config: AgentConfig,
		setupKey: string,
	): Promise<LoginResponse> {
		try {
			return await client.login(setupKey, this.meta());
		} catch (err) {
			throw await managementError(err, config.managementUrl);
		}
	}

	private async doUp(request: UpRequest, progress: (message: string) => void): Promise<void> {
		if (this.running) {
			throw new AgentError(
				"already-up",
				`already up on ${this.running.config.interfaceName}; run 'starling down' first`,
			);
		}
		const config = this.resolveConfig(request);
		this.phase = "connecting";
		try {
			const up = await bringUp(
				(steps) => this.bringUp(steps, config, request.setupKey.trim(), progress),
				(step, err) =>
					this.options.logger.warn({ step, error: String(err) }, "undoing a step of up failed"),
			);
			const { running } = up;
			this.running = { ...running, undo: up.undo };
			this.phase = "up";
			this.lastError = "";
			this.options.stateDir.saveConfig({ ...config, wantUp: true });
			const address = running.login.self?.address;
			progress(`interface ${config.interfaceName} is up (${running.backend.kind}): ${address}`);
			progress(`firewall: ${running.engine.firewallStatus()}`);
			this.options.logger.info(
				{ interface: config.interfaceName, address, backend: running.backend.kind },
				"up",
			);
		} catch (err) {
			this.phase = "down";
			this.lastError = err instanceof Error ? oneLine(err.message) : String(err);
			if (err instanceof AgentError) throw err;
			throw toAgentError(err);
		}
	}

	/**
	 * The steps of `up`, each registering its own undo: on failure the steps
	 * done so far are undone in reverse; on success the same undo is `down`.
	 */
	private async bringUp(
		steps: BringUpSteps,
		config: AgentConfig,
		setupKey: string,
		progress: (message: string) => void,
	): Promise<Omit<Running, "undo">> {
		const { runner, stateDir } = this.options;
		const logger = this.options.logger;
		const keyPair = stateDir.loadOrCreateKeyPair();
		progress(`logging in to ${config.managementUrl}`);
		const client = await steps.run(
			"management client",
			() => new ManagementClient({ url: config.managementUrl, keyPair, timeoutMs: 10_000 }),
			(c) => c.close(),
		);
		// Refuse to run unprotected unless the operator opted out.
		if (!config.disableFirewall) {
			const reason = await Firewall.probe(runner);
			if (reason !== undefined) {
				throw new AgentError(
					"host-not-ready",
					`nftables is not usable, so inbound access policies can't be enforced (${reason}); fix that, or run 'starling up --disable-firewall' to go without the firewall`,
				);
			}
		}
		const login = await this.doLogin(client, config, setupKey);
		progress(
			`${login.registered ? "registered" : "logged in"} as ${login.self?.fqdn} (${login.self?.address})`,
		);
		const backend = await selectBackend(config.wireguardBackend, runner, { logger });
		const portRewriter = new PortRewriter(runner, {
			wgPort: config.wireguardPort,
			tableName: PORT_REWRITE_TABLE,
		});
		await this.removeLeftovers(config, backend, portRewriter);
		// The firewall goes in before the interface exists, denying everything
		// from the overlay until the first map's rules arrive: never a moment
		// of "all open". Its undo runs after the interface's (reverse order).
		const firewall = config.disableFirewall
			? undefined
			: await steps.run(
					"firewall",
					async () => {
						const fw = new Firewall(runner, {
							interfaceName: config.interfaceName,
							tableName: DEFAULT_FIREWALL_TABLE,
							onInvalidRule: (rule, reason) =>
								logger.warn({ rule, reason }, "ignoring an invalid firewall rule from management"),
						});
						await fw.apply([]);
						return fw;
					},
					(fw) => fw.remove(),
				);
		progress(`creating interface ${config.interfaceName} (${backend.kind})`);
		await steps.run(
			"interface",
			() => backend.createInterface(config.interfaceName),
			() => backend.deleteInterface(config.interfaceName),
		);
		steps.onUndo("port rewrite", () => portRewriter.clear());
		const device = new WireGuardDevice(config.interfaceName, runner);
		await device.configure({
			privateKeyFile: stateDir.privateKeyPath,
			listenPort: config.wireguardPort,
		});
		await device.setMtuAndUp(WIREGUARD_MTU);
		if (login.self?.address) await device.applyAddresses([login.self.address]);

		const servedRoutes = await startServedRoutes(
			steps,
			runner,
			stateDir.path,
			config.interfaceName,
			logger,
		);
		const ice = await steps.run(
			"ice",
			() => new IceAgent({ logger: logger.child({ component: "ice" }) }),
			(i) => i.close(),
		);
		const engineLogger = logger.child({ component: "engine" });
		const engine = await steps.run(
			"engine",
			() =>
				new Engine({
					keyPair,
					interfaceName: config.interfaceName,
					wireguardPort: config.wireguardPort,
					agentVersion: AGENT_VERSION,
					device,
					ice,
					portRewriter,
					firewall: firewall && new FirewallConsumer(firewall, engineLogger),
					consumers: [servedRoutes],
					signalClients: (url) =>
						new SignalClient({ url, keyPair, logger: logger.child({ component: "signal" }) }),
					relays: (url, token) => {
						const relayLogger = logger.child({ component: "relay" });
						const relay = new RelayClient({ url, token, logger: relayLogger });
						const bridge = new RelayUdpBridge({
							relay,
							wireguardPort: config.wireguardPort,
							logger: relayLogger,
						});
						return { client: relay, bridge };
					},
					logger: engineLogger,
				}),
			(e) => e.stop(),
		);
		let firstMap: (() => void) | undefined;
		const gotMap = new Promise<void>((resolve) => {
			firstMap = resolve;
		});
		const control = await steps.run(
			"control loop",
			() => {
				const loop = new ControlLoop(
					client,
					config.managementUrl,
					this.meta(),
					{
						onMap: (map: NetworkMap) => {
							this.networkMap = map;
							if (map.self?.address)
								void device.applyAddresses([map.self.address]).catch(() => undefined);
							engine.applyMap(map);
							firstMap?.();
						},
						onDeregistered: (reason) => void this.deregistered(reason),
						explainUnreachable: async () => {
							const refusal = await probeCertificate(config.managementUrl);
							return refusal && describeRefusal("management", config.managementUrl, refusal);
						},
					},
					logger.child({ component: "control" }),
				);
				loop.start();
				return loop;
			},
			(loop) => loop.stop(),
		);
		progress("syncing the network map");
		const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 10_000).unref());
		if ((await Promise.race([gotMap, timeout])) === "timeout") {
			throw new AgentError(
				"management-unreachable",
				`no network map from ${config.managementUrl} within 10 s`,
			);
		}
		const signalUrl = this.networkMap?.signal?.url ?? "";
		const refusal = await probeCertificate(signalUrl);
		if (refusal) {
			throw new AgentError("server-not-trusted", describeRefusal("signal", signalUrl, refusal));
		}
		await engine.settled();
		return { config, keyPair, client, login, backend, engine, control, servedRoutes };
	}

	down(): Promise<void> {
		return this.serial(async () => {
			await this.teardown();
			const config = this.options.stateDir.loadConfig();
			this.options.stateDir.saveConfig({ ...config, wantUp: false });
		});
	}

	/** Removes what `up` created (its undo, last step first); keeps the identity and config. */
	private async teardown(): Promise<void> {
		const r = this.running;
		this.running = undefined;
		this.networkMap = undefined;
		this.phase = "down";
		if (!r) return;
		await r.undo();
		this.options.logger.info({ interface: r.config.interfaceName }, "down");
	}

	/** After a crash the interface and the nftables table may still exist: remove them. */
	private async removeLeftovers(
		config: AgentConfig,
		backend?: WireGuardBackend,
		portRewriter?: PortRewriter,
	): Promise<void> {
		const rewriter =
			portRewriter ??
			new PortRewriter(this.options.runner, {
				wgPort: config.wireguardPort,
				tableName: PORT_REWRITE_TABLE,
			});
		await rewriter.clear().catch(() => undefined);
		const b =
			backend ??
			(await selectBackend(config.wireguardBackend, this.options.runner, {
				logger: this.options.logger,
			}).catch(() => undefined));
		if (b && (await b.interfaceExists(config.interfaceName).catch(() => false))) {
			this.options.logger.info(
				{ interface: config.interfaceName },
				"removing an interface left by an earlier run",
			);
			await b.deleteInterface(config.interfaceName);
		}
		await removeServedRoutesLeftovers(
			this.options.runner,
			this.options.stateDir.path,
			this.options.logger,
		).catch((err) =>
			this.options.logger.error(
				{ error: String(err) },
				"could not give back forwarding or remove the routing table left by an earlier run",
			),
		);
		// Our firewall table, also when the firewall is now disabled (it would block the overlay).
		await this.options
			.runner("nft", ["-f", "-"], {
				input: renderFirewallRemoval(DEFAULT_FIREWALL_TABLE),
			})
			.catch(() => undefined);
	}

	private async deregistered(reason: string): Promise<void> {
		await this.serial(async () => {
			this.options.logger.warn({ reason }, "this peer was removed from the network; going down");
			await this.teardown();
			this.lastError = `removed from the network: ${reason}`;
			const config = this.options.stateDir.loadConfig();
			this.options.stateDir.saveConfig({ ...config, wantUp: false });
		});
	}

	login(managementUrl: string, setupKey: string): Promise<DaemonLoginResponse> {
		return this.serial(async () => {
			const config = this.resolveConfig({
				managementUrl,
				setupKey,
				interfaceName: "",
				wireguardPort: 0,
				wireguardBackend: "",
			});
			const client = new ManagementClient({
				url: config.managementUrl,
				keyPair: this.options.stateDir.loadOrCreateKeyPair(),
				timeoutMs: 10_000,
			});
			try {
				const login = await this.doLogin(client, config, setupKey.trim());
				this.options.stateDir.saveConfig({
					...this.options.stateDir.loadConfig(),
					managementUrl: config.managementUrl,
				});
				return {
					overlayAddress: login.self?.address ?? "",
					fqdn: login.self?.fqdn ?? "",
					registered: login.registered,
				};
			} finally {
				client.close();
			}
		});
	}

	logout(): Promise<void> {
		return this.serial(async () => {
			await this.teardown();
			const config = this.options.stateDir.loadConfig();
			const client = new ManagementClient({
				url: config.managementUrl,
				keyPair: this.options.stateDir.loadOrCreateKeyPair(),
				timeoutMs: 10_000,
			});
			try {
				await client.logout();
			} catch (err) {
				if (!(err instanceof ManagementCallError && err.code === GrpcStatus.NOT_FOUND))
					throw await managementError(err, config.managementUrl);
			} finally {
				client.close();
				this.options.stateDir.saveConfig({ ...config, wantUp: false });
			}
		});
	}

	async status(detail: boolean): Promise<DaemonStatus> {
		const r = this.running;
		const config = r?.config ?? this.options.stateDir.loadConfig();
		const keyPair = r?.keyPair ?? this.options.stateDir.loadOrCreateKeyPair();
		const relay = r?.engine.relayStatus() ?? { url: "", connected: false, error: "" };
		const peers = r ? await r.engine.peerStatuses() : [];
		const management = r?.control.status ?? {
			url: config.managementUrl,
			connected: false,
			error: this.lastError,
		};
		return {
			agentVersion: AGENT_VERSION,
			state: this.phase,
			management: { url: management.url, connected: management.connected, error: management.error },
			signal: r ? r.engine.signalStatus() : { url: "", connected: false, error: "" },
			wgPublicKey: encodeKey(keyPair.publicKey),
			overlayAddress: r?.login.self?.address ?? "",
			fqdn: r?.login.self?.fqdn ?? "",
			interfaceName: config.interfaceName,
			interfaceType: r?.backend.kind ?? "",
			wireguardPort: config.wireguardPort,
			peersConnected: peers.filter((p) => p.connectionState === "connected").length,
			peersTotal: peers.length,
			peers: detail ? await this.peerLatency.fill(peers) : [],
			firewall: r
				? r.engine.firewallStatus()
				: config.disableFirewall
					? "disabled by operator"
					: "",
			relay,
			servedRoutes: r?.servedRoutes.status() ?? [],
		};
	}

	/** down, connecting or up (the metrics' `starling_agent_up`). */
	get state(): "down" | "connecting" | "up" {
		return this.phase;
	}

	/** Every peer as `starling status` sees it, without the ping (the metrics read this). */
	async peers(): Promise<PeerStatus[]> {
		const r = this.running;
		return r ? r.engine.peerStatuses() : [];
	}

	/** What `starling netcheck` probes while up: the map's STUN servers and relays. */
	async netcheckInputs(): Promise<Omit<NetcheckInputs, "source">> {
		const r = this.running;
		if (!r) {
			throw new AgentError(
				"not-up",
				"not up, so there is no network map naming STUN servers and relays; run 'starling up' first, or 'starling netcheck --stun HOST:PORT' to probe without it",
			);
		}
		const map = this.networkMap;
		return {
			stunServers: map?.stunServers.map((s) => s.uri) ?? [],
			relayUrls: map?.relay?.urls ?? [],
			relayAdmission: (url) => r.engine.relayAdmission(url),
			peers: await r.engine.peerStatuses(),
		};
	}

	/** Daemon shutdown: remove what we created but remember that we were up. */
	async shutdown(): Promise<void> {
		await this.serial(() => this.teardown());
	}
}

/**
 * A failed management call as the agent's error; an unreachable https://
 * server is checked for a refused certificate first, so the user reads that
 * instead of grpc's "No connection established".
 */
async function managementError(err: unknown, url: string): Promise<AgentError> {
	if (
		err instanceof ManagementCallError &&
		(err.code === GrpcStatus.UNAVAILABLE || err.code === GrpcStatus.DEADLINE_EXCEEDED)
	) {
		const refusal = await probeCertificate(url);
		if (refusal)
			return new AgentError("server-not-trusted", describeRefusal("management", url, refusal));
	}
	return loginError(err, url);
}

function loginError(err: unknown, url: string): AgentError {
	if (err instanceof ManagementCallError) {
		switch (err.code) {
			case GrpcStatus.UNAVAILABLE:
			case GrpcStatus.DEADLINE_EXCEEDED:
				return new AgentError(
					"management-unreachable",
					`management at ${url} is unreachable: ${oneLine(err.message)}`,
				);
			case GrpcStatus.PERMISSION_DENIED:
				return new AgentError("login-refused", `login refused: ${oneLine(err.message)}`);
			default:
				return new AgentError("login-failed", `login failed: ${oneLine(err.message)}`);
		}
	}
	if (err instanceof Error && /not a service URL|needs a valid port/.test(err.message)) {
		return new AgentError("invalid-argument", err.message);
	}
	return toAgentError(err);
}

function toAgentError(err: unknown): AgentError {
	const message = err instanceof Error ? oneLine(err.message) : String(err);
	const denied =
		typeof err === "object" &&
		err !== null &&
		"permissionDenied" in err &&
		err.permissionDenied === true;
	return new AgentError(
		denied ? "permission-denied" : "internal",
		denied ? `permission denied: ${message} (run as root)` : message,
	);
}
