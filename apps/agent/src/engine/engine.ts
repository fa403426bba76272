import { randomBytes } from "node:crypto";
import { backoffDelay, resolveBackoff } from "@starling/backoff";
import { BoxChannel, decodeKey, encodeKey, type KeyPair } from "@starling/crypto";
import type { Logger } from "@starling/log";
import {
	type DaemonStatus,
	type NetworkMap,
	PeerMessage,
	type PeerStatus,
	type RelayConfig,
	type RemotePeer,
} from "@starling/proto";
import { RelayClient, RelayUdpBridge } from "@starling/relay-client";
import { SignalClient, SignalError } from "@starling/signal-client";
import {
	type ConnCommand,
	type ConnInput,
	PeerConnection,
	type PeerEndpoint,
} from "../conn/peer-connection.js";
import type { IceAgent } from "../ice/ice-agent.js";
import { type Firewall, inboundRulesFor } from "../netfilter/firewall.js";
import type { PortRewriter } from "../netfilter/port-rewrite.js";
import type { WireGuardDevice } from "../wireguard/device.js";
import type { PeerDump } from "../wireguard/wg-dump.js";
import { DEFAULT_PATH_PROBE, PathProbe, type PathProbeOptions } from "./path-probe.js";
import { ProbeSocket } from "./probe-socket.js";

/** WireGuard keepalive on direct paths: below the 30 s a NAT keeps an idle UDP mapping. */
const PERSISTENT_KEEPALIVE_S = 25;
/** A direct path that delivers nothing for this long is considered lost (keepalives come every 25 s). */
const SILENT_PATH_MS = 35_000;
/** A connected path whose last handshake is older than this is considered lost. */
const STALE_HANDSHAKE_MS = 190_000;
/** Overlay addresses are never offered as ICE candidates. */
const OVERLAY_PREFIX = "100.64.0.0/10";
/** Retries of the first signal connection; the client reconnects by itself after that. */
const SIGNAL_RECONNECT = resolveBackoff({ initialDelayMs: 500, maxDelayMs: 15_000, jitter: 0.5 });
/** A connected ICE session stays open this long after the path is handed to WireGuard. */
const ICE_LINGER_MS = 3_000;
/** Messages to peers are held this long while signal is (re)connecting. */
const UNSENT_SIGNAL_TTL_MS = 5_000;
/** Signal messages from peers not (yet) in our map are kept this long, in case the map catches up. */
const EARLY_MESSAGE_TTL_MS = 10_000;

export interface EngineOptions {
	keyPair: KeyPair;
	interfaceName: string;
	wireguardPort: number;
	agentVersion: string;
	device: WireGuardDevice;
	ice: IceAgent;
	portRewriter: PortRewriter;
	/** The inbound firewall on the overlay interface; undefined when the operator disabled it. */
	firewall?: Firewall | undefined;
	logger: Logger;
	random?: () => number;
	/** Direct-path liveness probing (tests shorten it). */
	pathProbe?: PathProbeOptions;
}

interface PeerState {
	remote: RemotePeer;
	publicKey: Uint8Array;
	box: BoxChannel;
	conn: PeerConnection;
	timers: Map<string, NodeJS.Timeout>;
	path:
		| {
				local: PeerEndpoint;
				remote: PeerEndpoint;
				rttMs: number | undefined;
				socketPort: number;
				/**
				 * WireGuard has been given `remote` as the endpoint. From then on it
				 * is left alone: WireGuard roams to wherever the peer's authenticated
				 * packets come from, which beats ICE's report when the two differ.
				 */
				endpointApplied?: boolean;
				/** The last direct address WireGuard sent to (from its dump), once seen. */
				lastDirectEndpoint?: string;
		  }
		| undefined;
	/** What ICE reported for sessions that connected, until the state machine acts on it. */
	connectedIce: Map<number, { rttMs: number | undefined; socketPort: number }>;
	/** ICE sessions this peer has open, by our ICE session id. */
	iceSessions: Set<string>;
	keepalive: boolean;
	/** WireGuard's received-bytes counter on the direct path, and when it last moved. */
	pathRx: { bytes: number; at: number } | undefined;
	/** WireGuard's endpoint for this peer through the relay bridge ("127.0.0.1:port"), once bound. */
	relayEndpoint: string | undefined;
	/** Liveness probing of the direct path, from its ICE port once ICE let go of it. */
	probe: { watch: PathProbe; socket: ProbeSocket | undefined } | undefined;
	/** WireGuard's transmit counter at the last health check. */
	lastTxBytes: number | undefined;
}

