import { EventEmitter } from "node:events";
import { describe, expect, it, vi } from "vitest";
import type { ConnInput } from "../conn/peer-connection.js";
import type { StartSessionOptions } from "../ice/ice-agent.js";
import { ICE_LINGER_MS, type IcePort, IceSessions } from "./ice-sessions.js";

function setup() {
	const emitter = new EventEmitter();
	const started: StartSessionOptions[] = [];
	const closed: string[] = [];
	const ice = {
		on: (event: string, listener: (...args: unknown[]) => void) => emitter.on(event, listener),
		startSession: (o: StartSessionOptions) => started.push(o),
		setRemoteDescription: () => undefined,
		addRemoteCandidate: () => undefined,
		closeSession: async (id: string) => {
			closed.push(id);
		},
	} as unknown as IcePort;
	const delivered: [string, ConnInput][] = [];
	const sessions = new IceSessions({
		ice,
		deliver: (key, input) => delivered.push([key, input]),
		logError: (what, err) => {
			throw new Error(`${what}: ${String(err)}`);
		},
	});
	return { sessions, emitter, started, closed, delivered };
}

const endpoint = (address: string, port: number, type: string) => ({ address, port, type });

describe("IceSessions", () => {
	it("names sessions by peer, keeps the overlay out, and routes the agent's events back", () => {
		const { sessions, emitter, started, delivered } = setup();
		sessions.start("peerA", 3, "controlling", ["stun:stun.example:3478"]);
		expect(started).toEqual([
			{
				sessionId: "peerA#3",
				role: "controlling",
				stunServers: ["stun:stun.example:3478"],
				excludePrefixes: ["100.64.0.0/10", "::/0"],
			},
		]);
		emitter.emit("local-description", { sessionId: "peerA#3", sdp: "v=0", type: "offer" });
		emitter.emit("connected", {
			sessionId: "peerA#3",
			local: endpoint("198.51.100.1", 5000, "srflx"),
			remote: endpoint("203.0.113.9", 6000, "weird"),
			localPort: 40001,
			elapsedMs: 10,
			rttMs: 7,
		});
		emitter.emit("failed", { sessionId: "unknown#1", reason: "x" });
		expect(delivered).toEqual([
			["peerA", { type: "ice-local-description", sessionId: 3, sdp: "v=0" }],
			[
				"peerA",
				{
					type: "ice-connected",
					sessionId: 3,
					local: { address: "198.51.100.1", port: 5000, type: "srflx" },
					remote: { address: "203.0.113.9", port: 6000, type: "host" },
					rttMs: 7,
				},
			],
		]);
		expect(sessions.hasConnected("peerA", 3)).toBe(true);
		// The path goes to WireGuard from the ICE socket's own port, not the srflx one.
		expect(sessions.takeConnected("peerA", 3)).toEqual({ rttMs: 7, socketPort: 40001 });
		expect(sessions.hasConnected("peerA", 3)).toBe(false);
	});

	it("counts attempts, successes and failures per command batch, with the failure's reason", () => {
		const { sessions } = setup();
		sessions.start("p", 1, "controlled", []);
		sessions.close("p", 1, false);
		sessions.endBatch("p", () => "ice failed: timeout");
		sessions.start("p", 2, "controlled", []);
		// A path-up follows its session's close in the same batch: a success.
		sessions.close("p", 2, true);
		sessions.takeConnected("p", 2);
		sessions.endBatch("p", () => "ice failed: timeout");
		expect(sessions.stats("p")).toEqual({
			attempts: 2,
			successes: 1,
			failures: 1,
			lastFailure: "ice failed: timeout",
		});
		sessions.forget("p");
		expect(sessions.stats("p")).toEqual({
			attempts: 0,
			successes: 0,
			failures: 0,
			lastFailure: "",
		});
	});

	it("closes a failed session at once and lets a connected one linger", async () => {
		vi.useFakeTimers();
		try {
			const { sessions, closed } = setup();
			sessions.start("p", 1, "controlling", []);
			sessions.start("p", 2, "controlling", []);
			sessions.close("p", 1, false);
			sessions.close("p", 2, true);
			expect(closed).toEqual(["p#1"]);
			await vi.advanceTimersByTimeAsync(ICE_LINGER_MS);
			expect(closed).toEqual(["p#1", "p#2"]);
		} finally {
			vi.useRealTimers();
		}
	});
});
