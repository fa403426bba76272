import { decodeKey, type KeyPair } from "@starling/crypto";
import type { Logger } from "@starling/log";
import type { DaemonStatus, NetworkMap, PeerStatus, RemotePeer } from "@starling/proto";
import { type ConnInput, PeerConnection } from "../conn/peer-connection.js";
import type { FirewallConsumer } from "../netfilter/firewall-consumer.js";
import type { PortRewriter } from "../netfilter/port-rewrite.js";
import type { WireGuardDevice } from "../wireguard/device.js";
import { type ClientRouteStatus, ClientRoutes, type ClientRoutesHost } from "./client-routes.js";
import { CommandExecutor } from "./commands.js";
import { type IcePort, IceSessions } from "./ice-sessions.js";
import { readInterfaceCounters } from "./interface-counters.js";
import type { MapConsumer } from "./map-consumer.js";
import type { InterfaceCounters } from "./path-health.js";
import { PathMonitor, type ProbeSocketOpener } from "./path-monitor.js";
import type { PathProbeOptions } from "./path-probe.js";
import { type PeerState, PeerTimers } from "./peer-state.js";
import { ProbeSocket } from "./probe-socket.js";
import { armHandshakeRetries, Reconciler } from "./reconciler.js";
import { type RelayFactory, RelayLink } from "./relay-link.js";
import { type SignalClientFactory, SignalLink } from "./signal-link.js";
import { peerStatusOf } from "./status.js";

export interface EngineOptions {
	keyPair: KeyPair;
	interfaceName: string;
	wireguardPort: number;
	agentVersion: string;
	device: Pick<WireGuardDevice, "applyPeers" | "dump">;
	ice: IcePort;
	portRewriter: Pick<PortRewriter, "set" | "remove" | "apply">;
	/** Makes the signal client for the URL a map names (the daemon passes the real one). */
	signalClients?: SignalClientFactory | undefined;
	/** Makes the relay client and bridge for the relay a map names (the daemon passes the real one). */
	relays?: RelayFactory | undefined;
	/**
	 * The inbound firewall on the overlay interface, a map consumer that also
	 * gives the status line; undefined when the operator disabled it.
	 */
	firewall?: FirewallConsumer | undefined;
	/**
	 * More host integrations that follow the map (see map-consumer.ts and
	 * README.md: kernel routes and DNS go here).
	 */
	consumers?: readonly MapConsumer[] | undefined;
	/**
	 * The routes this peer receives (the map's `routes`): kernel routes and the
	 * machine facts the HA choice needs. Absent: routes are ignored (tests).
	 */
	routes?: ClientRoutesHost | undefined;
	/** How long a better router must stay reachable before traffic moves back (tests shorten it). */
	routeHoldMs?: number;
	logger: Logger;
	random?: () => number;
	/** Direct-path liveness probing (tests shorten it). */
	pathProbe?: PathProbeOptions;
	/** Opens a path probe socket (tests may fake it). */
	openProbeSocket?: ProbeSocketOpener;
	/** Reads the overlay interface's counters (default: /proc/self/net/dev for `interfaceName`). */
	interfaceCounters?: () => Promise<InterfaceCounters | undefined>;
}

/**
 * Turns network maps into a running overlay. This file only wires the parts
 * (see README.md): peer lifecycle and the map's fan-out live here; each
 * peer's connection state machine (conn/) speaks through the command
 * executor to ICE sessions, the signal link, the reconciler and the path
 * monitor; the status view derives `starling status`.
 */
export class Engine {
	private readonly peers = new Map<string, PeerState>();
	private map: NetworkMap | undefined;
	private stopped = false;
	private readonly random: () => number;
	private readonly signal: SignalLink<PeerState>;
	private readonly relay: RelayLink<PeerState>;
	private readonly ice: IceSessions;
	private readonly reconciler: Reconciler;
	private readonly monitor: PathMonitor;
	private readonly commands: CommandExecutor;
	private readonly firewall: FirewallConsumer | undefined;
	private readonly consumers: readonly MapConsumer[];
	private readonly routes: ClientRoutes | undefined;

