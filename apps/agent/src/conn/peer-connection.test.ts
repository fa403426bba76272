import type { PeerMessage } from "@starling/proto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { backoffDelayMs, newSessionId, roleFor } from "./negotiation-math.js";
import { PeerConnection } from "./peer-connection.js";
import { seededRandom } from "./simulated-network.js";
import type { ConnCommand, ConnConfig, PeerEndpoint } from "./types.js";

const LARGER_KEY = new Uint8Array(32).fill(0xf0);
const SMALLER_KEY = new Uint8Array(32).fill(0x0f);
const LOCAL: PeerEndpoint = { address: "192.0.2.1", port: 40_001, type: "srflx" };
const REMOTE: PeerEndpoint = { address: "198.51.100.2", port: 40_002, type: "host" };
/** No jitter, so backoff delays are exact. */
const EXACT: Partial<ConnConfig> = { backoffJitter: 0 };

function controllingSide(config: Partial<ConnConfig> = EXACT, seed = 1): PeerConnection {
	return new PeerConnection({
		localPublicKey: LARGER_KEY,
		remotePublicKey: SMALLER_KEY,
		wireguardPort: 51_820,
		agentVersion: "test-controlling",
		random: seededRandom(seed),
		config,
	});
}

function controlledSide(config: Partial<ConnConfig> = EXACT, seed = 2): PeerConnection {
	return new PeerConnection({
		localPublicKey: SMALLER_KEY,
		remotePublicKey: LARGER_KEY,
		wireguardPort: 51_821,
		agentVersion: "test-controlled",
		random: seededRandom(seed),
		config,
	});
}

const offer = (sessionId: number, sdp = "offer-sdp", wireguardPort = 51_820): PeerMessage => ({
	sessionId,
	senderInstance: 0,
	kind: { $case: "offer", value: { sdp, wireguardPort, agentVersion: "peer" } },
});
const answer = (sessionId: number, sdp = "answer-sdp", wireguardPort = 51_821): PeerMessage => ({
	sessionId,
	senderInstance: 0,
	kind: { $case: "answer", value: { sdp, wireguardPort, agentVersion: "peer" } },
});
const candidate = (sessionId: number, text: string): PeerMessage => ({
	sessionId,
	senderInstance: 0,
	kind: { $case: "candidate", value: { candidate: text, mid: "0" } },
});
const offerRequest = (sessionId: number, reason = "startup"): PeerMessage => ({
	sessionId,
	senderInstance: 0,
	kind: { $case: "offerRequest", value: { reason } },
});
const sessionClosed = (sessionId: number): PeerMessage => ({
	sessionId,
	senderInstance: 0,
	kind: { $case: "closed", value: { reason: "shutting down" } },
});

function sentKinds(commands: ConnCommand[]): string[] {
	return commands.flatMap((command) =>
		command.type === "send-signal"
			? [`${command.message.kind?.$case}/${command.message.sessionId}`]
			: [],
	);
}

function iceStartOf(commands: ConnCommand[]): number {
	const start = commands.find((command) => command.type === "ice-start");
	if (start?.type !== "ice-start") throw new Error(`no ice-start in ${JSON.stringify(commands)}`);
	return start.sessionId;
}

function timerSet(commands: ConnCommand[], name: string): number | undefined {
	const set = commands.find((command) => command.type === "set-timer" && command.name === name);
	return set?.type === "set-timer" ? set.delayMs : undefined;
}

/** Drives the controlling side from start to connected; returns the session. */
function connectControlling(conn: PeerConnection, nowMs = 0): number {
	const sessionId = iceStartOf(conn.handle({ type: "start", peerOnline: true }, nowMs));
	conn.handle({ type: "ice-local-description", sessionId, sdp: "local-offer" }, nowMs + 10);
	conn.handle({ type: "signal-received", message: answer(sessionId) }, nowMs + 50);
	conn.handle({ type: "ice-connected", sessionId, local: LOCAL, remote: REMOTE }, nowMs + 100);
	expect(conn.snapshot().state).toBe("connected");
	return sessionId;
}

/** Drives the controlled side from start to connected on `sessionId`. */
function connectControlled(conn: PeerConnection, sessionId: number, nowMs = 0): void {
	conn.handle({ type: "start", peerOnline: true }, nowMs);
	conn.handle({ type: "signal-received", message: offer(sessionId) }, nowMs + 10);
	conn.handle({ type: "ice-local-description", sessionId, sdp: "local-answer" }, nowMs + 20);
	conn.handle({ type: "ice-connected", sessionId, local: LOCAL, remote: REMOTE }, nowMs + 100);
	expect(conn.snapshot().state).toBe("connected");
}