/**
 * Turns network maps into a running overlay: the WireGuard peer set, one
 * PeerConnection (sans-IO) per remote peer, and the adapters that carry out
 * its commands (signal, ICE, the port rewrite, WireGuard endpoints).
 */
export class Engine {
	private readonly peers = new Map<string, PeerState>();
	private readonly earlyMessages = new Map<string, { at: number; messages: PeerMessage[] }>();
	private readonly iceOwners = new Map<string, { peerKey: string; sessionId: number }>();
	private map: NetworkMap | undefined;
	private signal: SignalClient | undefined;
	private signalUrl = "";
	private signalError = "";
	private reconcileQueued = false;
	private reconciling: Promise<void> = Promise.resolve();
	private readonly healthTimer: NodeJS.Timeout;
	private readonly probeTimer: NodeJS.Timeout;
	private lastDump = new Map<string, PeerDump>();
	private stopped = false;
	private readonly random: () => number;
	private unsent: { at: number; state: PeerState; message: PeerMessage }[] = [];
	/** The relay path every peer starts on, and falls back to without a direct path. */
	private relay:
		| { url: string; token: string; client: RelayClient; bridge: RelayUdpBridge }
		| undefined;
	private relayError = "";
	// --- inbound firewall (netfilter/firewall.ts) ---
	/** Whether the last map's rules are authoritative; undefined before the first map. */
	private firewallEnforced: boolean | undefined;
	private firewallError = "";
	private firewallApplying: Promise<void> = Promise.resolve();

	constructor(private readonly options: EngineOptions) {
		this.random = options.random ?? Math.random;
		options.ice.on("local-description", (e) =>
			this.fromIce(e.sessionId, (sessionId) => ({
				type: "ice-local-description",
				sessionId,
				sdp: e.sdp,
			})),
		);
		options.ice.on("local-candidate", (e) =>
			this.fromIce(e.sessionId, (sessionId) => ({
				type: "ice-local-candidate",
				sessionId,
				candidate: e.candidate,
				mid: e.mid,
			})),
		);
		options.ice.on("connected", (e) => {
			const owner = this.iceOwners.get(e.sessionId);
			if (!owner) return;
			const peer = this.peers.get(owner.peerKey);
			const local = toPeerEndpoint(e.local);
			const remote = toPeerEndpoint(e.remote);
			// The selected local candidate may be server-reflexive (the NAT's
			// address); WireGuard's traffic must leave from the ICE socket's own port.
			if (peer) peer.connectedIce.set(owner.sessionId, { rttMs: e.rttMs, socketPort: e.localPort });
			this.fromIce(e.sessionId, (sessionId) => ({
				type: "ice-connected",
				sessionId,
				local,
				remote,
				rttMs: e.rttMs,
			}));
		});
		options.ice.on("failed", (e) =>
			this.fromIce(e.sessionId, (sessionId) => ({
				type: "ice-failed",
				sessionId,
				reason: e.reason,
			})),
		);
		this.healthTimer = setInterval(() => void this.checkHealth(), 5_000);
		this.healthTimer.unref();
		this.probeTimer = setInterval(() => this.probePaths(), 500);
		this.probeTimer.unref();
	}

	/** Applies a (full) network map: WireGuard peers, connections, signal. */
	applyMap(map: NetworkMap): void {
		if (this.stopped) return;
		this.map = map;
		this.applyFirewall(map);
		this.ensureSignal(map.signal?.url ?? "");
		this.ensureRelay(map.relay);
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
		this.queueReconcile();
	}

