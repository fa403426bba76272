import { PeerMessage } from "@starling/proto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PeerConnection } from "./peer-connection.js";
import { seededRandom } from "./simulated-network.js";
import type { ConnCommand, ConnInput, PeerEndpoint, TimerName } from "./types.js";

/** How a generated input names its session: resolved against the machine when it is fed. */
type SessionRef = "current" | "ice" | number;

/** An input with symbolic session ids, so random sequences still hit the live session often. */
type InputRecipe =
	| { type: "plain"; input: ConnInput }
	| { type: "message"; session: SessionRef; kind: PeerMessage["kind"] }
	| {
			type: "ice";
			session: SessionRef;
			event: "description" | "candidate" | "connected" | "failed";
	  }
	| { type: "send-failed"; session: SessionRef; notFound: boolean }
	| { type: "timer"; name: TimerName }
	/** The next step of a successful negotiation from wherever the machine is, to reach deep states. */
	| { type: "advance"; freshSessionId: number };

const timerNameArb = fc.constantFrom<TimerName>(
	"offer-timeout",
	"connect-timeout",
	"retry",
	"offer-request",
);

const sessionRefArb: fc.Arbitrary<SessionRef> = fc.oneof(
	{ weight: 6, arbitrary: fc.constantFrom<SessionRef>("current", "ice") },
	{ weight: 2, arbitrary: fc.constantFrom(0, 1, 2, 3) },
	{ weight: 1, arbitrary: fc.constantFrom(-1, Number.NaN, 2 ** 60, 1.5, Number.MAX_SAFE_INTEGER) },
);

const descriptionArb = fc.oneof(
	{ weight: 4, arbitrary: fc.constant({ sdp: "sdp", wireguardPort: 51_820, agentVersion: "v" }) },
	{
		weight: 1,
		arbitrary: fc.record({
			sdp: fc.oneof(fc.constant(""), fc.string({ maxLength: 4 })),
			wireguardPort: fc.constantFrom(0, -1, 70_000, 1.5, 51_820),
			agentVersion: fc.string({ maxLength: 3 }),
		}),
	},
);

const messageKindArb: fc.Arbitrary<PeerMessage["kind"]> = fc.oneof(
	descriptionArb.map((value) => ({ $case: "offer" as const, value })),
	descriptionArb.map((value) => ({ $case: "answer" as const, value })),
	fc
		.record({ candidate: fc.constantFrom("c1", "c2", ""), mid: fc.constantFrom("0", "1") })
		.map((value) => ({ $case: "candidate" as const, value })),
	fc
		.string({ maxLength: 5 })
		.map((reason) => ({ $case: "offerRequest" as const, value: { reason } })),
	fc.string({ maxLength: 5 }).map((reason) => ({ $case: "closed" as const, value: { reason } })),
	fc.constant(undefined),
);

const plainInputArb: fc.Arbitrary<InputRecipe> = fc.record({
	type: fc.constant("plain" as const),
	input: fc.oneof(
		fc.boolean().map((peerOnline): ConnInput => ({ type: "start", peerOnline })),
		fc.boolean().map((online): ConnInput => ({ type: "peer-online", online })),
		fc.string({ maxLength: 4 }).map((reason): ConnInput => ({ type: "path-lost", reason })),
		// Shapes the types forbid but a buggy caller could still produce.
		fc.constantFrom(
			{ type: "signal-received" } as unknown as ConnInput,
			{ type: "no-such-input" } as unknown as ConnInput,
			{ type: "ice-connected", sessionId: 1 } as unknown as ConnInput,
			null as unknown as ConnInput,
		),
	),
});

const recipeArb: fc.Arbitrary<InputRecipe> = fc.oneof(
	{ weight: 1, arbitrary: plainInputArb },
	{
		weight: 3,
		arbitrary: fc.record({
			type: fc.constant("message" as const),
			session: sessionRefArb,
			kind: messageKindArb,
		}),
	},
	{
		weight: 3,
		arbitrary: fc.record({
			type: fc.constant("ice" as const),
			session: sessionRefArb,
			event: fc.constantFrom(
				"description" as const,
				"candidate" as const,
				"connected" as const,
				"failed" as const,
			),
		}),
	},
	{
		weight: 1,
		arbitrary: fc.record({
			type: fc.constant("send-failed" as const),
			session: sessionRefArb,
			notFound: fc.boolean(),
		}),
	},
	{ weight: 2, arbitrary: fc.record({ type: fc.constant("timer" as const), name: timerNameArb }) },
	{
		weight: 4,
		arbitrary: fc.record({
			type: fc.constant("advance" as const),
			freshSessionId: fc.integer({ min: 1, max: 2 ** 40 }),
		}),
	},
);