	constructor(private readonly options: EngineOptions) {
		this.random = options.random ?? Math.random;
		const logger = options.logger;
		const logError = (what: string, err: unknown) => this.logError(what, err);
		const current = (key: string) => this.peers.get(key);
		this.signal = new SignalLink<PeerState>({
			keyPair: options.keyPair,
			createClient: options.signalClients,
			logger,
			random: this.random,
			now: Date.now,
			peer: current,
			onMessage: (state, message) => this.input(state, { type: "signal-received", message }),
			onSendFailed: (state, sessionId, notFound) =>
				this.input(state, { type: "signal-send-failed", sessionId, notFound }),
		});
		this.relay = new RelayLink<PeerState>({
			create: options.relays,
			logger: logger.child({ component: "relay" }),
			selfPublicKey: options.keyPair.publicKey,
			peer: current,
			peers: () => this.peers.values(),
			nameOf: (state) => state.remote.name,
			onEndpoint: (state, endpoint) => {
				if (endpoint && state.conn.role === "controlling" && !state.path)
					armHandshakeRetries(state, () => this.reconciler.request());
				this.reconciler.request();
			},
		});
		this.ice = new IceSessions({
			ice: options.ice,
			deliver: (key, input) => {
				const state = this.peers.get(key);
				if (state) this.input(state, input);
			},
			logError,
		});
		this.monitor = new PathMonitor({
			device: options.device,
			peers: () => this.peers.values(),
			current: (state) => this.peers.get(state.key) === state,
			relayEndpointOf: (key) => this.relay.endpointOf(key),
			feed: (state, input) => this.input(state, input),
			reconcile: () => this.reconciler.request(),
			openProbeSocket:
				options.openProbeSocket ?? ((port, onAnswer) => ProbeSocket.open(port, onAnswer)),
			interfaceCounters:
				options.interfaceCounters ?? (() => readInterfaceCounters(options.interfaceName)),
			pathProbe: options.pathProbe,
			logError,
		});
		this.reconciler = new Reconciler({
			device: options.device,
			portRewriter: options.portRewriter,
			peers: () => (this.map ? this.peers.values() : undefined),
			wgEndpointOf: (key) => this.monitor.wgOf(key)?.endpoint,
			relayEndpointOf: (key) => this.relay.endpointOf(key),
			extraAllowedIpsOf: (key) => this.routes?.allowedIpsOf(key) ?? [],
			logError,
		});
		this.routes =
			options.routes &&
			new ClientRoutes({
				host: options.routes,
				peer: current,
				peers: () => this.peers.values(),
				relayEndpointOf: (key) => this.relay.endpointOf(key),
				wgOf: (key) => this.monitor.wgOf(key),
				reconcile: () => this.reconciler.request(),
				logger: logger.child({ component: "routes" }),
				...(options.routeHoldMs !== undefined ? { holdMs: options.routeHoldMs } : {}),
			});
		this.commands = new CommandExecutor({
			ice: this.ice,
			sendSignal: (state, message) => this.signal.send(state, message),
			reconciler: this.reconciler,
			probes: this.monitor,
			stunServers: () => (this.map?.stunServers ?? []).map((s) => s.uri),
			feed: (state, input) => this.input(state, input),
			logger,
		});
		this.firewall = options.firewall;
		this.consumers = [...(this.firewall ? [this.firewall] : []), ...(options.consumers ?? [])];
		this.monitor.start();
	}

	/** Applies a (full) network map: host integrations, signal, relay, peers, WireGuard. */
	applyMap(map: NetworkMap): void {
		if (this.stopped) return;
		this.map = map;
		for (const consumer of this.consumers) consumer.applyMap(map);
		this.signal.follow(map.signal?.url ?? "");
		this.relay.follow(map.relay);
		const seen = new Set<string>();
		for (const remote of map.peers) {
			seen.add(remote.wgPublicKey);
			const existing = this.peers.get(remote.wgPublicKey);
			if (existing) {
				const wasOnline = existing.remote.connected;
				existing.remote = remote;
				if (wasOnline !== remote.connected)
					this.input(existing, { type: "peer-online", online: remote.connected });
			} else {
				this.addPeer(remote);
			}
		}
		for (const key of [...this.peers.keys()]) if (!seen.has(key)) this.removePeer(key);
		// After the peers: the routes' routers are peers of the same map.
		this.routes?.applyMap(map);
		this.reconciler.request();
	}

	/** The routes this peer receives, the router in use for each and why (`starling routes`). */
	routeStatuses(): ClientRouteStatus[] {
		return this.routes?.status() ?? [];
	}

	/** The client routes part, for `starling exit-node` (undefined when routes are off). */
	clientRoutes(): ClientRoutes | undefined {
		return this.routes;
	}

	/** The firewall line of `starling status`. */
	firewallStatus(): string {
		return this.firewall?.status() ?? "disabled by operator";
	}

