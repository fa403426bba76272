import { describe, expect, it } from "vitest";
import { parseDaemonToWorkerMessage, parseWorkerToDaemonMessage } from "./protocol.js";

describe("parseDaemonToWorkerMessage", () => {
	const start = {
		type: "start",
		sessionId: "s1",
		role: "controlling",
		stunServers: ["stun:198.18.0.1:3478"],
		excludePrefixes: ["100.64.0.0/10"],
		timeoutMs: 8000,
	};

	it("accepts well-formed messages and copies only known fields", () => {
		expect(parseDaemonToWorkerMessage({ ...start, extra: 1 })).toEqual(start);
		expect(
			parseDaemonToWorkerMessage({ ...start, portRange: { begin: 40000, end: 40100 } }),
		).toEqual({
			...start,
			portRange: { begin: 40000, end: 40100 },
		});
		expect(
			parseDaemonToWorkerMessage({
				type: "remote-description",
				sessionId: "s1",
				sdp: "v=0",
				sdpType: "answer",
			}),
		).toEqual({ type: "remote-description", sessionId: "s1", sdp: "v=0", sdpType: "answer" });
		expect(
			parseDaemonToWorkerMessage({
				type: "remote-candidate",
				sessionId: "s1",
				candidate: "",
				mid: "0",
			}),
		).toEqual({ type: "remote-candidate", sessionId: "s1", candidate: "", mid: "0" });
		expect(parseDaemonToWorkerMessage({ type: "close", sessionId: "s1" })).toEqual({
			type: "close",
			sessionId: "s1",
		});
		expect(parseDaemonToWorkerMessage({ type: "shutdown" })).toEqual({ type: "shutdown" });
	});

	it("rejects malformed messages", () => {
		for (const bad of [
			null,
			"start",
			[],
			{ type: "nope" },
			{ ...start, sessionId: "" },
			{ ...start, role: "both" },
			{ ...start, stunServers: [1] },
			{ ...start, timeoutMs: 0 },
			{ ...start, portRange: { begin: 5000, end: 4000 } },
			{ ...start, portRange: { begin: 0, end: 4000 } },
			{ type: "remote-description", sessionId: "s1", sdp: "v=0", sdpType: "pranswer" },
			{ type: "remote-candidate", sessionId: "s1", candidate: 5, mid: "0" },
			{ type: "close" },
		]) {
			expect(parseDaemonToWorkerMessage(bad)).toBeUndefined();
		}
	});
});

describe("parseWorkerToDaemonMessage", () => {
	const connected = {
		type: "connected",
		sessionId: "s1",
		local: { address: "198.18.0.2", port: 40000, type: "host" },
		remote: { address: "198.18.0.3", port: 40001, type: "prflx" },
		localPort: 40000,
		elapsedMs: 12,
	};

	it("accepts well-formed messages", () => {
		expect(parseWorkerToDaemonMessage(connected)).toEqual(connected);
		expect(parseWorkerToDaemonMessage({ ...connected, rttMs: 1.5 })).toEqual({
			...connected,
			rttMs: 1.5,
		});
		expect(
			parseWorkerToDaemonMessage({ type: "failed", sessionId: "s1", reason: "ice failed" }),
		).toEqual({
			type: "failed",
			sessionId: "s1",
			reason: "ice failed",
		});
		expect(
			parseWorkerToDaemonMessage({
				type: "closed",
				sessionId: "s1",
				portReleased: true,
				localPort: 40000,
			}),
		).toEqual({ type: "closed", sessionId: "s1", portReleased: true, localPort: 40000 });
		expect(parseWorkerToDaemonMessage({ type: "log", level: "warn", message: "x" })).toEqual({
			type: "log",
			level: "warn",
			message: "x",
		});
		expect(parseWorkerToDaemonMessage({ type: "ready", libraryVersion: "0.24.5" })).toEqual({
			type: "ready",
			libraryVersion: "0.24.5",
		});
	});

	it("rejects malformed messages", () => {
		for (const bad of [
			undefined,
			{ type: "connected" },
			{ ...connected, local: { address: "198.18.0.2", port: 0, type: "host" } },
			{ ...connected, localPort: 70000 },
			{ ...connected, rttMs: -1 },
			{ type: "failed", sessionId: "s1" },
			{ type: "closed", sessionId: "s1" },
			{ type: "log", level: "fatal", message: "x" },
			{ type: "local-description", sessionId: "s1", sdp: "v=0", sdpType: "rollback" },
		]) {
			expect(parseWorkerToDaemonMessage(bad)).toBeUndefined();
		}
	});
});
