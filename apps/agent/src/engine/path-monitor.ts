import { randomBytes } from "node:crypto";
import type { ConnInput } from "../conn/peer-connection.js";
import type { WireGuardDevice } from "../wireguard/device.js";
import type { PeerDump } from "../wireguard/wg-dump.js";
import { ICE_LINGER_MS } from "./ice-sessions.js";
import {
	checkDirectPath,
	FRESH_TRAFFIC_WAKE,
	type InterfaceCounters,
	noticeTraffic,
	PROBE_UNANSWERED_MS,
	probeTarget,
	trafficWake,
} from "./path-health.js";
import { DEFAULT_PATH_PROBE, PathProbe, type PathProbeOptions } from "./path-probe.js";
import type { PeerState, ProbeSocketLike } from "./peer-state.js";

/** How often WireGuard's dump is read to judge direct paths. */
const HEALTH_INTERVAL_MS = 5_000;
/** How often active direct paths are considered for a probe (PathProbe paces the probes). */
const PROBE_TICK_MS = 100;
/** How often the overlay interface's counters are read to notice traffic starting. */
const TRAFFIC_TICK_MS = 200;

export type ProbeSocketOpener = (
	port: number,
	onAnswer: (transactionId: Uint8Array) => void,
) => Promise<ProbeSocketLike>;

export interface PathMonitorOptions {
	device: Pick<WireGuardDevice, "dump">;
	peers(): Iterable<PeerState>;
	/** Whether this peer object is still the one in the map. */
	current(state: PeerState): boolean;
	relayEndpointOf(key: string): string | undefined;
	/** Feeds `path-lost` to the peer's state machine. */
	feed(state: PeerState, input: ConnInput): void;
	/** Asks the reconciler for a WireGuard pass. */
	reconcile(): void;
	openProbeSocket: ProbeSocketOpener;
	/** The overlay interface's counters now (interface-counters.ts); undefined when unreadable. */
	interfaceCounters(): Promise<InterfaceCounters | undefined>;
	pathProbe?: PathProbeOptions | undefined;
	logError(what: string, err: unknown): void;
}

/**
 * The I/O side of path health: reads WireGuard's dump every 5 s and acts on
 * path-health.ts's verdicts; reads the overlay interface's counters five
 * times a second and, when traffic left while a direct path is not watched,
 * the dump at once to see which peers it went to, and starts their probes
 * (`trafficWake`, `noticeTraffic`); reads it once more when a probe goes
 * unanswered, so probes follow WireGuard's roaming; probes active direct paths from their
 * ICE port (path-probe.ts decides). Keeps the last dump, which the
 * reconciler and the status view read.
 */
export class PathMonitor {
	private dump = new Map<string, PeerDump>();
	private healthTimer: NodeJS.Timeout | undefined;
	private probeTimer: NodeJS.Timeout | undefined;
	private trafficTimer: NodeJS.Timeout | undefined;
	private trafficWakeMemory = FRESH_TRAFFIC_WAKE;
	private trafficCheckRunning = false;
	private stopped = false;

	constructor(private readonly options: PathMonitorOptions) {}

	start(): void {
		this.healthTimer = setInterval(() => void this.checkHealth(), HEALTH_INTERVAL_MS);
		this.healthTimer.unref();
		this.probeTimer = setInterval(() => this.probePaths(Date.now()), PROBE_TICK_MS);
		this.probeTimer.unref();
		this.trafficTimer = setInterval(() => void this.checkTraffic(), TRAFFIC_TICK_MS);
		this.trafficTimer.unref();
	}

	/** This peer in WireGuard's last dump. */
	wgOf(key: string): PeerDump | undefined {
		return this.dump.get(key);
	}

	/** Reads WireGuard's dump now; keeps the last one when that fails (logged unless `quiet`). */
	async refresh(quiet = false): Promise<boolean> {
		try {
			const dump = await this.options.device.dump();
			this.dump = new Map(dump.peers.map((p) => [p.publicKey, p]));
			return true;
		} catch (err) {
			if (!quiet) this.options.logError("wireguard dump", err);
			return false;
		}
	}

	/** One health pass over every direct path (every 5 s). */
	async checkHealth(now = Date.now()): Promise<void> {
		if (this.stopped || !(await this.refresh())) return;
		for (const state of this.options.peers()) {
			if (!state.path) continue;
			const verdict = checkDirectPath(state.health, {
				now,
				wg: this.dump.get(state.key),
				endpointApplied: state.path.endpointApplied === true,
				relayEndpoint: this.options.relayEndpointOf(state.key),
				connectedSince: state.conn.snapshot().connectedSince,
			});
			state.health = verdict.memory;
			// Roamed to the relay bridge while the direct path is up: put it back.
			if (verdict.reapplyDirectEndpoint) this.options.reconcile();
			if (verdict.lost) this.options.feed(state, { type: "path-lost", reason: verdict.lost });
		}
	}

