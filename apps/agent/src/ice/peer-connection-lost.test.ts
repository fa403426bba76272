import { describe, expect, it } from "vitest";
import { onPeerConnectionLost } from "./peer-connection-lost.js";

describe("onPeerConnectionLost", () => {
	it("ignores states that do not end the PeerConnection", () => {
		for (const state of ["new", "connecting", "connected", "disconnected"]) {
			expect(onPeerConnectionLost(state, "checking", false)).toEqual({ kind: "ignore" });
		}
	});

	it("ignores the end of a session that already reported its outcome", () => {
		expect(onPeerConnectionLost("failed", "closed", true)).toEqual({ kind: "ignore" });
		expect(onPeerConnectionLost("closed", "connected", true)).toEqual({ kind: "ignore" });
	});

	it("reports connected while ICE can still be read as connected", () => {
		expect(onPeerConnectionLost("failed", "connected", false)).toEqual({
			kind: "report-connected",
		});
		expect(onPeerConnectionLost("failed", "completed", false)).toEqual({
			kind: "report-connected",
		});
	});

	it("keeps calling an ICE failure an ICE failure", () => {
		expect(onPeerConnectionLost("failed", "failed", false)).toEqual({
			kind: "fail",
			reason: "ice failed",
		});
	});

	it("fails at once, naming the PeerConnection and not an ICE timeout, once ICE is gone", () => {
		const failed = onPeerConnectionLost("failed", "closed", false);
		expect(failed.kind).toBe("fail");
		expect(failed.kind === "fail" && failed.reason).toBe(
			"peer connection failed before ice reported connected (ice closed; libdatachannel closes it when DTLS fails)",
		);
		const closed = onPeerConnectionLost("closed", "checking", false);
		expect(closed.kind === "fail" && closed.reason).toMatch(/^peer connection closed before ice/);
	});
});