	/** Installs the map's inbound rules (allow all while management does not enforce them). */
	private applyFirewall(map: NetworkMap): void {
		const firewall = this.options.firewall;
		if (!firewall) return;
		const { enforced, rules } = inboundRulesFor(map);
		if (enforced !== this.firewallEnforced) {
			this.options.logger.info(
				{ enforced },
				enforced
					? "management enforces access policies: inbound overlay traffic follows its rules"
					: "management sends no access policies: inbound overlay traffic is allowed",
			);
		}
		this.firewallEnforced = enforced;
		this.firewallApplying = firewall.apply(rules).then(
			() => {
				this.firewallError = "";
			},
			(err: unknown) => {
				this.firewallError = err instanceof Error ? err.message.split("\n")[0]! : String(err);
				this.logError("firewall update", err);
			},
		);
	}

	/** The firewall line of `starling status`. */
	firewallStatus(): string {
		const firewall = this.options.firewall;
		if (!firewall) return "disabled by operator";
		const state =
			this.firewallEnforced === false
				? "open (management sends no access policies)"
				: `enforcing (${firewall.ruleCount} rule${firewall.ruleCount === 1 ? "" : "s"})`;
		return this.firewallError ? `${state}; last update failed: ${this.firewallError}` : state;
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
		const state: PeerState = {
			remote,
			publicKey,
			box: new BoxChannel(this.options.keyPair.privateKey, publicKey),
			conn: new PeerConnection({
				localPublicKey: this.options.keyPair.publicKey,
				remotePublicKey: publicKey,
				wireguardPort: this.options.wireguardPort,
				agentVersion: this.options.agentVersion,
				random: this.random,
			}),
			timers: new Map(),
			path: undefined,
			iceSessions: new Set(),
			connectedIce: new Map(),
			keepalive: false,
			pathRx: undefined,
			relayEndpoint: undefined,
			probe: undefined,
			lastTxBytes: undefined,
		};
		this.peers.set(remote.wgPublicKey, state);
		this.options.logger.info(
			{ peer: remote.name, key: remote.wgPublicKey, role: state.conn.role },
			"peer added",
		);
		this.attachRelay(state);
		this.input(state, { type: "start", peerOnline: remote.connected });
		const early = this.earlyMessages.get(remote.wgPublicKey);
		if (early) {
			this.earlyMessages.delete(remote.wgPublicKey);
			for (const message of early.messages) this.input(state, { type: "signal-received", message });
		}
	}

	private removePeer(key: string): void {
		const state = this.peers.get(key);
		if (!state) return;
		this.input(state, { type: "stop" });
		for (const t of state.timers.values()) clearTimeout(t);
		this.peers.delete(key);
		this.closeProbe(state);
		if (state.relayEndpoint)
			void this.relay?.bridge.removePeer(state.publicKey).catch(() => undefined);
		this.options.portRewriter.remove(key);
		void this.options.portRewriter.apply().catch((err) => this.logError("port rewrite", err));
		this.options.logger.info({ peer: state.remote.name, key }, "peer removed");
	}

	/** Feeds one input to a peer's state machine and carries out its commands. */
	private input(state: PeerState, input: ConnInput): void {
		let commands: ConnCommand[];
		try {
			commands = state.conn.handle(input, Date.now());
		} catch (err) {
			this.logError("connection state machine", err);
			return;
		}
		for (const command of commands) this.execute(state, command);
	}

