/**
 * Test harness: two PeerConnections wired through a simulated signal channel
 * (loss, delay, duplication, reordering, send errors), a simulated ICE and
 * simulated time with a timer queue. Pure and deterministic for a seed; the
 * engine's duties (timers, ICE agents, port rewrite, handshake monitoring)
 * are played by this file, which also checks every command the machines emit
 * and records what is wrong in `violations`.
 */
import { PeerMessage } from "@starling/proto";
import { PeerConnection } from "./peer-connection.js";
import type {
	ConnCommand,
	ConnConfig,
	ConnInput,
	ConnRole,
	ConnSnapshot,
	PeerEndpoint,
	TimerName,
} from "./types.js";

export type SideName = "a" | "b";

export interface NetworkConditions {
	/** Probability that a signal message is silently lost. */
	lossRate: number;
	/** Probability that a delivered message is delivered a second time. */
	duplicateRate: number;
	/** Probability that the sender is told the send failed (notFound: false). */
	sendErrorRate: number;
	/** Each message takes a uniform delay in [min, max]; messages overtake each other. */
	minDelayMs: number;
	maxDelayMs: number;
	/** Messages between the two sides arrive in the order they were sent (like one signal stream). */
	fifo: boolean;
}

export const HEALTHY_NETWORK: NetworkConditions = {
	lossRate: 0,
	duplicateRate: 0,
	sendErrorRate: 0,
	minDelayMs: 5,
	maxDelayMs: 80,
	fifo: false,
};

export interface SimulationOptions {
	seed: number;
	network?: Partial<NetworkConditions>;
	/** ICE checks fail for this many sessions, counted in the order they were first started. */
	iceFailFirstSessions?: number;
	/** An ICE agent with a remote description that has not connected by then reports failure. */
	iceCheckTimeoutMs?: number;
	/** A path up on one side only is reported lost (stale handshakes) after this long. */
	pathLostAfterMs?: number;
	config?: Partial<ConnConfig>;
	/** Guards against a machine that spins without time passing. */
	maxEvents?: number;
}

interface SimIceAgent {
	sessionId: number;
	role: ConnRole;
	instance: number;
	local: PeerEndpoint;
	localSdp: string;
	remoteSdp: string | undefined;
	/** Instances of the peer whose candidates this agent received. */
	remoteCandidateSources: Set<string>;
	outcomeScheduled: boolean;
	reportedConnected: boolean;
}

interface SimPath {
	sessionId: number;
	local: PeerEndpoint;
	remote: PeerEndpoint;
}

interface SimSide {
	name: SideName;
	publicKey: Uint8Array;
	wireguardPort: number;
	address: string;
	conn: PeerConnection | undefined;
	/** How many PeerConnections this side has made (each is a new WireGuard peer for the other). */
	connsMade: number;
	/** Bumped when the process restarts: events for an older instance are dropped. */
	instance: number;
	signalConnected: boolean;
	/** What management tells this side about the other one. */
	peerOnlineFlag: boolean;
	timers: Map<TimerName, { token: number; deadline: number }>;
	ice: Map<number, SimIceAgent>;
	path: SimPath | undefined;
	/** The last ice-connected we reported, for checking the path-up that follows. */
	lastIceConnected: SimPath | undefined;
	pendingPathChecks: Set<number>;
	/** Every session this side ever started ICE for, in order. */
	sessionsStarted: number[];
}

type SimEvent =
	| { kind: "deliver"; to: SideName; message: PeerMessage }
	| { kind: "send-failed"; to: SideName; instance: number; sessionId: number; notFound: boolean }
	| { kind: "timer"; side: SideName; instance: number; name: TimerName; token: number }
	| { kind: "ice-input"; side: SideName; agent: SimIceAgent; input: ConnInput }
	| {
			kind: "ice-outcome";
			sessionId: number;
			success: boolean;
			agents: { side: SideName; agent: SimIceAgent }[];
	  }
	| { kind: "ice-check-deadline"; side: SideName; agent: SimIceAgent }
	| { kind: "path-check"; side: SideName; instance: number; sessionId: number }
	| { kind: "path-broken"; side: SideName; instance: number; sessionId: number }
	| { kind: "action"; run: () => void };

interface QueuedEvent {
	atMs: number;
	sequence: number;
	event: SimEvent;
}