	private addPeer(remote: RemotePeer): void {
		let publicKey: Uint8Array;
		try {
			publicKey = decodeKey(remote.wgPublicKey);
		} catch {
			this.options.logger.warn(
				{ peer: remote.wgPublicKey },
				"ignoring a peer with a malformed public key",
			);
			return;
		}
		const key = remote.wgPublicKey;
		const state: PeerState = {
			key,
			publicKey,
			remote,
			conn: new PeerConnection({
				localPublicKey: this.options.keyPair.publicKey,
				remotePublicKey: publicKey,
				wireguardPort: this.options.wireguardPort,
				agentVersion: this.options.agentVersion,
				random: this.random,
			}),
			timers: new PeerTimers(() => this.peers.get(key) === state),
			path: undefined,
			keepalive: false,
			wireguardSessionStale: false,
			handshakeRetryDue: false,
			health: { rx: undefined, lastTxBytes: undefined },
			probe: undefined,
		};
		this.peers.set(key, state);
		this.options.logger.info({ peer: remote.name, key, role: state.conn.role }, "peer added");
		this.relay.attach(state);
		this.input(state, { type: "start", peerOnline: remote.connected });
		for (const message of this.signal.takeEarly(key))
			this.input(state, { type: "signal-received", message });
	}

	private removePeer(key: string): void {
		const state = this.peers.get(key);
		if (!state) return;
		this.input(state, { type: "stop" });
		state.timers.cancelAll();
		this.peers.delete(key);
		this.monitor.closeProbe(state);
		this.relay.detach(state);
		this.signal.forget(state);
		this.ice.forget(key);
		this.reconciler.unrouteDirect(state, false);
		this.options.logger.info({ peer: state.remote.name, key }, "peer removed");
	}

	/** Feeds one input to a peer's state machine and carries out its commands. */
	private input(state: PeerState, input: ConnInput): void {
		let commands: ReturnType<PeerConnection["handle"]>;
		try {
			commands = state.conn.handle(input, Date.now());
		} catch (err) {
			this.logError("connection state machine", err);
			return;
		}
		for (const command of commands) this.commands.execute(state, command);
		this.ice.endBatch(state.key, () => state.conn.snapshot().lastFailure);
		// A path went up or down: the routers' reachability may have changed.
		if (input.type === "path-lost") this.routes?.noteLost(state.key);
		else if (input.type === "ice-connected") this.routes?.evaluate();
	}

	/** Waits until queued WireGuard and host-integration changes are applied (tests, `up`). */
	async settled(): Promise<void> {
		await this.reconciler.settled();
		for (const consumer of this.consumers) await consumer.settled();
		await this.routes?.settled();
	}

	/** Status for `starling status`, with WireGuard counters read now. */
	async peerStatuses(): Promise<PeerStatus[]> {
		await this.monitor.refresh(true);
		const now = Date.now();
		return [...this.peers.values()]
			.map((state) => {
				// Each pair meets on its own relay (relay-choice.ts).
				const relayUrl = this.relay.relayUrlOf(state.key) ?? "";
				return {
					...peerStatusOf({
						now,
						remote: state.remote,
						conn: state.conn.snapshot(),
						path: state.path,
						relayEndpoint: this.relay.endpointOf(state.key),
						relayUrl,
						wg: this.monitor.wgOf(state.key),
						probeRttMs: state.probe?.watch.rttMs,
						ice: this.ice.stats(state.key),
					}),
					relayUrl,
				};
			})
			.sort((a, b) => a.name.localeCompare(b.name));
	}

	signalStatus(): DaemonStatus["signal"] {
		return this.signal.status();
	}

	/** The relay most peers are on (status shows one). */
	relayStatus(): { url: string; connected: boolean; error: string } {
		return this.relay.status();
	}

	/** Whether the agent is admitted on a relay it holds; undefined when it holds none to it. */
	relayAdmission(url: string): { admitted: boolean; error: string } | undefined {
		return this.relay.admission(url);
	}

	/** Stops every connection, ICE session and timer. The caller removes the interface. */
	async stop(): Promise<void> {
		if (this.stopped) return;
		for (const key of [...this.peers.keys()]) this.removePeer(key);
		this.stopped = true;
		this.monitor.stop();
		await this.routes?.stop();
		await this.reconciler.stop();
		for (const consumer of this.consumers) await consumer.stop().catch(() => undefined);
		await this.signal.close();
		await this.relay.close();
	}

	private logError(what: string, err: unknown): void {
		this.options.logger.error(
			{ error: err instanceof Error ? err.message : String(err) },
			`${what} failed`,
		);
	}
}