	private execute(state: PeerState, command: ConnCommand): void {
		const key = state.remote.wgPublicKey;
		switch (command.type) {
			case "send-signal":
				this.sendSignal(state, command.message);
				return;
			case "ice-start": {
				const iceId = `${key}#${command.sessionId}`;
				this.iceOwners.set(iceId, { peerKey: key, sessionId: command.sessionId });
				state.iceSessions.add(iceId);
				this.options.ice.startSession({
					sessionId: iceId,
					role: command.role,
					stunServers: (this.map?.stunServers ?? []).map((s) => s.uri),
					// IPv4 only until the port rewrite has IPv6 rules.
					excludePrefixes: [OVERLAY_PREFIX, "::/0"],
				});
				return;
			}
			case "ice-remote-description":
				this.options.ice.setRemoteDescription(
					`${key}#${command.sessionId}`,
					command.sdp,
					command.kind,
				);
				return;
			case "ice-remote-candidate":
				this.options.ice.addRemoteCandidate(
					`${key}#${command.sessionId}`,
					command.candidate,
					command.mid,
				);
				return;
			case "ice-close": {
				const iceId = `${key}#${command.sessionId}`;
				state.iceSessions.delete(iceId);
				// A session that connected lingers: ICE on this side may report
				// connected before the other side has finished its checks, and its
				// STUN packets still reach our ICE socket (the port rewrite leaves
				// STUN alone), so closing at once could fail the peer's attempt.
				const linger = state.connectedIce.has(command.sessionId) || state.path !== undefined;
				const close = () =>
					void this.options.ice
						.closeSession(iceId)
						.catch((err) => this.logError("ice close", err))
						.finally(() => this.iceOwners.delete(iceId));
				if (linger) setTimeout(close, ICE_LINGER_MS).unref();
				else close();
				return;
			}
			case "path-up": {
				const ice = state.connectedIce.get(command.sessionId);
				state.connectedIce.clear();
				state.pathRx = undefined;
				state.path = {
					local: command.local,
					remote: command.remote,
					rttMs: ice?.rttMs,
					socketPort: ice?.socketPort ?? command.local.port,
				};
				this.startProbe(state, state.path.socketPort);
				this.options.portRewriter.set(key, {
					peerKey: key,
					localPort: state.path.socketPort,
					remoteAddress: command.remote.address,
					remotePort: command.remote.port,
				});
				// The controlling side sends the first handshake; the other waits a
				// moment so both don't initiate in the same instant (which can cost 5 s).
				state.keepalive = command.sendHandshakeFirst;
				if (!command.sendHandshakeFirst) {
					this.setTimer(state, "engine-keepalive", 1_000, () => {
						state.keepalive = true;
						this.queueReconcile();
					});
				}
				this.options.logger.info(
					{ peer: state.remote.name, local: fmt(command.local), remote: fmt(command.remote) },
					"direct path up",
				);
				void this.options.portRewriter
					.apply()
					.then(() => this.queueReconcile())
					.catch((err) => this.logError("port rewrite", err));
				return;
			}
			case "path-down":
				this.options.logger.info({ peer: state.remote.name, reason: command.reason }, "path down");
				state.path = undefined;
				state.pathRx = undefined;
				state.keepalive = false;
				this.closeProbe(state);
				this.options.portRewriter.remove(key);
				void this.options.portRewriter.apply().catch((err) => this.logError("port rewrite", err));
				this.queueReconcile();
				return;
			case "set-timer":
				this.setTimer(state, command.name, command.delayMs, () =>
					this.input(state, { type: "timer", name: command.name }),
				);
				return;
			case "cancel-timer": {
				const t = state.timers.get(command.name);
				if (t) clearTimeout(t);
				state.timers.delete(command.name);
				return;
			}
		}
	}

	private setTimer(state: PeerState, name: string, delayMs: number, fire: () => void): void {
		const old = state.timers.get(name);
		if (old) clearTimeout(old);
		state.timers.set(
			name,
			setTimeout(() => {
				state.timers.delete(name);
				if (this.peers.get(state.remote.wgPublicKey) === state) fire();
			}, delayMs),
		);
	}

	private fromIce(iceId: string, make: (sessionId: number) => ConnInput): void {
		const owner = this.iceOwners.get(iceId);
		if (!owner) return;
		const state = this.peers.get(owner.peerKey);
		if (!state) return;
		this.input(state, make(owner.sessionId));
	}

	private ensureSignal(url: string): void {
		if (url === this.signalUrl && this.signal) return;
		this.signalUrl = url;
		void this.signal?.close();
		this.signal = undefined;
		if (!url) return;
		const signal = new SignalClient({
			url,
			keyPair: this.options.keyPair,
			logger: this.options.logger.child({ component: "signal" }),
		});
		this.signal = signal;
		signal.on("message", (m) => this.onSignalMessage(m.from, m.body));
		signal.on("connected", () => {
			this.signalError = "";
			this.flushUnsent();
			this.options.logger.info({ url }, "signal connected");
		});
		signal.on("disconnected", (err) => {
			this.signalError = err.message;
		});
		const connect = (attempt: number) => {
			if (this.signal !== signal || this.stopped) return;
			signal.connect().catch((err: Error) => {
				this.signalError = err.message;
				const delay = backoffDelay(attempt, SIGNAL_RECONNECT, this.random);
				setTimeout(() => connect(attempt + 1), delay).unref();
			});
		};
		connect(0);
	}

