import type { RemotePeer } from "@starling/proto";
import { describe, expect, it } from "vitest";
import { firewallStatusOf, type PeerStatusInput, peerStatusOf } from "./status.js";

const NOW = 1_700_000_000_000;
const remote: RemotePeer = {
	wgPublicKey: "a".repeat(43) + "=",
	allowedIps: ["100.64.0.7/32"],
	name: "db",
	fqdn: "db.starling.internal",
	connected: true,
} as RemotePeer;
const NO_ICE = { attempts: 0, successes: 0, failures: 0, lastFailure: "" };

function input(over: Partial<PeerStatusInput>): PeerStatusInput {
	return {
		now: NOW,
		remote,
		conn: { state: "connecting", lastFailure: undefined },
		path: undefined,
		relayEndpoint: undefined,
		relayUrl: "ws://relay.example:33080",
		wg: undefined,
		probeRttMs: undefined,
		ice: NO_ICE,
		...over,
	};
}

describe("peerStatusOf", () => {
	it("shows a direct path with WireGuard's roamed endpoint, counters and the probe's round trip", () => {
		const s = peerStatusOf(
			input({
				conn: { state: "connected", lastFailure: undefined },
				path: {
					local: { address: "192.168.1.2", port: 40001, type: "host" },
					remote: { address: "203.0.113.9", port: 41000, type: "srflx" },
					rttMs: 12,
				},
				wg: {
					endpoint: "203.0.113.9:41999",
					rxBytes: 10,
					txBytes: 20,
					latestHandshakeUnixSeconds: NOW / 1000 - 3,
				},
				probeRttMs: 4,
				ice: { attempts: 2, successes: 1, failures: 1, lastFailure: "ice failed: timeout" },
			}),
		);
		expect(s).toMatchObject({
			overlayIp: "100.64.0.7",
			connectionState: "connected",
			pathType: "p2p",
			localEndpoint: "192.168.1.2:40001",
			remoteEndpoint: "203.0.113.9:41999",
			localCandidateType: "host",
			remoteCandidateType: "srflx",
			lastHandshakeUnixMs: NOW - 3_000,
			bytesReceived: 10,
			bytesSent: 20,
			latencyMs: 4,
			reason: "",
			iceAttempts: 2,
			iceSuccesses: 1,
			iceFailures: 1,
			iceLastFailure: "ice failed: timeout",
		});
	});

	it("shows a relayed peer with the relay's URL and why there is no direct path", () => {
		const s = peerStatusOf(
			input({
				conn: { state: "backoff", lastFailure: "ice failed: timeout" },
				relayEndpoint: "127.0.0.1:50001",
				wg: {
					endpoint: "127.0.0.1:50001",
					rxBytes: 1,
					txBytes: 1,
					latestHandshakeUnixSeconds: NOW / 1000 - 10,
				},
			}),
		);
		expect(s).toMatchObject({
			connectionState: "connected",
			pathType: "relayed",
			remoteEndpoint: "ws://relay.example:33080",
			remoteCandidateType: "relay",
			reason: "relayed: ice failed: timeout",
		});
	});

	it("says failed, idle or offline when there is no path", () => {
		expect(
			peerStatusOf(input({ conn: { state: "backoff", lastFailure: "x" } })).connectionState,
		).toBe("failed");
		expect(
			peerStatusOf(input({ conn: { state: "backoff", lastFailure: undefined } })).connectionState,
		).toBe("connecting");
		expect(
			peerStatusOf(input({ conn: { state: "idle", lastFailure: undefined } })).connectionState,
		).toBe("idle");
		const offline = peerStatusOf(
			input({
				remote: { ...remote, connected: false },
				conn: { state: "waiting-for-peer", lastFailure: undefined },
			}),
		);
		expect(offline).toMatchObject({
			connectionState: "connecting",
			pathType: "",
			reason: "peer is offline",
		});
	});
});

describe("firewallStatusOf", () => {
	it("names the mode, the rule count and the last failure", () => {
		expect(firewallStatusOf(undefined, true, "")).toBe("disabled by operator");
		expect(firewallStatusOf({ ruleCount: 1 }, true, "")).toBe("enforcing (1 rule)");
		expect(firewallStatusOf({ ruleCount: 2 }, undefined, "boom")).toBe(
			"enforcing (2 rules); last update failed: boom",
		);
		expect(firewallStatusOf({ ruleCount: 0 }, false, "")).toBe(
			"open (management sends no access policies)",
		);
	});
});