describe("roles and session ids", () => {
	it("the bytewise-larger key controls, on both sides", () => {
		expect(controllingSide().role).toBe("controlling");
		expect(controlledSide().role).toBe("controlled");
		fc.assert(
			fc.property(
				fc.uint8Array({ minLength: 32, maxLength: 32 }),
				fc.uint8Array({ minLength: 32, maxLength: 32 }),
				(left, right) => {
					fc.pre(left.some((byte, index) => byte !== right[index]));
					expect(new Set([roleFor(left, right), roleFor(right, left)])).toEqual(
						new Set(["controlling", "controlled"]),
					);
				},
			),
		);
	});

	it("exactly one side offers: the other asks for an offer", () => {
		const offering = controllingSide().handle({ type: "start", peerOnline: true }, 0);
		const asking = controlledSide().handle({ type: "start", peerOnline: true }, 0);
		expect(offering.map((command) => command.type)).toEqual(["ice-start", "set-timer"]);
		expect(offering[0]).toMatchObject({ type: "ice-start", role: "controlling" });
		expect(sentKinds(asking)).toEqual(["offerRequest/0"]);
		expect(asking.some((command) => command.type === "ice-start")).toBe(false);
	});

	it("session ids are random, non-zero, 53-bit safe and fresh, even from a broken random", () => {
		fc.assert(
			fc.property(
				fc.integer(),
				fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 5 }),
				(seed, avoid) => {
					const id = newSessionId(seededRandom(seed), avoid);
					expect(Number.isSafeInteger(id) && id > 0).toBe(true);
					expect(avoid).not.toContain(id);
				},
			),
		);
		for (const broken of [() => 0, () => Number.NaN, () => 1, () => -3]) {
			const first = newSessionId(broken, []);
			const second = newSessionId(broken, [first]);
			expect(first).toBeGreaterThan(0);
			expect(second).not.toBe(first);
			expect(Number.isSafeInteger(second)).toBe(true);
		}
		expect(newSessionId(() => 0.999_999_999_999, [])).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER);
	});

	it("the controlled side adopts the offer's session", () => {
		const conn = controlledSide();
		connectControlled(conn, 4242);
		expect(conn.snapshot()).toMatchObject({ sessionId: 4242, state: "connected" });
	});
});