	/**
	 * Connects to the relay management names (and follows token refreshes).
	 * Every peer gets a bridge socket at once, so the tunnel works through the
	 * relay within a round trip while ICE looks for a direct path.
	 */
	private ensureRelay(config: RelayConfig | undefined): void {
		const url = config?.urls[0] ?? "";
		const token = config?.token ?? "";
		if (this.relay && (this.relay.url !== url || !token)) {
			const old = this.relay;
			this.relay = undefined;
			for (const p of this.peers.values()) p.relayEndpoint = undefined;
			void old.bridge.close().finally(() => old.client.close());
			this.queueReconcile();
		}
		if (!url || !token) return;
		if (this.relay) {
			if (this.relay.token !== token) {
				this.relay.token = token;
				this.relay.client.setToken(token);
			}
			return;
		}
		const logger = this.options.logger.child({ component: "relay" });
		let client: RelayClient;
		try {
			client = new RelayClient({ url, token, logger });
		} catch (err) {
			this.relayError = (err as Error).message;
			this.logError("relay", err);
			return;
		}
		const bridge = new RelayUdpBridge({
			relay: client,
			wireguardPort: this.options.wireguardPort,
			logger,
		});
		this.relay = { url, token, client, bridge };
		client.on("ready", () => {
			this.relayError = "";
			this.options.logger.info({ url }, "relay connected");
		});
		client.on("disconnected", (err) => {
			this.relayError = err.message;
		});
		client.on("tokenRefused", (err) => {
			this.relayError = `relay refused our token: ${err.message}`;
		});
		// Keeps trying with backoff until admitted, and again after every loss.
		client.start();
		for (const state of this.peers.values()) this.attachRelay(state);
	}

	private attachRelay(state: PeerState): void {
		const relay = this.relay;
		if (!relay || state.relayEndpoint) return;
		relay.bridge.addPeer(state.publicKey).then(
			(port) => {
				if (this.relay !== relay || this.peers.get(state.remote.wgPublicKey) !== state) return;
				state.relayEndpoint = `127.0.0.1:${port}`;
				this.options.logger.info(
					{ peer: state.remote.name, bridge: state.relayEndpoint },
					"relay path ready",
				);
				this.queueReconcile();
			},
			(err) => this.logError("relay bridge", err),
		);
	}

	relayStatus(): { url: string; connected: boolean; error: string } {
		const connected = this.relay?.client.state === "ready";
		return { url: this.relay?.url ?? "", connected, error: connected ? "" : this.relayError };
	}

	private sendSignal(state: PeerState, message: PeerMessage): void {
		const signal = this.signal;
		if (signal?.state !== "ready" || !signal) {
			// Signal is still connecting (typically right after `up`): hold the
			// message briefly instead of failing the attempt and backing off.
			this.unsent = this.unsent.filter((u) => Date.now() - u.at < UNSENT_SIGNAL_TTL_MS).slice(-256);
			this.unsent.push({ at: Date.now(), state, message });
			return;
		}
		const sessionId = message.sessionId;
		const body = state.box.sealToBytes(PeerMessage.encode(message).finish());
		signal.send(state.publicKey, body).catch((err: unknown) => {
			const notFound = err instanceof SignalError && err.code === 5;
			if (this.peers.get(state.remote.wgPublicKey) === state) {
				this.input(state, { type: "signal-send-failed", sessionId, notFound });
			}
		});
	}

	/** Sends what was held while signal was connecting. */
	private flushUnsent(): void {
		const held = this.unsent.filter((u) => Date.now() - u.at < UNSENT_SIGNAL_TTL_MS);
		this.unsent = [];
		for (const u of held) {
			if (this.peers.get(u.state.remote.wgPublicKey) === u.state)
				this.sendSignal(u.state, u.message);
		}
	}