	/**
	 * Notices traffic into a direct path within TRAFFIC_TICK_MS: the interface
	 * counters moved while some direct path is unwatched, so read the dump and
	 * start probing each direct path that traffic went to, right away.
	 */
	async checkTraffic(now = Date.now()): Promise<void> {
		if (this.stopped || this.trafficCheckRunning) return;
		this.trafficCheckRunning = true;
		try {
			const counters = await this.options.interfaceCounters();
			const wake = trafficWake(this.trafficWakeMemory, {
				now,
				counters,
				unwatchedDirectPath: this.hasUnwatchedDirectPath(now),
				probeUnansweredSince: this.probeUnansweredSince(now),
			});
			this.trafficWakeMemory = wake.memory;
			if (!wake.readDump || !(await this.refresh(true))) return;
			const seen = Date.now();
			let woke = false;
			for (const state of this.options.peers()) {
				if (!state.path || !state.probe) continue;
				const traffic = noticeTraffic(state.health, this.dump.get(state.key));
				state.health = traffic.memory;
				if (traffic.sending && !state.probe.watch.isActive(seen)) {
					state.probe.watch.noteSending(seen);
					woke = true;
				}
			}
			// The first probe goes out now, not at the next probe tick.
			if (woke) this.probePaths(seen);
		} finally {
			this.trafficCheckRunning = false;
		}
	}

	/** When the latest silence of a running probe reached PROBE_UNANSWERED_MS, if any did. */
	private probeUnansweredSince(now: number): number | undefined {
		let latest: number | undefined;
		for (const state of this.options.peers()) {
			const silent = state.path ? (state.probe?.watch.silentMs(now) ?? 0) : 0;
			if (silent < PROBE_UNANSWERED_MS) continue;
			const since = now - silent + PROBE_UNANSWERED_MS;
			latest = latest === undefined ? since : Math.max(latest, since);
		}
		return latest;
	}

	private hasUnwatchedDirectPath(now: number): boolean {
		for (const state of this.options.peers()) {
			if (state.path && state.probe?.socket && !state.probe.watch.isActive(now)) return true;
		}
		return false;
	}

	/**
	 * Starts watching a new direct path. Probes go out from the ICE port, which
	 * the ICE worker keeps while its session lingers; the socket opens after.
	 */
	startProbe(state: PeerState, port: number): void {
		this.closeProbe(state);
		const probe: NonNullable<PeerState["probe"]> = {
			watch: new PathProbe(Date.now(), this.options.pathProbe ?? DEFAULT_PATH_PROBE, (n) =>
				randomBytes(n),
			),
			socket: undefined,
		};
		state.probe = probe;
		state.timers.set("probe-open", ICE_LINGER_MS + 100, () => {
			void this.options
				.openProbeSocket(port, (id) => probe.watch.onAnswer(id, Date.now()))
				.then(
					(socket) => {
						if (state.probe === probe && !this.stopped && this.options.current(state)) {
							probe.socket = socket;
							probe.watch.begin(Date.now());
						} else socket.close();
					},
					(err) => this.options.logError("path probe socket", err),
				);
		});
	}

	closeProbe(state: PeerState): void {
		state.timers.cancel("probe-open");
		state.probe?.socket?.close();
		state.probe = undefined;
	}

	/** Probe active direct paths; a silent one goes back to the relay. */
	probePaths(now: number): void {
		for (const state of this.options.peers()) {
			const probe = state.probe;
			if (!state.path || !probe?.socket) continue;
			const action = probe.watch.tick(now);
			if (action?.type === "send") {
				const { address, port } = probeTarget({
					wgEndpoint: this.dump.get(state.key)?.endpoint,
					relayEndpoint: this.options.relayEndpointOf(state.key),
					lastDirectEndpoint: state.path.lastDirectEndpoint,
					iceRemote: state.path.remote,
				});
				probe.socket.send(action.transactionId, address, port);
			} else if (action?.type === "lost") {
				this.options.feed(state, {
					type: "path-lost",
					reason: `no answer on the direct path for ${(action.silentMs / 1000).toFixed(1)} s`,
				});
			}
		}
	}

	stop(): void {
		this.stopped = true;
		clearInterval(this.healthTimer);
		clearInterval(this.probeTimer);
		clearInterval(this.trafficTimer);
	}
}