/** mulberry32: small, fast, good enough to drive a simulation. */
export function seededRandom(seed: number): () => number {
	let state = seed >>> 0;
	return () => {
		state = (state + 0x6d2b79f5) >>> 0;
		let mixed = state;
		mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
		mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
		return ((mixed ^ (mixed >>> 14)) >>> 0) / 4_294_967_296;
	};
}

export class SimulatedNetwork {
	nowMs = 0;
	readonly violations: string[] = [];
	/** The last trace lines, to explain a failing seed. */
	readonly trace: string[] = [];
	private readonly queue: QueuedEvent[] = [];
	private sequence = 0;
	private eventsProcessed = 0;
	private timerToken = 0;
	private readonly random: () => number;
	private network: NetworkConditions;
	private readonly sides: Record<SideName, SimSide>;
	private readonly sessionOrder: number[] = [];
	private lastPathUpAt = 0;
	/** Latest delivery time per recipient, for FIFO delivery. */
	private readonly lastDeliveryAt: Record<SideName, number> = { a: 0, b: 0 };
	/** ICE agents that gave up because the peer's description or candidates never came. */
	private iceTimeouts = 0;
	/** Sessions whose index in sessionOrder is below this fail their ICE checks. */
	private failSessionsBelow: number;
	private readonly options: Required<Omit<SimulationOptions, "network" | "config">> & {
		config: Partial<ConnConfig>;
	};

	constructor(options: SimulationOptions) {
		this.options = {
			seed: options.seed,
			iceFailFirstSessions: options.iceFailFirstSessions ?? 0,
			iceCheckTimeoutMs: options.iceCheckTimeoutMs ?? 10_000,
			pathLostAfterMs: options.pathLostAfterMs ?? 15_000,
			maxEvents: options.maxEvents ?? 200_000,
			config: options.config ?? {},
		};
		this.failSessionsBelow = this.options.iceFailFirstSessions;
		this.random = seededRandom(options.seed);
		this.network = { ...HEALTHY_NETWORK, ...options.network };
		const keyA = this.randomKey();
		let keyB = this.randomKey();
		while (keyB.every((byte, index) => byte === keyA[index])) keyB = this.randomKey();
		this.sides = {
			a: this.newSide("a", keyA, 51_820, "192.0.2.1"),
			b: this.newSide("b", keyB, 51_821, "198.51.100.2"),
		};
	}

	// ---- scenario API ----------------------------------------------------

	/** Runs `action` at simulated time `atMs` (or now, if that is past). */
	at(atMs: number, action: () => void): void {
		this.schedule(Math.max(atMs, this.nowMs), { kind: "action", run: action });
	}

	start(side: SideName, peerOnline = true): void {
		const state = this.sides[side];
		state.peerOnlineFlag = peerOnline;
		state.conn = new PeerConnection({
			localPublicKey: state.publicKey,
			remotePublicKey: this.other(side).publicKey,
			wireguardPort: state.wireguardPort,
			agentVersion: `sim-${side}-${state.instance}`,
			random: seededRandom(Math.floor(this.random() * 2 ** 32)),
			config: this.options.config,
		});
		state.connsMade++;
		state.signalConnected = true;
		this.input(side, { type: "start", peerOnline });
	}

	/** stop; with `shutdown` the process also leaves signal (the peer's sends fail with notFound). */
	stop(side: SideName, shutdown: boolean): void {
		this.input(side, { type: "stop" });
		if (shutdown) this.sides[side].signalConnected = false;
	}

	/**
	 * The process dies (after a clean stop if `graceful`) and comes back as a
	 * fresh PeerConnection `gapMs` later. Its ICE agents, timers and WireGuard
	 * endpoint die with it; the peer only learns through signal or stale handshakes.
	 */
	restart(side: SideName, options: { graceful: boolean; gapMs: number }): void {
		const state = this.sides[side];
		if (options.graceful && state.conn !== undefined) this.input(side, { type: "stop" });
		state.conn = undefined;
		state.instance++;
		state.signalConnected = false;
		state.timers.clear();
		state.ice.clear();
		state.path = undefined;
		state.lastIceConnected = undefined;
		state.pendingPathChecks.clear();
		this.log(`${side} restarts (graceful: ${options.graceful}, back in ${options.gapMs} ms)`);
		this.at(this.nowMs + options.gapMs, () => this.start(side, state.peerOnlineFlag));
	}