	private onSignalMessage(from: Uint8Array, body: Uint8Array): void {
		const key = encodeKey(from);
		const state = this.peers.get(key);
		let message: PeerMessage;
		try {
			const box = state?.box ?? new BoxChannel(this.options.keyPair.privateKey, from);
			message = PeerMessage.decode(box.openFromBytes(body));
		} catch (err) {
			this.options.logger.warn(
				{ from: key, error: (err as Error).message },
				"dropped a signal message that did not open",
			);
			return;
		}
		if (state) {
			this.input(state, { type: "signal-received", message });
			return;
		}
		// The sender may already know us while our map has not caught up yet.
		const now = Date.now();
		for (const [k, v] of this.earlyMessages)
			if (now - v.at > EARLY_MESSAGE_TTL_MS) this.earlyMessages.delete(k);
		const early = this.earlyMessages.get(key) ?? { at: now, messages: [] };
		if (early.messages.length < 32) early.messages.push(message);
		this.earlyMessages.set(key, early);
	}

	/** Serialises WireGuard reconciliation; bursts of changes collapse into one pass. */
	private queueReconcile(): void {
		if (this.reconcileQueued || this.stopped) return;
		this.reconcileQueued = true;
		this.reconciling = this.reconciling.then(async () => {
			this.reconcileQueued = false;
			if (this.stopped || !this.map) return;
			try {
				const endpointsSet: NonNullable<PeerState["path"]>[] = [];
				await this.options.device.applyPeers(
					[...this.peers.values()]
						// A peer joins WireGuard only with somewhere to send: without an
						// endpoint a packet makes wireguard-go fail a handshake and hold
						// off the next one for 5 s, which delayed the first ping after
						// `up` by that much (bench overlay-up).
						.filter((p) => p.path !== undefined || p.relayEndpoint !== undefined)
						.map((p) => ({
							publicKey: p.remote.wgPublicKey,
							allowedIps: p.remote.allowedIps,
							// Direct when ICE found a path, else through the relay bridge.
							endpoint: p.path
								? directEndpoint(
										p.path,
										this.lastDump.get(p.remote.wgPublicKey)?.endpoint,
										p.relayEndpoint,
										endpointsSet,
									)
								: p.relayEndpoint,
							persistentKeepalive: p.path
								? p.keepalive
									? PERSISTENT_KEEPALIVE_S
									: undefined
								: p.relayEndpoint
									? PERSISTENT_KEEPALIVE_S
									: undefined,
						})),
				);
				for (const path of endpointsSet) path.endpointApplied = true;
			} catch (err) {
				this.logError("wireguard reconcile", err);
			}
		});
	}

	/** Waits until queued WireGuard and firewall changes are applied (tests, `up`). */
	async settled(): Promise<void> {
		await this.reconciling;
		await this.firewallApplying;
	}

	private async checkHealth(): Promise<void> {
		if (this.stopped) return;
		try {
			const dump = await this.options.device.dump();
			this.lastDump = new Map(dump.peers.map((p) => [p.publicKey, p]));
		} catch (err) {
			this.logError("wireguard dump", err);
			return;
		}
		const now = Date.now();
		for (const state of this.peers.values()) {
			if (!state.path) continue;
			// Both sides send keepalives every 25 s on a direct path, so a path
			// that delivers nothing for longer does not work (a NAT that changed
			// the mapping ICE found, say): back to the relay and try again.
			// Roamed to the relay bridge while the direct path is up: put it back.
			const wgEndpoint = this.lastDump.get(state.remote.wgPublicKey)?.endpoint;
			if (state.path.endpointApplied && wgEndpoint && wgEndpoint === state.relayEndpoint)
				this.queueReconcile();
			const tx = this.lastDump.get(state.remote.wgPublicKey)?.txBytes ?? 0;
			if (state.lastTxBytes !== undefined && tx !== state.lastTxBytes)
				state.probe?.watch.noteSending(now);
			state.lastTxBytes = tx;
			const rx = this.lastDump.get(state.remote.wgPublicKey)?.rxBytes ?? 0;
			if (!state.pathRx || state.pathRx.bytes !== rx) {
				state.pathRx = { bytes: rx, at: now };
			} else if (now - state.pathRx.at > SILENT_PATH_MS) {
				state.pathRx = undefined;
				this.input(state, {
					type: "path-lost",
					reason: `nothing received on the direct path for ${SILENT_PATH_MS / 1000} s`,
				});
				continue;
			}
			const seen = this.lastDump.get(state.remote.wgPublicKey)?.latestHandshakeUnixSeconds ?? 0;
			const since = seen > 0 ? now - seen * 1000 : Number.POSITIVE_INFINITY;
			const upFor = state.conn.snapshot().connectedSince;
			if (since > STALE_HANDSHAKE_MS && upFor !== undefined && now - upFor > STALE_HANDSHAKE_MS) {
				this.input(state, {
					type: "path-lost",
					reason: "no WireGuard handshake for over 3 minutes",
				});
			}
		}
	}