describe("controlling side", () => {
	it("offers, applies the answer, and brings the path up on ICE success", () => {
		const conn = controllingSide();
		const start = conn.handle({ type: "start", peerOnline: true }, 0);
		const sessionId = iceStartOf(start);
		expect(timerSet(start, "offer-timeout")).toBe(10_000);
		expect(conn.snapshot().state).toBe("offering");

		const described = conn.handle({ type: "ice-local-description", sessionId, sdp: "local" }, 5);
		expect(described).toEqual([
			{
				type: "send-signal",
				message: {
					senderInstance: conn.instance,
					sessionId,
					kind: {
						$case: "offer",
						value: { sdp: "local", wireguardPort: 51_820, agentVersion: "test-controlling" },
					},
				},
			},
		]);
		const answered = conn.handle({ type: "signal-received", message: answer(sessionId) }, 50);
		expect(answered).toEqual([
			{ type: "cancel-timer", name: "offer-timeout" },
			{ type: "ice-remote-description", sessionId, sdp: "answer-sdp", kind: "answer" },
			{ type: "set-timer", name: "connect-timeout", delayMs: 30_000 },
		]);
		expect(conn.snapshot().state).toBe("connecting");

		const connected = conn.handle(
			{ type: "ice-connected", sessionId, local: LOCAL, remote: REMOTE, rttMs: 12 },
			300,
		);
		expect(connected).toEqual([
			{ type: "cancel-timer", name: "connect-timeout" },
			{ type: "ice-close", sessionId },
			{
				type: "path-up",
				sessionId,
				local: LOCAL,
				remote: REMOTE,
				remoteWireguardPort: 51_821,
				sendHandshakeFirst: true,
			},
		]);
		expect(conn.snapshot()).toMatchObject({
			state: "connected",
			sessionId,
			connectedSince: 300,
			attempts: 0,
			path: { local: LOCAL, remote: REMOTE, rttMs: 12 },
			timers: {},
		});
	});

	it("offer lost: retries with a new session after the offer timeout and a backoff", () => {
		const conn = controllingSide();
		const first = iceStartOf(conn.handle({ type: "start", peerOnline: true }, 0));
		conn.handle({ type: "ice-local-description", sessionId: first, sdp: "local" }, 5);
		const timedOut = conn.handle({ type: "timer", name: "offer-timeout" }, 10_000);
		expect(timedOut).toEqual([
			{ type: "ice-close", sessionId: first },
			{ type: "set-timer", name: "retry", delayMs: 1_000 },
		]);
		expect(conn.snapshot()).toMatchObject({
			state: "backoff",
			attempts: 1,
			lastFailure: "no answer within 10 s",
		});
		const second = iceStartOf(conn.handle({ type: "timer", name: "retry" }, 11_000));
		expect(second).not.toBe(first);
		expect(conn.snapshot()).toMatchObject({ state: "offering", sessionId: second });
	});

	it("answer late: an answer for a superseded session is ignored", () => {
		const conn = controllingSide();
		const first = iceStartOf(conn.handle({ type: "start", peerOnline: true }, 0));
		conn.handle({ type: "ice-local-description", sessionId: first, sdp: "local" }, 5);
		conn.handle({ type: "timer", name: "offer-timeout" }, 10_000);
		const second = iceStartOf(conn.handle({ type: "timer", name: "retry" }, 11_000));
		conn.handle({ type: "ice-local-description", sessionId: second, sdp: "local-2" }, 11_005);

		expect(conn.handle({ type: "signal-received", message: answer(first) }, 11_500)).toEqual([]);
		expect(
			conn.handle({ type: "signal-received", message: candidate(first, "c") }, 11_501),
		).toEqual([]);
		expect(conn.snapshot()).toMatchObject({ state: "offering", sessionId: second });

		const current = conn.handle({ type: "signal-received", message: answer(second) }, 11_600);
		expect(current).toContainEqual({
			type: "ice-remote-description",
			sessionId: second,
			sdp: "answer-sdp",
			kind: "answer",
		});
		// A duplicate of the answer changes nothing.
		expect(conn.handle({ type: "signal-received", message: answer(second) }, 11_700)).toEqual([]);
	});

	it("reports a missing local description separately from a missing answer", () => {
		const conn = controllingSide();
		conn.handle({ type: "start", peerOnline: true }, 0);
		conn.handle({ type: "timer", name: "offer-timeout" }, 10_000);
		expect(conn.snapshot().lastFailure).toBe("no local ICE description within 10 s");
	});

	it("holds remote candidates until the answer and local ones until the offer is out", () => {
		const conn = controllingSide();
		const sessionId = iceStartOf(conn.handle({ type: "start", peerOnline: true }, 0));
		// Our agent trickles a candidate before its description: the peer could not use it yet.
		expect(
			conn.handle({ type: "ice-local-candidate", sessionId, candidate: "local-1", mid: "0" }, 1),
		).toEqual([]);
		const described = conn.handle({ type: "ice-local-description", sessionId, sdp: "local" }, 2);
		expect(sentKinds(described)).toEqual([`offer/${sessionId}`, `candidate/${sessionId}`]);

		expect(
			conn.handle({ type: "signal-received", message: candidate(sessionId, "r1") }, 3),
		).toEqual([]);
		expect(
			conn.handle({ type: "signal-received", message: candidate(sessionId, "r2") }, 4),
		).toEqual([]);
		const answered = conn.handle({ type: "signal-received", message: answer(sessionId) }, 5);
		expect(answered.filter((command) => command.type.startsWith("ice-"))).toEqual([
			{ type: "ice-remote-description", sessionId, sdp: "answer-sdp", kind: "answer" },
			{ type: "ice-remote-candidate", sessionId, candidate: "r1", mid: "0" },
			{ type: "ice-remote-candidate", sessionId, candidate: "r2", mid: "0" },
		]);
		// After the description, candidates go straight through; duplicates don't.
		expect(
			conn.handle({ type: "signal-received", message: candidate(sessionId, "r3") }, 6),
		).toEqual([{ type: "ice-remote-candidate", sessionId, candidate: "r3", mid: "0" }]);
		expect(
			conn.handle({ type: "signal-received", message: candidate(sessionId, "r3") }, 7),
		).toEqual([]);
	});

	it("ICE failure backs off 1 s, 2 s, 4 s ... capped at 60 s, and success resets it", () => {
		const conn = controllingSide();
		let sessionId = iceStartOf(conn.handle({ type: "start", peerOnline: true }, 0));
		let nowMs = 0;
		const delays: number[] = [];
		const failOnce = () => {
			conn.handle({ type: "ice-local-description", sessionId, sdp: "local" }, nowMs + 1);
			conn.handle({ type: "signal-received", message: answer(sessionId) }, nowMs + 2);
			const failed = conn.handle({ type: "ice-failed", sessionId, reason: "timeout" }, nowMs + 3);
			expect(failed[0]).toEqual({ type: "ice-close", sessionId });
			const delay = timerSet(failed, "retry") ?? -1;
			delays.push(delay);
			nowMs += 3 + delay;
			sessionId = iceStartOf(conn.handle({ type: "timer", name: "retry" }, nowMs));
		};
		for (let failure = 0; failure < 8; failure++) failOnce();
		expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
		expect(conn.snapshot()).toMatchObject({ attempts: 8, lastFailure: "ice failed: timeout" });

		conn.handle({ type: "ice-local-description", sessionId, sdp: "local" }, nowMs + 1);
		conn.handle({ type: "signal-received", message: answer(sessionId) }, nowMs + 2);
		conn.handle({ type: "ice-connected", sessionId, local: LOCAL, remote: REMOTE }, nowMs + 3);
		expect(conn.snapshot().attempts).toBe(0);
		// Lost after a stable while: renegotiate at once, and the next failure waits 1 s again.
		nowMs += 60_000;
		sessionId = iceStartOf(conn.handle({ type: "path-lost", reason: "stale" }, nowMs));
		delays.length = 0;
		failOnce();
		expect(delays).toEqual([1_000]);
	});

	it("jitter takes at most its fraction off each delay", () => {
		fc.assert(
			fc.property(
				fc.nat(20),
				fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
				(attempt, draw) => {
					const nominal = Math.min(60_000, 1_000 * 2 ** attempt);
					const delay = backoffDelayMs(attempt, 1_000, 60_000, 0.2, () => draw);
					expect(delay).toBeLessThanOrEqual(nominal);
					expect(delay).toBeGreaterThanOrEqual(Math.floor(nominal * 0.8));
				},
			),
		);
	});

	it("does not retry while the peer is offline, and starts promptly when it returns", () => {
		const conn = controllingSide();
		const first = iceStartOf(conn.handle({ type: "start", peerOnline: true }, 0));
		conn.handle({ type: "ice-local-description", sessionId: first, sdp: "local" }, 1);
		conn.handle({ type: "timer", name: "offer-timeout" }, 10_000);
		// Offline during the backoff: the retry is dropped, and a late firing does nothing.
		expect(conn.handle({ type: "peer-online", online: false }, 10_500)).toEqual([
			{ type: "cancel-timer", name: "retry" },
		]);
		expect(conn.handle({ type: "timer", name: "retry" }, 11_000)).toEqual([]);
		expect(conn.snapshot()).toMatchObject({
			state: "waiting-for-peer",
			lastFailure: "peer offline",
			timers: {},
		});
		const back = conn.handle({ type: "peer-online", online: true }, 500_000);
		expect(iceStartOf(back)).not.toBe(first);
		expect(conn.snapshot()).toMatchObject({ state: "offering", attempts: 0 });
	});

	it("an attempt that fails while the peer is offline waits instead of backing off", () => {
		const conn = controllingSide();
		const sessionId = iceStartOf(conn.handle({ type: "start", peerOnline: true }, 0));
		conn.handle({ type: "peer-online", online: false }, 100);
		const failed = conn.handle({ type: "ice-failed", sessionId, reason: "timeout" }, 200);
		expect(failed).toEqual([
			{ type: "ice-close", sessionId },
			{ type: "cancel-timer", name: "offer-timeout" },
		]);
		expect(conn.snapshot()).toMatchObject({ state: "waiting-for-peer", timers: {} });
	});

	it("starting with the peer offline waits; an OfferRequest from it starts at once", () => {
		const conn = controllingSide();
		expect(conn.handle({ type: "start", peerOnline: false }, 0)).toEqual([]);
		expect(conn.snapshot()).toMatchObject({
			state: "waiting-for-peer",
			lastFailure: "peer offline",
		});
		const asked = conn.handle({ type: "signal-received", message: offerRequest(0) }, 5_000);
		expect(iceStartOf(asked)).toBeGreaterThan(0);
		expect(conn.snapshot()).toMatchObject({ state: "offering", peerOnline: true });
	});

	it("answers an OfferRequest with a new session even when connected (the peer restarted)", () => {
		const conn = controllingSide();
		const old = connectControlling(conn);
		const asked = conn.handle(
			{ type: "signal-received", message: offerRequest(0, "startup") },
			60_000,
		);
		expect(asked[0]).toEqual({ type: "path-down", reason: "peer asked for an offer (startup)" });
		const fresh = iceStartOf(asked);
		expect(fresh).not.toBe(old);
		expect(conn.snapshot()).toMatchObject({ state: "offering", sessionId: fresh });
	});

	it("re-sends the offer in flight when the request crossed it, instead of a new session", () => {
		const conn = controllingSide();
		const sessionId = iceStartOf(conn.handle({ type: "start", peerOnline: true }, 0));
		conn.handle({ type: "ice-local-description", sessionId, sdp: "local" }, 5);
		conn.handle({ type: "ice-local-candidate", sessionId, candidate: "c1", mid: "0" }, 6);
		// Within a second of sending it: probably crossed, nothing to do.
		expect(conn.handle({ type: "signal-received", message: offerRequest(0) }, 100)).toEqual([]);
		const later = conn.handle({ type: "signal-received", message: offerRequest(0) }, 5_000);
		expect(sentKinds(later)).toEqual([`offer/${sessionId}`, `candidate/${sessionId}`]);
		expect(later.some((command) => command.type === "ice-start")).toBe(false);
		// A request naming our session means the peer gave up on it: new session.
		const gaveUp = conn.handle(
			{ type: "signal-received", message: offerRequest(sessionId) },
			6_000,
		);
		expect(iceStartOf(gaveUp)).not.toBe(sessionId);
	});

	it("does not let a chatty peer make it spin sessions", () => {
		const conn = controllingSide();
		const first = connectControlling(conn);
		const second = iceStartOf(
			conn.handle({ type: "signal-received", message: offerRequest(first) }, 60_000),
		);
		const tooSoon = conn.handle({ type: "signal-received", message: offerRequest(second) }, 60_200);
		expect(tooSoon.some((command) => command.type === "ice-start")).toBe(false);
		expect(timerSet(tooSoon, "retry")).toBe(800);
		expect(iceStartOf(conn.handle({ type: "timer", name: "retry" }, 61_000))).not.toBe(second);
	});

	it("ignores an offer from the peer and says why", () => {
		const conn = controllingSide();
		const sessionId = iceStartOf(conn.handle({ type: "start", peerOnline: true }, 0));
		expect(conn.handle({ type: "signal-received", message: offer(777) }, 10)).toEqual([]);
		expect(conn.snapshot()).toMatchObject({ state: "offering", sessionId });
		expect(conn.snapshot().lastWarning).toMatch(/ignored an offer/);
	});

	it("backs off when signal says the peer is not connected, instead of resending", () => {
		const conn = controllingSide();
		const sessionId = iceStartOf(conn.handle({ type: "start", peerOnline: true }, 0));
		conn.handle({ type: "ice-local-description", sessionId, sdp: "local" }, 5);
		const failed = conn.handle({ type: "signal-send-failed", sessionId, notFound: true }, 40);
		expect(sentKinds(failed)).toEqual([]);
		expect(failed).toContainEqual({ type: "ice-close", sessionId });
		expect(timerSet(failed, "retry")).toBe(1_000);
		expect(conn.snapshot()).toMatchObject({
			state: "backoff",
			lastFailure: "peer not connected to signal",
		});
		// Failures of the session we already gave up on add nothing.
		expect(conn.handle({ type: "signal-send-failed", sessionId, notFound: true }, 41)).toEqual([]);
	});

	it("ignores a send failure once the peer has spoken in this attempt (it was an older send)", () => {
		const conn = controllingSide();
		const sessionId = iceStartOf(conn.handle({ type: "start", peerOnline: true }, 0));
		conn.handle({ type: "ice-local-description", sessionId, sdp: "local" }, 5);
		// The peer connects to signal and asks; the notFound for our first offer comes after.
		conn.handle({ type: "signal-received", message: offerRequest(0) }, 1_100);
		expect(conn.handle({ type: "signal-send-failed", sessionId, notFound: true }, 1_200)).toEqual(
			[],
		);
		expect(conn.snapshot().state).toBe("offering");
	});

	it("path lost: path-down, then a new offer at once", () => {
		const conn = controllingSide();
		const old = connectControlling(conn);
		const lost = conn.handle({ type: "path-lost", reason: "no handshake for 3 min" }, 200_000);
		expect(lost[0]).toEqual({ type: "path-down", reason: "path lost: no handshake for 3 min" });
		expect(iceStartOf(lost)).not.toBe(old);
		expect(conn.snapshot()).toMatchObject({
			state: "offering",
			lastFailure: "path lost: no handshake for 3 min",
		});
	});

	it("a path lost soon after path-up counts as a failure, so it can't loop at full speed", () => {
		const conn = controllingSide();
		connectControlling(conn);
		const lost = conn.handle({ type: "path-lost", reason: "stale" }, 5_000);
		expect(lost.map((command) => command.type)).toEqual(["path-down", "set-timer"]);
		expect(conn.snapshot()).toMatchObject({ state: "backoff", attempts: 1 });
	});

	it("ICE success before the answer waits for the answer (it carries the WireGuard port)", () => {
		const conn = controllingSide();
		const sessionId = iceStartOf(conn.handle({ type: "start", peerOnline: true }, 0));
		conn.handle({ type: "ice-local-description", sessionId, sdp: "local" }, 5);
		expect(
			conn.handle({ type: "ice-connected", sessionId, local: LOCAL, remote: REMOTE }, 10),
		).toEqual([]);
		const answered = conn.handle({ type: "signal-received", message: answer(sessionId) }, 20);
		expect(answered.at(-1)).toMatchObject({ type: "path-up", remoteWireguardPort: 51_821 });
		expect(conn.snapshot().state).toBe("connected");
	});
});