	/** Management tells `side` that its peer is (not) connected. */
	setPeerOnline(side: SideName, online: boolean): void {
		this.sides[side].peerOnlineFlag = online;
		if (this.sides[side].conn !== undefined) this.input(side, { type: "peer-online", online });
	}

	setNetwork(conditions: Partial<NetworkConditions>): void {
		this.network = { ...this.network, ...conditions };
		this.log(`network: ${JSON.stringify(this.network)}`);
	}

	/**
	 * The current path stops carrying traffic (NAT rebinding, a route change):
	 * each side's engine notices stale handshakes a while later.
	 */
	breakPath(): void {
		for (const side of [this.sides.a, this.sides.b]) {
			if (side.path === undefined) continue;
			this.schedule(this.nowMs + this.options.pathLostAfterMs + this.random() * 5_000, {
				kind: "path-broken",
				side: side.name,
				instance: side.instance,
				sessionId: side.path.sessionId,
			});
		}
		this.log("the path breaks");
	}

	/** Processes events up to `untilMs`. */
	runUntil(untilMs: number): void {
		while (this.queue.length > 0 && (this.queue[0]?.atMs ?? Infinity) <= untilMs) {
			if (!this.step()) return;
		}
		this.nowMs = Math.max(this.nowMs, untilMs);
	}

	/** Processes events until none is left (true) or simulated time passes `untilMs` (false). */
	runUntilQuiet(untilMs: number): boolean {
		while (this.queue.length > 0) {
			if ((this.queue[0]?.atMs ?? Infinity) > untilMs) return false;
			if (!this.step()) return false;
		}
		this.checkQuiescence();
		return true;
	}

	snapshot(side: SideName): ConnSnapshot | undefined {
		return this.sides[side].conn?.snapshot();
	}

	path(side: SideName): SimPath | undefined {
		return this.sides[side].path;
	}

	armedTimers(side: SideName): TimerName[] {
		return [...this.sides[side].timers.keys()];
	}

	openIceSessions(side: SideName): number[] {
		return [...this.sides[side].ice.keys()];
	}

	sessionsStartedBy(side: SideName): number[] {
		return [...this.sides[side].sessionsStarted];
	}

	/** When the last path-up (on either side) happened. */
	lastPathUpAtMs(): number {
		return this.lastPathUpAt;
	}

	/** ICE checks fail for the next `count` sessions started from now on. */
	failNextIceSessions(count: number): void {
		this.failSessionsBelow = this.sessionOrder.length + count;
	}

	iceTimeoutCount(): number {
		return this.iceTimeouts;
	}

	role(side: SideName): ConnRole | undefined {
		return this.sides[side].conn?.role;
	}

	controllingSide(): SideName {
		const a = this.sides.a.publicKey;
		const b = this.sides.b.publicKey;
		for (let index = 0; index < a.length; index++) {
			if ((a[index] ?? 0) !== (b[index] ?? 0)) return (a[index] ?? 0) > (b[index] ?? 0) ? "a" : "b";
		}
		return "b";
	}

	/** Both sides connected on one session with mirrored endpoints. */
	connectedOnOneSession(): boolean {
		const a = this.sides.a;
		const b = this.sides.b;
		return (
			a.conn?.snapshot().state === "connected" &&
			b.conn?.snapshot().state === "connected" &&
			a.path !== undefined &&
			b.path !== undefined &&
			a.path.sessionId === b.path.sessionId &&
			sameEndpoint(a.path.local, b.path.remote) &&
			sameEndpoint(a.path.remote, b.path.local)
		);
	}

	// ---- event loop ------------------------------------------------------

	private step(): boolean {
		const next = this.pop();
		if (next === undefined) return false;
		this.eventsProcessed++;
		if (this.eventsProcessed > this.options.maxEvents) {
			this.violate(`more than ${this.options.maxEvents} events: something spins`);
			this.queue.length = 0;
			return false;
		}
		this.nowMs = next.atMs;
		this.process(next.event);
		// After the whole event: an ice-connected delivered to one side, then the other, is no mismatch.
		this.watchPaths();
		return true;
	}