	/** Status for `starling status`, with WireGuard counters read now. */
	async peerStatuses(): Promise<PeerStatus[]> {
		try {
			const dump = await this.options.device.dump();
			this.lastDump = new Map(dump.peers.map((p) => [p.publicKey, p]));
		} catch {
			// keep the last dump
		}
		return [...this.peers.values()]
			.map((state): PeerStatus => {
				const snap = state.conn.snapshot();
				const wg = this.lastDump.get(state.remote.wgPublicKey);
				const direct = snap.state === "connected" && state.path !== undefined;
				const handshakeMs = (wg?.latestHandshakeUnixSeconds ?? 0) * 1000;
				// Relayed: no direct path, the peer online, WireGuard's endpoint is the relay bridge, and
				// its handshakes are recent (WireGuard rekeys every 2 minutes under traffic
				// and keepalives).
				// A peer that management reports offline (`starling down`) is not
				// connected, even while its last handshake is still recent.
				const relayed =
					!direct &&
					state.remote.connected &&
					state.relayEndpoint !== undefined &&
					wg?.endpoint === state.relayEndpoint &&
					handshakeMs > 0 &&
					Date.now() - handshakeMs < STALE_HANDSHAKE_MS;
				const connected = direct || relayed;
				return {
					name: state.remote.name,
					wgPublicKey: state.remote.wgPublicKey,
					overlayIp: state.remote.allowedIps[0]?.replace(/\/32$/, "") ?? "",
					fqdn: state.remote.fqdn,
					connectionState: connected
						? "connected"
						: snap.state === "idle" || snap.state === "closed"
							? "idle"
							: snap.state === "backoff" || snap.state === "waiting-for-peer"
								? snap.lastFailure
									? "failed"
									: "connecting"
								: "connecting",
					pathType: direct ? "p2p" : relayed ? "relayed" : "",
					localEndpoint: state.path ? endpointText(state.path.local) : "",
					// Where WireGuard sends now: the peer's packets may come from
					// another address than ICE reported (see the port rewrite).
					remoteEndpoint: state.path
						? wg?.endpoint && wg.endpoint !== state.relayEndpoint
							? wg.endpoint
							: endpointText(state.path.remote)
						: relayed
							? (this.relay?.url ?? "")
							: "",
					localCandidateType: state.path?.local.type ?? "",
					remoteCandidateType: state.path?.remote.type ?? (relayed ? "relay" : ""),
					lastHandshakeUnixMs: handshakeMs,
					bytesReceived: wg?.rxBytes ?? 0,
					bytesSent: wg?.txBytes ?? 0,
					latencyMs: state.probe?.watch.rttMs ?? state.path?.rttMs ?? 0,
					peerOnline: state.remote.connected,
					reason: direct
						? ""
						: relayed
							? `relayed: ${snap.lastFailure ?? "no direct path found yet"}`
							: (snap.lastFailure ?? (state.remote.connected ? "" : "peer is offline")),
				};
			})
			.sort((a, b) => a.name.localeCompare(b.name));
	}

	signalStatus(): DaemonStatus["signal"] {
		return {
			url: this.signalUrl,
			connected: this.signal?.state === "ready",
			error: this.signal?.state === "ready" ? "" : this.signalError,
		};
	}

	/**
	 * Starts watching a new direct path. Probes go out from the ICE port, which
	 * the ICE worker keeps while its session lingers; the socket opens after.
	 */
	private startProbe(state: PeerState, port: number): void {
		this.closeProbe(state);
		const probe: NonNullable<PeerState["probe"]> = {
			watch: new PathProbe(Date.now(), this.options.pathProbe ?? DEFAULT_PATH_PROBE, (n) =>
				randomBytes(n),
			),
			socket: undefined,
		};
		state.probe = probe;
		this.setTimer(state, "probe-open", ICE_LINGER_MS + 100, () => {
			void ProbeSocket.open(port, (id) => probe.watch.onAnswer(id, Date.now())).then(
				(socket) => {
					if (state.probe === probe && !this.stopped) {
						probe.socket = socket;
						probe.watch.begin(Date.now());
					} else socket.close();
				},
				(err) => this.logError("path probe socket", err),
			);
		});
	}