const LOCAL: PeerEndpoint = { address: "192.0.2.1", port: 40_001, type: "host" };
const REMOTE: PeerEndpoint = { address: "198.51.100.2", port: 40_002, type: "relay" };

/** Plays the engine: holds what the commands set up, and objects to any that don't make sense. */
class CommandTracker {
	readonly openIce = new Set<number>();
	readonly armed = new Set<TimerName>();
	lastIceStarted = 0;
	/** Our offer/answer for the open ICE session went out. */
	descriptionSent = false;
	pathUp = false;

	constructor(private readonly role: "controlling" | "controlled") {}

	apply(commands: ConnCommand[]): void {
		for (const command of commands) {
			switch (command.type) {
				case "ice-start":
					expect(this.openIce.size, "a second ICE session while one is open").toBe(0);
					expect(Number.isSafeInteger(command.sessionId) && command.sessionId > 0).toBe(true);
					expect(command.role).toBe(this.role);
					this.openIce.add(command.sessionId);
					this.descriptionSent = false;
					this.lastIceStarted = command.sessionId;
					break;
				case "ice-remote-description":
				case "ice-remote-candidate":
					expect(this.openIce.has(command.sessionId), `${command.type} on a closed session`).toBe(
						true,
					);
					break;
				case "ice-close":
					expect(this.openIce.delete(command.sessionId), "ice-close of a session not open").toBe(
						true,
					);
					break;
				case "path-up":
					expect(this.pathUp, "path-up over a path that is up").toBe(false);
					expect(this.openIce.has(command.sessionId), "path-up before its ICE agent closed").toBe(
						false,
					);
					expect(command.sendHandshakeFirst).toBe(this.role === "controlling");
					expect(command.remoteWireguardPort).toBeGreaterThan(0);
					this.pathUp = true;
					break;
				case "path-down":
					expect(this.pathUp, "path-down without a path").toBe(true);
					this.pathUp = false;
					break;
				case "set-timer":
					expect(Number.isInteger(command.delayMs) && command.delayMs >= 0).toBe(true);
					this.armed.add(command.name);
					break;
				case "cancel-timer":
					expect(this.armed.delete(command.name), `cancel of unarmed ${command.name}`).toBe(true);
					break;
				case "send-signal": {
					const { message } = command;
					expect(Number.isSafeInteger(message.sessionId) && message.sessionId >= 0).toBe(true);
					const kind = message.kind?.$case;
					if (kind === "offer" || kind === "answer") this.descriptionSent = true;
					if (kind === "offer" || kind === "answer") expect(message.sessionId).toBeGreaterThan(0);
					if (kind === "offer") expect(this.role).toBe("controlling");
					if (kind === "answer" || kind === "offerRequest") expect(this.role).toBe("controlled");
					// Survives the wire unchanged.
					expect(PeerMessage.decode(PeerMessage.encode(message).finish())).toEqual(message);
					break;
				}
			}
		}
	}
}

function resolve(ref: SessionRef, conn: PeerConnection, tracker: CommandTracker): number {
	if (ref === "current") return conn.snapshot().sessionId;
	if (ref === "ice") return tracker.lastIceStarted;
	return ref;
}

function toInput(recipe: InputRecipe, conn: PeerConnection, tracker: CommandTracker): ConnInput {
	switch (recipe.type) {
		case "plain":
			return recipe.input;
		case "message":
			return {
				type: "signal-received",
				message: { sessionId: resolve(recipe.session, conn, tracker), kind: recipe.kind },
			};
		case "send-failed":
			return {
				type: "signal-send-failed",
				sessionId: resolve(recipe.session, conn, tracker),
				notFound: recipe.notFound,
			};
		case "timer":
			return { type: "timer", name: recipe.name };
		case "advance":
			return advance(conn, tracker, recipe.freshSessionId);
		case "ice": {
			const sessionId = resolve(recipe.session, conn, tracker);
			switch (recipe.event) {
				case "description":
					return { type: "ice-local-description", sessionId, sdp: "local-sdp" };
				case "candidate":
					return { type: "ice-local-candidate", sessionId, candidate: "lc", mid: "0" };
				case "connected":
					return { type: "ice-connected", sessionId, local: LOCAL, remote: REMOTE, rttMs: 5 };
				case "failed":
					return { type: "ice-failed", sessionId, reason: "fuzz" };
			}
		}
	}
}