	private process(event: SimEvent): void {
		switch (event.kind) {
			case "action":
				event.run();
				return;
			case "deliver": {
				const side = this.sides[event.to];
				// Signal routes by key: whoever holds the key now gets it, if connected.
				if (side.conn === undefined || !side.signalConnected) return;
				this.input(event.to, { type: "signal-received", message: event.message });
				return;
			}
			case "send-failed":
				if (this.sides[event.to].instance !== event.instance) return;
				this.input(event.to, {
					type: "signal-send-failed",
					sessionId: event.sessionId,
					notFound: event.notFound,
				});
				return;
			case "timer": {
				const side = this.sides[event.side];
				const armed = side.timers.get(event.name);
				if (side.instance !== event.instance || armed?.token !== event.token) return;
				side.timers.delete(event.name);
				this.input(event.side, { type: "timer", name: event.name });
				return;
			}
			case "ice-input":
				// A closed agent reports nothing.
				if (this.sides[event.side].ice.get(event.agent.sessionId) !== event.agent) return;
				this.input(event.side, event.input);
				return;
			case "ice-outcome":
				this.iceOutcome(event);
				return;
			case "ice-check-deadline": {
				const agent = event.agent;
				if (this.sides[event.side].ice.get(agent.sessionId) !== agent) return;
				if (agent.outcomeScheduled || agent.reportedConnected) return;
				this.iceTimeouts++;
				this.input(event.side, {
					type: "ice-failed",
					sessionId: agent.sessionId,
					reason: "timeout",
				});
				return;
			}
			case "path-broken": {
				const side = this.sides[event.side];
				if (side.instance !== event.instance || side.path?.sessionId !== event.sessionId) return;
				this.input(event.side, { type: "path-lost", reason: "handshakes went stale" });
				return;
			}
			case "path-check": {
				const side = this.sides[event.side];
				if (side.instance !== event.instance) return;
				side.pendingPathChecks.delete(event.sessionId);
				if (side.path?.sessionId !== event.sessionId) return;
				if (this.other(event.side).path?.sessionId === event.sessionId) return;
				this.input(event.side, {
					type: "path-lost",
					reason: `no WireGuard handshake for ${this.options.pathLostAfterMs / 1000} s`,
				});
				return;
			}
		}
	}

	/** Feeds one input to a side's machine and carries out what it asks. */
	private input(sideName: SideName, input: ConnInput): void {
		const side = this.sides[sideName];
		const conn = side.conn;
		if (conn === undefined) return;
		const wasClosed = conn.snapshot().state === "closed";
		let commands: ConnCommand[];
		try {
			commands = conn.handle(input, this.nowMs);
		} catch (error) {
			this.violate(`${sideName} threw on ${input.type}: ${String(error)}`);
			return;
		}
		if (wasClosed && commands.length > 0) {
			this.violate(`${sideName} emitted ${commands.length} commands after stop`);
		}
		const after = conn.snapshot();
		this.log(
			`${sideName}#${side.instance} <- ${describeInput(input)} => ${after.state}/${after.sessionId} ` +
				`[${commands.map(describeCommand).join(", ")}]`,
		);
		for (const command of commands) this.execute(sideName, command);
		this.checkSide(sideName);
		this.checkBothSides();
	}

