import type { DaemonStatus, PeerStatus } from "@starling/proto";
import { describe, expect, it } from "vitest";
import { statusToJson, statusToText } from "./status-format.js";

const peer: PeerStatus = {
	name: "b",
	wgPublicKey: "k",
	overlayIp: "100.64.0.2",
	fqdn: "b.starling.internal",
	connectionState: "connected",
	pathType: "relayed",
	localEndpoint: "",
	remoteEndpoint: "ws://198.18.0.1:33080",
	localCandidateType: "",
	remoteCandidateType: "relay",
	lastHandshakeUnixMs: 1_000_000,
	bytesReceived: 2048,
	bytesSent: 10,
	latencyMs: 3.456,
	peerOnline: true,
	reason: "relayed: ice failed: ice not connected within 8000 ms",
	relayUrl: "ws://198.18.0.1:33080",
	iceAttempts: 3,
	iceSuccesses: 1,
	iceFailures: 2,
	iceLastFailure: "ice failed: ice not connected within 8000 ms",
};

const status: DaemonStatus = {
	agentVersion: "0.1.0",
	state: "up",
	management: { url: "http://198.18.0.1:33073", connected: true, error: "" },
	signal: { url: "http://198.18.0.1:10000", connected: true, error: "" },
	wgPublicKey: "me",
	overlayAddress: "100.64.0.1/16",
	fqdn: "a.starling.internal",
	interfaceName: "starling0",
	interfaceType: "userspace",
	wireguardPort: 51820,
	peersConnected: 1,
	peersTotal: 1,
	peers: [peer],
	firewall: "open (management sends no access policies)",
	relay: {
		url: "ws://198.18.0.1:33080",
		connected: false,
		error: "relay refused our token: expired",
	},
	routes: [],
};

describe("status output", () => {
	it("JSON carries the relay connection and each peer's relay URL", () => {
		const json = statusToJson(status, true);
		expect(json.relay).toEqual({
			url: "ws://198.18.0.1:33080",
			connected: false,
			error: "relay refused our token: expired",
		});
		expect((json.peers as Record<string, unknown>[])[0]).toMatchObject({
			path_type: "relayed",
			relay_url: "ws://198.18.0.1:33080",
			latency_ms: 3.456,
			last_handshake: new Date(1_000_000).toISOString(),
		});
		expect(statusToJson(status, false).peers).toBeUndefined();
		// A PeerStatus from an engine that does not set relay_url.
		const { relayUrl: _, ...noRelay } = peer;
		expect(
			(statusToJson({ ...status, peers: [noRelay] }, true).peers as Record<string, unknown>[])[0]
				?.relay_url,
		).toBe("");
	});

	it("JSON carries the per-peer metrics: handshake age and ICE attempts and results", () => {
		const json = statusToJson(status, true, 61_000_000);
		expect((json.peers as Record<string, unknown>[])[0]).toMatchObject({
			bytes_received: 2048,
			bytes_sent: 10,
			handshake_age_s: 60_000,
			ice: {
				attempts: 3,
				successes: 1,
				failures: 2,
				last_failure: "ice failed: ice not connected within 8000 ms",
			},
		});
		const never = statusToJson({ ...status, peers: [{ ...peer, lastHandshakeUnixMs: 0 }] }, true);
		expect((never.peers as Record<string, unknown>[])[0]?.handshake_age_s).toBeNull();
	});

	it("text shows path, relay, endpoints, handshake, bytes and latency per peer", () => {
		const text = statusToText(status, true, 61_000_000);
		expect(text).toContain("  Connection type: Relayed");
		expect(text).toContain("  Relay: ws://198.18.0.1:33080 (in use)");
		expect(text).toContain("  Remote endpoint: ws://198.18.0.1:33080 (relay)");
		expect(text).toContain("  Last WireGuard handshake: 17h ago");
		expect(text).toContain("  Transfer: 2.0 KiB received, 10 B sent");
		expect(text).toContain("  Latency: 3.46 ms");
		expect(text).toContain(
			"Relay: Disconnected (ws://198.18.0.1:33080): relay refused our token: expired",
		);
		const p2p = statusToText(
			{ ...status, peers: [{ ...peer, pathType: "p2p", latencyMs: 0 }] },
			true,
		);
		expect(p2p).toContain("  Relay: ws://198.18.0.1:33080 (fallback)");
		expect(p2p).toContain("  Latency: -");
	});

	it("JSON and --detail text carry the routes, with the router in use and why", () => {
		const route = {
			networkId: "office",
			network: "198.18.10.0/24",
			exitNode: false,
			router: "r2",
			routerKey: "k2",
			metric: 20,
			installed: true,
			reason: "failover: r1 unreachable; metric 20, direct",
			description: "office LAN",
			routers: [
				{ name: "r1", key: "k1", metric: 10, reachable: false, direct: false },
				{ name: "r2", key: "k2", metric: 20, reachable: true, direct: true },
			],
		};
		const json = statusToJson({ ...status, routes: [route] }, false);
		expect(json.routes).toEqual([
			{
				network_id: "office",
				network: "198.18.10.0/24",
				exit_node: false,
				router: "r2",
				router_key: "k2",
				metric: 20,
				installed: true,
				reason: "failover: r1 unreachable; metric 20, direct",
				description: "office LAN",
				routers: [
					{ name: "r1", key: "k1", metric: 10, reachable: false, direct: false },
					{ name: "r2", key: "k2", metric: 20, reachable: true, direct: true },
				],
			},
		]);
		const text = statusToText({ ...status, routes: [route] }, true);
		expect(text).toContain(" 198.18.10.0/24 (network 'office'): office LAN");
		expect(text).toContain("  Router: r2 (metric 20)");
		expect(text).toContain("  Why: failover: r1 unreachable; metric 20, direct");
		expect(text).toContain("   - r1: metric 10, unreachable");
		expect(statusToText({ ...status, routes: [route] }, false)).not.toContain("Routes:");
	});
});