	private closeProbe(state: PeerState): void {
		const t = state.timers.get("probe-open");
		if (t) clearTimeout(t);
		state.timers.delete("probe-open");
		state.probe?.socket?.close();
		state.probe = undefined;
	}

	/** Twice a second: probe active direct paths; a silent one goes back to the relay. */
	private probePaths(): void {
		const now = Date.now();
		for (const state of this.peers.values()) {
			const probe = state.probe;
			if (!state.path || !probe?.socket) continue;
			const action = probe.watch.tick(now);
			if (action?.type === "send") {
				// Where WireGuard sends: it roams to where the peer's packets come from.
				const wgEndpoint = this.lastDump.get(state.remote.wgPublicKey)?.endpoint;
				const direct =
					wgEndpoint && wgEndpoint !== state.relayEndpoint
						? wgEndpoint
						: state.path.lastDirectEndpoint;
				const target = direct ? parseEndpoint(direct) : undefined;
				const { address, port } = target ?? state.path.remote;
				probe.socket.send(action.transactionId, address, port);
			} else if (action?.type === "lost") {
				this.input(state, {
					type: "path-lost",
					reason: `no answer on the direct path for ${(action.silentMs / 1000).toFixed(1)} s`,
				});
			}
		}
	}

	/** Stops every connection, ICE session and timer. The caller removes the interface. */
	async stop(): Promise<void> {
		if (this.stopped) return;
		for (const key of [...this.peers.keys()]) this.removePeer(key);
		this.stopped = true;
		clearInterval(this.healthTimer);
		clearInterval(this.probeTimer);
		await this.reconciling;
		await this.signal?.close();
		this.signal = undefined;
		const relay = this.relay;
		this.relay = undefined;
		if (relay) {
			await relay.bridge.close().catch(() => undefined);
			await Promise.resolve(relay.client.close()).catch(() => undefined);
		}
	}

	private logError(what: string, err: unknown): void {
		this.options.logger.error(
			{ error: err instanceof Error ? err.message : String(err) },
			`${what} failed`,
		);
	}
}

function endpointText(e: { address: string; port: number }): string {
	return e.address.includes(":") ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

const CANDIDATE_TYPES = new Set(["host", "srflx", "prflx", "relay"]);

function toPeerEndpoint(c: { address: string; port: number; type: string }): PeerEndpoint {
	const type = CANDIDATE_TYPES.has(c.type) ? (c.type as PeerEndpoint["type"]) : "host";
	return { address: c.address, port: c.port, type };
}

function fmt(e: PeerEndpoint): string {
	return `${endpointText(e)} (${e.type})`;
}

/**
 * WireGuard's endpoint for a direct path: ICE's remote address the first
 * time (noted in `applied`), then undefined, which keeps whatever WireGuard
 * has roamed to since — unless it roamed to the relay bridge (packets the
 * peer still sent through the relay while it switched): then back to the
 * last direct address it used.
 */
function directEndpoint(
	path: NonNullable<PeerState["path"]>,
	wgEndpoint: string | undefined,
	relayEndpoint: string | undefined,
	applied: NonNullable<PeerState["path"]>[],
): string | undefined {
	const onRelay = wgEndpoint !== undefined && wgEndpoint === relayEndpoint;
	if (path.endpointApplied && !onRelay) {
		if (wgEndpoint) path.lastDirectEndpoint = wgEndpoint;
		return undefined;
	}
	applied.push(path);
	return path.lastDirectEndpoint ?? endpointText(path.remote);
}

/** "198.18.0.2:51820" → address and port; undefined for anything else (IPv6 is not probed). */
function parseEndpoint(text: string): { address: string; port: number } | undefined {
	const match = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text);
	if (!match) return undefined;
	return { address: match[1]!, port: Number(match[2]) };
}