	private execute(sideName: SideName, command: ConnCommand): void {
		const side = this.sides[sideName];
		switch (command.type) {
			case "send-signal":
				this.sendSignal(sideName, command.message);
				return;
			case "ice-start": {
				if (side.ice.size > 0) {
					this.violate(
						`${sideName} started ICE ${command.sessionId} with ${[...side.ice.keys()]} open`,
					);
				}
				if (!this.sessionOrder.includes(command.sessionId))
					this.sessionOrder.push(command.sessionId);
				side.sessionsStarted.push(command.sessionId);
				const agent: SimIceAgent = {
					sessionId: command.sessionId,
					role: command.role,
					instance: side.instance,
					local: {
						address: side.address,
						port: 40_000 + Math.floor(this.random() * 20_000),
						type: pick(this.random, ["host", "srflx", "prflx", "relay"] as const),
					},
					localSdp: `sim side=${sideName} instance=${side.instance} session=${command.sessionId} ufrag=${Math.floor(this.random() * 1e9)}`,
					remoteSdp: undefined,
					remoteCandidateSources: new Set(),
					outcomeScheduled: false,
					reportedConnected: false,
				};
				side.ice.set(command.sessionId, agent);
				this.gather(sideName, agent);
				return;
			}
			case "ice-remote-description": {
				const agent = side.ice.get(command.sessionId);
				if (agent === undefined) {
					this.violate(`${sideName} set a remote description on closed ICE ${command.sessionId}`);
					return;
				}
				if (agent.remoteSdp !== undefined)
					this.violate(`${sideName} set a second remote description`);
				const expectedKind = agent.role === "controlled" ? "offer" : "answer";
				if (command.kind !== expectedKind) {
					this.violate(`${sideName} (${agent.role}) applied an ${command.kind}`);
				}
				const origin = parseSdp(command.sdp);
				if (origin?.side !== this.otherName(sideName) || origin.session !== command.sessionId) {
					this.violate(`${sideName} applied a foreign SDP to ${command.sessionId}: ${command.sdp}`);
				}
				agent.remoteSdp = command.sdp;
				this.schedule(this.nowMs + this.options.iceCheckTimeoutMs, {
					kind: "ice-check-deadline",
					side: sideName,
					agent,
				});
				this.maybeScheduleOutcome(command.sessionId);
				return;
			}
			case "ice-remote-candidate": {
				const agent = side.ice.get(command.sessionId);
				if (agent === undefined) {
					this.violate(`${sideName} added a candidate to closed ICE ${command.sessionId}`);
					return;
				}
				if (agent.remoteSdp === undefined) {
					this.violate(`${sideName} added a candidate before the remote description`);
				}
				if (command.candidate === "") return;
				const origin = parseCandidate(command.candidate);
				if (origin?.side !== this.otherName(sideName) || origin.session !== command.sessionId) {
					this.violate(`${sideName} added a foreign candidate to ${command.sessionId}`);
					return;
				}
				agent.remoteCandidateSources.add(origin.instance);
				this.maybeScheduleOutcome(command.sessionId);
				return;
			}
			case "ice-close":
				if (!side.ice.delete(command.sessionId)) {
					this.violate(`${sideName} closed ICE ${command.sessionId}, which is not open`);
				}
				return;
			case "path-up": {
				if (side.path !== undefined) this.violate(`${sideName} path-up over a path that is up`);
				const reported = side.lastIceConnected;
				if (
					reported === undefined ||
					reported.sessionId !== command.sessionId ||
					!sameEndpoint(reported.local, command.local) ||
					!sameEndpoint(reported.remote, command.remote)
				) {
					this.violate(`${sideName} path-up for ${command.sessionId} that ICE did not report`);
				}
				if (command.remoteWireguardPort !== this.other(sideName).wireguardPort) {
					this.violate(`${sideName} path-up with WireGuard port ${command.remoteWireguardPort}`);
				}
				if (command.sendHandshakeFirst !== (side.conn?.role === "controlling")) {
					this.violate(`${sideName} path-up with sendHandshakeFirst ${command.sendHandshakeFirst}`);
				}
				if (side.ice.has(command.sessionId)) {
					this.violate(`${sideName} path-up before closing ICE ${command.sessionId}`);
				}
				side.path = { sessionId: command.sessionId, local: command.local, remote: command.remote };
				this.lastPathUpAt = this.nowMs;
				return;
			}
			case "path-down":
				if (side.path === undefined) this.violate(`${sideName} path-down without a path`);
				side.path = undefined;
				return;
			case "wireguard-session-stale":
				// The simulation has no WireGuard sessions; the peer restarting is what it checks.
				if (this.other(sideName).connsMade < 2) {
					this.violate(
						`${sideName} found its WireGuard session stale, but the peer never restarted`,
					);
				}
				return;
			case "set-timer": {
				if (!(Number.isFinite(command.delayMs) && command.delayMs >= 0)) {
					this.violate(`${sideName} set ${command.name} to ${command.delayMs} ms`);
					return;
				}
				const token = ++this.timerToken;
				side.timers.set(command.name, { token, deadline: this.nowMs + command.delayMs });
				this.schedule(this.nowMs + command.delayMs, {
					kind: "timer",
					side: sideName,
					instance: side.instance,
					name: command.name,
					token,
				});
				return;
			}
			case "cancel-timer":
				if (!side.timers.delete(command.name)) {
					this.violate(`${sideName} cancelled ${command.name}, which is not armed`);
				}
				return;
		}
	}