describe("controlled side", () => {
	it("asks for an offer, answers it and brings the path up without sending the first handshake", () => {
		const conn = controlledSide();
		const started = conn.handle({ type: "start", peerOnline: true }, 0);
		expect(started).toEqual([
			{
				type: "send-signal",
				message: {
					sessionId: 0,
					senderInstance: conn.instance,
					kind: { $case: "offerRequest", value: { reason: "startup" } },
				},
			},
			{ type: "set-timer", name: "offer-request", delayMs: 2_000 },
		]);
		expect(conn.snapshot().state).toBe("waiting-for-peer");

		const offered = conn.handle({ type: "signal-received", message: offer(99, "remote") }, 30);
		expect(offered).toEqual([
			{ type: "cancel-timer", name: "offer-request" },
			{ type: "ice-start", sessionId: 99, role: "controlled" },
			{ type: "ice-remote-description", sessionId: 99, sdp: "remote", kind: "offer" },
			{ type: "set-timer", name: "connect-timeout", delayMs: 30_000 },
		]);
		expect(conn.snapshot()).toMatchObject({ state: "answering", sessionId: 99 });
		const described = conn.handle(
			{ type: "ice-local-description", sessionId: 99, sdp: "mine" },
			40,
		);
		expect(described).toEqual([
			{
				type: "send-signal",
				message: {
					senderInstance: conn.instance,
					sessionId: 99,
					kind: {
						$case: "answer",
						value: { sdp: "mine", wireguardPort: 51_821, agentVersion: "test-controlled" },
					},
				},
			},
		]);
		expect(conn.snapshot().state).toBe("connecting");
		const connected = conn.handle(
			{ type: "ice-connected", sessionId: 99, local: LOCAL, remote: REMOTE },
			200,
		);
		expect(connected.at(-1)).toEqual({
			type: "path-up",
			sessionId: 99,
			local: LOCAL,
			remote: REMOTE,
			remoteWireguardPort: 51_820,
			sendHandshakeFirst: false,
		});
	});

	it("holds candidates that overtake their offer and applies them after it", () => {
		const conn = controlledSide();
		conn.handle({ type: "start", peerOnline: true }, 0);
		expect(conn.handle({ type: "signal-received", message: candidate(7, "early-1") }, 1)).toEqual(
			[],
		);
		expect(conn.handle({ type: "signal-received", message: candidate(7, "early-2") }, 2)).toEqual(
			[],
		);
		const offered = conn.handle({ type: "signal-received", message: offer(7) }, 3);
		expect(offered.filter((command) => command.type.startsWith("ice-"))).toEqual([
			{ type: "ice-start", sessionId: 7, role: "controlled" },
			{ type: "ice-remote-description", sessionId: 7, sdp: "offer-sdp", kind: "offer" },
			{ type: "ice-remote-candidate", sessionId: 7, candidate: "early-1", mid: "0" },
			{ type: "ice-remote-candidate", sessionId: 7, candidate: "early-2", mid: "0" },
		]);
		// Local candidates wait for the answer to go out.
		expect(
			conn.handle({ type: "ice-local-candidate", sessionId: 7, candidate: "mine", mid: "0" }, 4),
		).toEqual([]);
		const described = conn.handle({ type: "ice-local-description", sessionId: 7, sdp: "a" }, 5);
		expect(sentKinds(described)).toEqual(["answer/7", "candidate/7"]);
	});

	it("a new offer supersedes everything, even a working path (the controlling peer restarted)", () => {
		const conn = controlledSide();
		connectControlled(conn, 1_000);
		const superseding = conn.handle({ type: "signal-received", message: offer(2_000) }, 60_000);
		expect(superseding[0]).toEqual({ type: "path-down", reason: "peer started a new session" });
		expect(superseding).toContainEqual({ type: "ice-start", sessionId: 2_000, role: "controlled" });
		expect(conn.snapshot()).toMatchObject({ state: "answering", sessionId: 2_000 });
		// The old session's late offer and candidates are ignored.
		expect(conn.handle({ type: "signal-received", message: offer(1_000) }, 60_100)).toEqual([]);
		expect(
			conn.handle({ type: "signal-received", message: candidate(1_000, "x") }, 60_101),
		).toEqual([]);
	});

	it("a newer offer mid-negotiation closes the older ICE session first", () => {
		const conn = controlledSide();
		conn.handle({ type: "start", peerOnline: true }, 0);
		conn.handle({ type: "signal-received", message: offer(5) }, 10);
		const newer = conn.handle({ type: "signal-received", message: offer(6) }, 20);
		expect(newer.slice(0, 2)).toEqual([
			{ type: "ice-close", sessionId: 5 },
			{ type: "cancel-timer", name: "connect-timeout" },
		]);
		expect(newer).toContainEqual({ type: "ice-start", sessionId: 6, role: "controlled" });
	});

	it("re-sends its answer when the same offer comes again (the answer may be lost)", () => {
		const conn = controlledSide();
		conn.handle({ type: "start", peerOnline: true }, 0);
		conn.handle({ type: "signal-received", message: offer(5) }, 10);
		conn.handle({ type: "ice-local-description", sessionId: 5, sdp: "mine" }, 20);
		conn.handle({ type: "ice-local-candidate", sessionId: 5, candidate: "c", mid: "0" }, 21);
		expect(conn.handle({ type: "signal-received", message: offer(5) }, 30)).toEqual([]);
		const again = conn.handle({ type: "signal-received", message: offer(5) }, 2_000);
		expect(sentKinds(again)).toEqual(["answer/5", "candidate/5"]);
		expect(again.some((command) => command.type === "ice-start")).toBe(false);
	});

	it("rate-limits OfferRequests: 1 per second at most, re-sent at 2, 4, 8 ... 60 s while unanswered", () => {
		const conn = controlledSide();
		const sends: number[] = [];
		const feed = (commands: ConnCommand[], nowMs: number) => {
			if (sentKinds(commands).some((kind) => kind.startsWith("offerRequest"))) sends.push(nowMs);
			return commands;
		};
		feed(conn.handle({ type: "start", peerOnline: true }, 0), 0);
		// Offline and back at once: a new need, but within the second it has to wait.
		feed(conn.handle({ type: "peer-online", online: false }, 100), 100);
		const back = feed(conn.handle({ type: "peer-online", online: true }, 200), 200);
		expect(timerSet(back, "offer-request")).toBe(800);
		feed(conn.handle({ type: "timer", name: "offer-request" }, 1_000), 1_000);
		expect(sends).toEqual([0, 1_000]);
		// Unanswered: re-sent with growing gaps.
		let nowMs = 1_000;
		const gaps: number[] = [];
		for (let resend = 0; resend < 7; resend++) {
			const gap = conn.snapshot().timers["offer-request"];
			if (gap === undefined) throw new Error("no re-send armed");
			gaps.push(gap - nowMs);
			nowMs = gap;
			feed(conn.handle({ type: "timer", name: "offer-request" }, nowMs), nowMs);
		}
		expect(gaps).toEqual([2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
		expect(sends).toHaveLength(9);
		// Any burst of triggers still sends at most one per second.
		const before = sends.length;
		for (let burst = 0; burst < 20; burst++) {
			feed(
				conn.handle({ type: "peer-online", online: burst % 2 === 0 }, nowMs + burst),
				nowMs + burst,
			);
		}
		expect(sends.length - before).toBeLessThanOrEqual(1);
	});

	it("ICE failure: backoff, then an OfferRequest naming the session it gave up", () => {
		const conn = controlledSide();
		conn.handle({ type: "start", peerOnline: true }, 0);
		conn.handle({ type: "signal-received", message: offer(5) }, 10);
		conn.handle({ type: "ice-local-description", sessionId: 5, sdp: "mine" }, 20);
		const failed = conn.handle({ type: "ice-failed", sessionId: 5, reason: "timeout" }, 5_000);
		expect(failed[0]).toEqual({ type: "ice-close", sessionId: 5 });
		expect(timerSet(failed, "retry")).toBe(1_000);
		expect(conn.snapshot()).toMatchObject({ state: "backoff", lastFailure: "ice failed: timeout" });
		const retried = conn.handle({ type: "timer", name: "retry" }, 6_000);
		expect(sentKinds(retried)).toEqual(["offerRequest/5"]);
		// A new offer is taken in any waiting state.
		expect(iceStartOf(conn.handle({ type: "signal-received", message: offer(6) }, 6_100))).toBe(6);
	});

	it("path lost: path-down, then an OfferRequest", () => {
		const conn = controlledSide();
		connectControlled(conn, 5);
		const lost = conn.handle({ type: "path-lost", reason: "stale" }, 100_000);
		expect(lost[0]).toEqual({ type: "path-down", reason: "path lost: stale" });
		expect(sentKinds(lost)).toEqual(["offerRequest/5"]);
	});

	it("ignores answers and OfferRequests, which only the controlling side may take", () => {
		const conn = controlledSide();
		conn.handle({ type: "start", peerOnline: true }, 0);
		expect(conn.handle({ type: "signal-received", message: answer(3) }, 1)).toEqual([]);
		expect(conn.handle({ type: "signal-received", message: offerRequest(3) }, 2)).toEqual([]);
		expect(conn.snapshot().lastWarning).toMatch(/OfferRequest/);
	});

	it("does not ask while the peer is offline", () => {
		const conn = controlledSide();
		expect(conn.handle({ type: "start", peerOnline: false }, 0)).toEqual([]);
		expect(sentKinds(conn.handle({ type: "peer-online", online: true }, 10_000))).toEqual([
			"offerRequest/0",
		]);
	});
});

describe("going away", () => {
	it("stop closes ICE, brings the path down, cancels timers, tells the peer, then ignores everything", () => {
		const conn = controllingSide();
		const sessionId = iceStartOf(conn.handle({ type: "start", peerOnline: true }, 0));
		const stopped = conn.handle({ type: "stop" }, 10);
		expect(stopped).toEqual([
			{ type: "ice-close", sessionId },
			{ type: "cancel-timer", name: "offer-timeout" },
			{
				type: "send-signal",
				message: {
					senderInstance: conn.instance,
					sessionId,
					kind: { $case: "closed", value: { reason: "peer connection closed" } },
				},
			},
		]);
		expect(conn.snapshot()).toMatchObject({ state: "closed", timers: {} });
		expect(conn.handle({ type: "stop" }, 20)).toEqual([]);
		expect(conn.handle({ type: "start", peerOnline: true }, 30)).toEqual([]);
		expect(conn.handle({ type: "signal-received", message: offerRequest(0) }, 40)).toEqual([]);
		expect(conn.handle({ type: "timer", name: "offer-timeout" }, 50)).toEqual([]);
	});

	it("stop while connected brings the path down", () => {
		const conn = controlledSide();
		connectControlled(conn, 11);
		expect(conn.handle({ type: "stop", reason: "peer removed" }, 1_000)).toEqual([
			{ type: "path-down", reason: "peer removed" },
			{
				type: "send-signal",
				message: {
					sessionId: 11,
					senderInstance: conn.instance,
					kind: { $case: "closed", value: { reason: "peer removed" } },
				},
			},
		]);
	});

	it("stop before start just closes", () => {
		const conn = controllingSide();
		expect(conn.handle({ type: "stop" }, 0)).toEqual([]);
		expect(conn.snapshot().state).toBe("closed");
	});

	it("the peer's SessionClosed: path down, nothing scheduled until it is back", () => {
		const conn = controllingSide();
		const sessionId = connectControlling(conn);
		const closed = conn.handle(
			{ type: "signal-received", message: sessionClosed(sessionId) },
			1_000,
		);
		expect(closed).toEqual([
			{ type: "path-down", reason: "peer closed the session (shutting down)" },
		]);
		expect(conn.snapshot()).toMatchObject({
			state: "waiting-for-peer",
			timers: {},
			peerOnline: false,
		});
		// A close for another session (an older run of the peer) is not about us.
		const other = controlledSide();
		connectControlled(other, 8);
		expect(other.handle({ type: "signal-received", message: sessionClosed(7) }, 1_000)).toEqual([]);
		// The peer restarted: its OfferRequest brings us back at once.
		const back = conn.handle({ type: "signal-received", message: offerRequest(0) }, 30_000);
		expect(iceStartOf(back)).not.toBe(sessionId);
	});

	it("management saying the peer is offline leaves a working path alone", () => {
		const conn = controllingSide();
		connectControlling(conn);
		expect(conn.handle({ type: "peer-online", online: false }, 1_000)).toEqual([]);
		expect(conn.snapshot().state).toBe("connected");
		// When that path then dies, it waits for the peer instead of retrying.
		const lost = conn.handle({ type: "path-lost", reason: "stale" }, 100_000);
		expect(lost.map((command) => command.type)).toEqual(["path-down"]);
		expect(conn.snapshot()).toMatchObject({
			state: "waiting-for-peer",
			lastFailure: "peer offline",
		});
	});
});

describe("the peer's instance (its WireGuard peer for us)", () => {
	const from = (senderInstance: number, message: PeerMessage): PeerMessage => ({
		...message,
		senderInstance,
	});
	const staleOf = (commands: ConnCommand[]) =>
		commands.filter((command) => command.type === "wireguard-session-stale");

	it("every message carries this side's instance, one random id per PeerConnection", () => {
		const conn = controllingSide();
		const other = controllingSide(EXACT, 9);
		expect(conn.instance).toBeGreaterThan(0);
		expect(Number.isSafeInteger(conn.instance)).toBe(true);
		expect(other.instance).not.toBe(conn.instance);
		const commands = conn.handle({ type: "start", peerOnline: true }, 0);
		const sessionId = iceStartOf(commands);
		const sent = conn.handle({ type: "ice-local-description", sessionId, sdp: "o" }, 10);
		const messages = sent.flatMap((c) => (c.type === "send-signal" ? [c.message] : []));
		expect(messages.length).toBeGreaterThan(0);
		for (const message of messages) expect(message.senderInstance).toBe(conn.instance);
	});

	it("the controlling side: a restarted peer's OfferRequest makes our WireGuard session stale, once", () => {
		const conn = controllingSide();
		conn.handle({ type: "start", peerOnline: true }, 0);
		const sessionId = conn.snapshot().sessionId;
		conn.handle({ type: "ice-local-description", sessionId, sdp: "o" }, 10);
		// The first instance we hear of: our WireGuard peer has only known that one.
		expect(
			staleOf(conn.handle({ type: "signal-received", message: from(111, answer(sessionId)) }, 50)),
		).toEqual([]);
		conn.handle({ type: "ice-connected", sessionId, local: LOCAL, remote: REMOTE }, 100);
		expect(conn.snapshot().state).toBe("connected");
		const restarted = conn.handle(
			{ type: "signal-received", message: from(222, offerRequest(0, "startup")) },
			60_000,
		);
		expect(staleOf(restarted)).toEqual([{ type: "wireguard-session-stale", peerInstance: 222 }]);
		// Told before the path goes down and the new session starts.
		expect(restarted[0]?.type).toBe("wireguard-session-stale");
		expect(iceStartOf(restarted)).not.toBe(sessionId);
		// More messages of the new instance, a late one of the old, and an older agent's (0): nothing.
		const fresh = conn.snapshot().sessionId;
		expect(
			staleOf(
				conn.handle({ type: "signal-received", message: from(222, candidate(fresh, "c")) }, 60_010),
			),
		).toEqual([]);
		expect(
			staleOf(
				conn.handle(
					{ type: "signal-received", message: from(111, candidate(sessionId, "x")) },
					60_020,
				),
			),
		).toEqual([]);
		expect(
			staleOf(
				conn.handle({ type: "signal-received", message: from(0, candidate(fresh, "y")) }, 60_030),
			),
		).toEqual([]);
	});

	it("the controlled side: an offer from a restarted controlling peer makes it stale; a renegotiation does not", () => {
		const conn = controlledSide();
		conn.handle({ type: "start", peerOnline: true }, 0);
		conn.handle({ type: "signal-received", message: from(7, offer(1_000)) }, 10);
		conn.handle({ type: "ice-local-description", sessionId: 1_000, sdp: "a" }, 20);
		conn.handle({ type: "ice-connected", sessionId: 1_000, local: LOCAL, remote: REMOTE }, 100);
		// Same instance, new session (the peer renegotiated after a path loss): the session is fine.
		expect(
			staleOf(conn.handle({ type: "signal-received", message: from(7, offer(2_000)) }, 30_000)),
		).toEqual([]);
		const restarted = conn.handle(
			{ type: "signal-received", message: from(8, offer(3_000)) },
			60_000,
		);
		expect(staleOf(restarted)).toEqual([{ type: "wireguard-session-stale", peerInstance: 8 }]);
		expect(restarted).toContainEqual({ type: "ice-start", sessionId: 3_000, role: "controlled" });
	});

	it("a late `closed` of the old instance, seen first by a new PeerConnection, does not count as a restart", () => {
		const conn = controlledSide();
		conn.handle({ type: "start", peerOnline: true }, 0);
		expect(
			staleOf(conn.handle({ type: "signal-received", message: from(5, sessionClosed(900)) }, 5)),
		).toEqual([]);
		expect(
			staleOf(conn.handle({ type: "signal-received", message: from(6, offer(1_000)) }, 10)),
		).toEqual([]);
	});

	it("instances that are not session-id shaped are ignored", () => {
		const conn = controlledSide();
		conn.handle({ type: "start", peerOnline: true }, 0);
		conn.handle({ type: "signal-received", message: from(7, offer(1_000)) }, 10);
		for (const odd of [-1, 1.5, Number.NaN, 2 ** 60]) {
			expect(
				staleOf(conn.handle({ type: "signal-received", message: from(odd, offer(1_000)) }, 20)),
			).toEqual([]);
		}
	});
});