function advance(conn: PeerConnection, tracker: CommandTracker, freshSessionId: number): ConnInput {
	const { state, sessionId } = conn.snapshot();
	const description = { sdp: "sdp", wireguardPort: 51_821, agentVersion: "v" };
	switch (state) {
		case "offering":
			return tracker.descriptionSent
				? {
						type: "signal-received",
						message: { sessionId, kind: { $case: "answer", value: description } },
					}
				: { type: "ice-local-description", sessionId, sdp: "local-sdp" };
		case "answering":
			return { type: "ice-local-description", sessionId, sdp: "local-sdp" };
		case "connecting":
			return { type: "ice-connected", sessionId, local: LOCAL, remote: REMOTE };
		case "waiting-for-peer":
		case "backoff":
			return conn.role === "controlled"
				? {
						type: "signal-received",
						message: { sessionId: freshSessionId, kind: { $case: "offer", value: description } },
					}
				: {
						type: "signal-received",
						message: { sessionId: 0, kind: { $case: "offerRequest", value: { reason: "" } } },
					};
		default:
			return { type: "path-lost", reason: "fuzz" };
	}
}

describe("any input in any state", () => {
	it("property: never throws, and every command makes sense to the engine", () => {
		fc.assert(
			fc.property(
				fc.boolean(),
				fc.integer(),
				fc.array(
					fc.tuple(
						recipeArb,
						fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.constantFrom(-5_000, Number.NaN)),
					),
					{ maxLength: 80 },
				),
				fc.boolean(),
				fc.boolean(),
				(controlling, seed, steps, peerOnlineAtStart, stopAtEnd) => {
					const larger = new Uint8Array(32).fill(9);
					const smaller = new Uint8Array(32).fill(3);
					const conn = new PeerConnection({
						localPublicKey: controlling ? larger : smaller,
						remotePublicKey: controlling ? smaller : larger,
						wireguardPort: 51_820,
						agentVersion: "fuzz",
						random: seededRandom(seed),
					});
					const tracker = new CommandTracker(conn.role);
					let nowMs = 0;
					const feed = (input: ConnInput) => {
						const wasClosed = conn.snapshot().state === "closed";
						// The engine forgets a timer when it fires; a stale firing is the machine's to ignore.
						if (input?.type === "timer") tracker.armed.delete(input.name);
						const commands = conn.handle(input, nowMs);
						if (wasClosed) expect(commands).toEqual([]);
						tracker.apply(commands);
						const snapshot = conn.snapshot();
						expect(snapshot.state === "connected").toBe(tracker.pathUp);
						expect(Object.keys(snapshot.timers).sort()).toEqual([...tracker.armed].sort());
						if (snapshot.state === "connected") expect(tracker.armed.size).toBe(0);
						expect(tracker.openIce.size).toBeLessThanOrEqual(1);
					};
					// Started first, so sequences explore more than "idle".
					feed({ type: "start", peerOnline: peerOnlineAtStart });
					for (const [recipe, delta] of steps) {
						// Mostly forward, sometimes a clock that jumps back or is garbage.
						nowMs = Number.isNaN(delta)
							? Number.NaN
							: Math.max(0, (Number.isNaN(nowMs) ? 0 : nowMs) + delta);
						feed(toInput(recipe, conn, tracker));
					}
					if (stopAtEnd) {
						nowMs = 1e9;
						feed({ type: "stop" });
						expect(conn.snapshot().state).toBe("closed");
						expect(tracker.armed.size).toBe(0);
						expect(tracker.openIce.size).toBe(0);
						expect(tracker.pathUp).toBe(false);
					}
				},
			),
			{ numRuns: 1_000 },
		);
	});
});