	private sendSignal(from: SideName, message: PeerMessage): void {
		const sender = this.sides[from];
		const kind = message.kind?.$case;
		if (!Number.isSafeInteger(message.sessionId) || message.sessionId < 0) {
			this.violate(`${from} sent session id ${message.sessionId}`);
		}
		if ((kind === "offer" || kind === "answer") && message.sessionId === 0) {
			this.violate(`${from} sent an ${kind} without a session`);
		}
		if (kind === "offer" && sender.conn?.role !== "controlling") this.violate(`${from} offered`);
		if (kind === "answer" && sender.conn?.role !== "controlled") this.violate(`${from} answered`);
		if (kind === "offerRequest" && sender.conn?.role !== "controlled") {
			this.violate(`${from} requested an offer`);
		}
		// Through the real wire format, as the engine would.
		const onTheWire = PeerMessage.decode(PeerMessage.encode(message).finish());
		const to = this.otherName(from);
		const delay = () =>
			this.network.minDelayMs +
			this.random() * Math.max(0, this.network.maxDelayMs - this.network.minDelayMs);
		const reportFailure = (notFound: boolean) =>
			this.schedule(this.nowMs + delay(), {
				kind: "send-failed",
				to: from,
				instance: sender.instance,
				sessionId: message.sessionId,
				notFound,
			});
		if (!this.sides[to].signalConnected) {
			reportFailure(true);
			return;
		}
		if (this.random() < this.network.sendErrorRate) {
			reportFailure(false);
			return;
		}
		if (this.random() < this.network.lossRate) return;
		const copies = this.random() < this.network.duplicateRate ? 2 : 1;
		for (let copy = 0; copy < copies; copy++) {
			let deliverAt = this.nowMs + delay();
			if (this.network.fifo) deliverAt = Math.max(deliverAt, this.lastDeliveryAt[to]);
			this.lastDeliveryAt[to] = Math.max(this.lastDeliveryAt[to], deliverAt);
			this.schedule(deliverAt, { kind: "deliver", to, message: onTheWire });
		}
	}

	/** The agent produces its description, then two candidates and the end-of-gathering marker. */
	private gather(side: SideName, agent: SimIceAgent): void {
		let at = this.nowMs + 5 + Math.floor(this.random() * 40);
		// Some agents trickle a candidate before the description; the machine must hold it.
		if (this.random() < 0.3) {
			this.scheduleIceInput(side, agent, at, this.candidateInput(side, agent, 0));
			at += 1;
		}
		this.scheduleIceInput(side, agent, at, {
			type: "ice-local-description",
			sessionId: agent.sessionId,
			sdp: agent.localSdp,
		});
		for (let index = 1; index <= 2; index++) {
			at += 5 + Math.floor(this.random() * 60);
			this.scheduleIceInput(side, agent, at, this.candidateInput(side, agent, index));
		}
		this.scheduleIceInput(side, agent, at + 10, {
			type: "ice-local-candidate",
			sessionId: agent.sessionId,
			candidate: "",
			mid: "0",
		});
	}

	private candidateInput(side: SideName, agent: SimIceAgent, index: number): ConnInput {
		return {
			type: "ice-local-candidate",
			sessionId: agent.sessionId,
			candidate: `candidate:${side}:${agent.instance}:${agent.sessionId}:${index}`,
			mid: "0",
		};
	}

	private scheduleIceInput(
		side: SideName,
		agent: SimIceAgent,
		atMs: number,
		input: ConnInput,
	): void {
		this.schedule(atMs, { kind: "ice-input", side, agent, input });
	}

	/** Connects (or fails) a session once both agents hold each other's description and a candidate. */
	private maybeScheduleOutcome(sessionId: number): void {
		const agentA = this.sides.a.ice.get(sessionId);
		const agentB = this.sides.b.ice.get(sessionId);
		if (agentA === undefined || agentB === undefined) return;
		if (agentA.outcomeScheduled || agentB.outcomeScheduled) return;
		if (agentA.remoteSdp !== agentB.localSdp || agentB.remoteSdp !== agentA.localSdp) return;
		if (!agentA.remoteCandidateSources.has(String(agentB.instance))) return;
		if (!agentB.remoteCandidateSources.has(String(agentA.instance))) return;
		agentA.outcomeScheduled = true;
		agentB.outcomeScheduled = true;
		const success = this.sessionOrder.indexOf(sessionId) >= this.failSessionsBelow;
		const delay = success ? 20 + this.random() * 500 : 1_000 + this.random() * 4_000;
		this.schedule(this.nowMs + delay, {
			kind: "ice-outcome",
			sessionId,
			success,
			agents: [
				{ side: "a", agent: agentA },
				{ side: "b", agent: agentB },
			],
		});
	}

	private iceOutcome(event: Extract<SimEvent, { kind: "ice-outcome" }>): void {
		const open = event.agents.filter(
			({ side, agent }) => this.sides[side].ice.get(agent.sessionId) === agent,
		);
		const bothOpen = open.length === 2;
		for (const { side, agent } of open) {
			// The agent may have been closed while its peer's outcome was being delivered.
			if (this.sides[side].ice.get(agent.sessionId) !== agent) continue;
			if (event.success && bothOpen) {
				const peer = this.other(side).ice.get(agent.sessionId);
				const remote =
					peer?.local ?? event.agents.find((entry) => entry.side !== side)?.agent.local;
				if (remote === undefined) continue;
				agent.reportedConnected = true;
				this.sides[side].lastIceConnected = {
					sessionId: agent.sessionId,
					local: agent.local,
					remote,
				};
				this.input(side, {
					type: "ice-connected",
					sessionId: agent.sessionId,
					local: agent.local,
					remote,
					rttMs: 20,
				});
			} else {
				this.input(side, {
					type: "ice-failed",
					sessionId: agent.sessionId,
					reason: event.success ? "peer went away" : "all candidate pairs failed",
				});
			}
		}
	}

	// ---- invariants ------------------------------------------------------

	/** What one side's machine says must match what the engine (we) hold for it. */
	private checkSide(sideName: SideName): void {
		const side = this.sides[sideName];
		const snapshot = side.conn?.snapshot();
		if (snapshot === undefined) return;
		if ((snapshot.state === "connected") !== (side.path !== undefined)) {
			this.violate(`${sideName} is ${snapshot.state} with path ${side.path ? "up" : "down"}`);
		}
		const believed = Object.keys(snapshot.timers).sort().join(",");
		const armed = [...side.timers.keys()].sort().join(",");
		if (believed !== armed)
			this.violate(`${sideName} believes timers [${believed}], armed [${armed}]`);
		if (snapshot.state === "connected" && armed !== "") {
			this.violate(`${sideName} is connected with timers [${armed}]`);
		}
		if (snapshot.state === "closed" && (armed !== "" || side.ice.size > 0 || side.path)) {
			this.violate(`${sideName} closed with timers, ICE or a path left`);
		}
		for (const agent of side.ice.values()) {
			if (agent.reportedConnected)
				this.violate(`${sideName} left connected ICE ${agent.sessionId} open`);
		}
	}

	/** Both paths up means one session, with mirrored endpoints. */
	private checkBothSides(): void {
		const a = this.sides.a.path;
		const b = this.sides.b.path;
		if (a === undefined || b === undefined) return;
		if (a.sessionId !== b.sessionId) {
			this.violate(`paths up on different sessions: a ${a.sessionId}, b ${b.sessionId}`);
		} else if (!sameEndpoint(a.local, b.remote) || !sameEndpoint(a.remote, b.local)) {
			this.violate("paths up with endpoints that don't mirror");
		}
	}

	/** Nothing left to happen: no side may be connected on a session the other is not on. */
	private checkQuiescence(): void {
		const a = this.sides.a;
		const b = this.sides.b;
		for (const [one, other] of [
			[a, b],
			[b, a],
		] as const) {
			if (one.path !== undefined && other.path?.sessionId !== one.path.sessionId) {
				this.violate(`quiescent with ${one.name} connected on ${one.path.sessionId} alone`);
			}
		}
	}

	/** The engine's stale-handshake detection: a path up on one side only is lost after a while. */
	private watchPaths(): void {
		for (const side of [this.sides.a, this.sides.b]) {
			const path = side.path;
			if (path === undefined || side.pendingPathChecks.has(path.sessionId)) continue;
			if (this.other(side.name).path?.sessionId === path.sessionId) continue;
			side.pendingPathChecks.add(path.sessionId);
			this.schedule(this.nowMs + this.options.pathLostAfterMs, {
				kind: "path-check",
				side: side.name,
				instance: side.instance,
				sessionId: path.sessionId,
			});
		}
	}

	// ---- plumbing --------------------------------------------------------

	private newSide(
		name: SideName,
		publicKey: Uint8Array,
		wireguardPort: number,
		address: string,
	): SimSide {
		return {
			name,
			publicKey,
			wireguardPort,
			address,
			conn: undefined,
			connsMade: 0,
			instance: 0,
			signalConnected: false,
			peerOnlineFlag: true,
			timers: new Map(),
			ice: new Map(),
			path: undefined,
			lastIceConnected: undefined,
			pendingPathChecks: new Set(),
			sessionsStarted: [],
		};
	}

	private randomKey(): Uint8Array {
		return Uint8Array.from({ length: 32 }, () => Math.floor(this.random() * 256));
	}

	private other(side: SideName): SimSide {
		return this.sides[this.otherName(side)];
	}

	private otherName(side: SideName): SideName {
		return side === "a" ? "b" : "a";
	}

	private schedule(atMs: number, event: SimEvent): void {
		const entry: QueuedEvent = { atMs, sequence: this.sequence++, event };
		// Binary heap on (time, sequence): same-time events keep their order.
		const heap = this.queue;
		heap.push(entry);
		let index = heap.length - 1;
		while (index > 0) {
			const parent = (index - 1) >> 1;
			const parentEntry = heap[parent];
			if (parentEntry === undefined || !earlier(entry, parentEntry)) break;
			heap[index] = parentEntry;
			index = parent;
		}
		heap[index] = entry;
	}

	private pop(): QueuedEvent | undefined {
		const heap = this.queue;
		const top = heap[0];
		const last = heap.pop();
		if (top === undefined || last === undefined || heap.length === 0) return top;
		let index = 0;
		for (;;) {
			const left = index * 2 + 1;
			const right = left + 1;
			let smallest = index;
			let smallestEntry = last;
			const leftEntry = heap[left];
			const rightEntry = heap[right];
			if (leftEntry !== undefined && earlier(leftEntry, smallestEntry)) {
				smallest = left;
				smallestEntry = leftEntry;
			}
			if (rightEntry !== undefined && earlier(rightEntry, smallestEntry)) {
				smallest = right;
				smallestEntry = rightEntry;
			}
			if (smallest === index) break;
			heap[index] = smallestEntry;
			index = smallest;
		}
		heap[index] = last;
		return top;
	}

	private violate(message: string): void {
		this.violations.push(`t=${this.nowMs}: ${message}`);
		this.log(`VIOLATION ${message}`);
	}

	private log(line: string): void {
		this.trace.push(`t=${Math.round(this.nowMs)} ${line}`);
		if (this.trace.length > 300) this.trace.shift();
	}
}

function earlier(left: QueuedEvent, right: QueuedEvent): boolean {
	return left.atMs < right.atMs || (left.atMs === right.atMs && left.sequence < right.sequence);
}

function sameEndpoint(left: PeerEndpoint, right: PeerEndpoint): boolean {
	return left.address === right.address && left.port === right.port && left.type === right.type;
}

function pick<T>(random: () => number, choices: readonly T[]): T {
	const choice = choices[Math.floor(random() * choices.length)] ?? choices[0];
	if (choice === undefined) throw new Error("pick from an empty list");
	return choice;
}

function parseSdp(sdp: string): { side: string; session: number } | undefined {
	const match = /side=(\w+) instance=\d+ session=(\d+)/.exec(sdp);
	if (match === null) return undefined;
	return { side: match[1] ?? "", session: Number(match[2]) };
}

function parseCandidate(
	candidate: string,
): { side: string; instance: string; session: number } | undefined {
	const [, side, instance, session] = candidate.split(":");
	if (side === undefined || instance === undefined || session === undefined) return undefined;
	return { side, instance, session: Number(session) };
}

function describeInput(input: ConnInput): string {
	switch (input.type) {
		case "signal-received":
			return `recv ${input.message.kind?.$case ?? "?"}/${input.message.sessionId}`;
		case "timer":
			return `timer ${input.name}`;
		case "start":
			return `start online=${input.peerOnline}`;
		case "peer-online":
			return `peer-online ${input.online}`;
		case "signal-send-failed":
			return `send-failed/${input.sessionId} notFound=${input.notFound}`;
		case "stop":
		case "path-lost":
			return input.type;
		default:
			return `${input.type}/${input.sessionId}`;
	}
}

function describeCommand(command: ConnCommand): string {
	switch (command.type) {
		case "send-signal":
			return `send ${command.message.kind?.$case ?? "?"}/${command.message.sessionId}`;
		case "set-timer":
			return `set ${command.name} ${command.delayMs}`;
		case "cancel-timer":
			return `cancel ${command.name}`;
		case "path-down":
			return "path-down";
		case "wireguard-session-stale":
			return "wireguard-session-stale";
		default:
			return `${command.type}/${command.sessionId}`;
	}
}
