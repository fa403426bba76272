import { createLogger } from "@starling/log";
import type { PeerStatus } from "@starling/proto";
import { afterEach, describe, expect, it } from "vitest";
import { agentMetrics } from "./agent-metrics.js";
import { type MetricsServer, parseMetricsAddr, startMetricsServer } from "./metrics-server.js";

const logger = createLogger("metrics-test", { level: "silent" });

function peer(over: Partial<PeerStatus>): PeerStatus {
	return {
		name: "db",
		wgPublicKey: "KEY=",
		overlayIp: "100.64.0.2",
		fqdn: "db.starling.internal",
		connectionState: "connected",
		pathType: "p2p",
		localEndpoint: "",
		remoteEndpoint: "",
		localCandidateType: "",
		remoteCandidateType: "",
		lastHandshakeUnixMs: Date.now() - 30_000,
		bytesReceived: 1234,
		bytesSent: 567,
		latencyMs: 0,
		peerOnline: true,
		reason: "",
		iceAttempts: 3,
		iceSuccesses: 1,
		iceFailures: 2,
		iceLastFailure: "ice failed: timeout",
		...over,
	};
}

let server: MetricsServer | undefined;
afterEach(async () => {
	await server?.close();
	server = undefined;
});

describe("parseMetricsAddr", () => {
	it("takes loopback addresses with a port", () => {
		expect(parseMetricsAddr("127.0.0.1:9101")).toEqual({ host: "127.0.0.1", port: 9101 });
		expect(parseMetricsAddr("[::1]:9101")).toEqual({ host: "::1", port: 9101 });
		expect(parseMetricsAddr("localhost:80")).toEqual({ host: "localhost", port: 80 });
	});

	it("refuses other hosts, missing or bad ports, with one line", () => {
		expect(() => parseMetricsAddr("0.0.0.0:9101")).toThrow(/not a loopback address/);
		expect(() => parseMetricsAddr("192.168.1.2:9101")).toThrow(/not a loopback address/);
		expect(() => parseMetricsAddr("127.0.0.1")).toThrow(/invalid metrics address/);
		expect(() => parseMetricsAddr("127.0.0.1:70000")).toThrow(/invalid metrics address/);
		expect(() => parseMetricsAddr("127.0.0.1:0")).toThrow(/invalid metrics address/);
	});
});

describe("the agent's /metrics", () => {
	it("serves each peer's path, bytes, handshake age and ICE counts over HTTP, read at each scrape", async () => {
		let peers = [
			peer({}),
			peer({ name: "web", wgPublicKey: "WEB=", pathType: "", lastHandshakeUnixMs: 0 }),
		];
		const registry = agentMetrics({ state: "up" as const, peers: async () => peers });
		server = await startMetricsServer({ host: "127.0.0.1", port: 0 }, registry, logger);
		const res = await fetch(`http://${server.address}/metrics`);
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toContain("text/plain");
		const text = await res.text();
		expect(text).toContain("starling_agent_up 1");
		expect(text).toContain('starling_peer_path{peer="db",public_key="KEY=",path_type="p2p"} 1');
		expect(text).toContain('starling_peer_path{peer="db",public_key="KEY=",path_type="relayed"} 0');
		expect(text).toContain('starling_peer_path{peer="web",public_key="WEB=",path_type="none"} 1');
		expect(text).toContain('starling_peer_received_bytes{peer="db",public_key="KEY="} 1234');
		expect(text).toContain('starling_peer_sent_bytes{peer="db",public_key="KEY="} 567');
		expect(text).toContain('starling_peer_ice_attempts{peer="db",public_key="KEY="} 3');
		expect(text).toContain('starling_peer_ice_successes{peer="db",public_key="KEY="} 1');
		expect(text).toContain('starling_peer_ice_failures{peer="db",public_key="KEY="} 2');
		const age = /starling_peer_handshake_age_seconds\{peer="db",public_key="KEY="\} ([\d.]+)/.exec(
			text,
		);
		expect(Number(age?.[1])).toBeGreaterThanOrEqual(30);
		expect(text).not.toMatch(/starling_peer_handshake_age_seconds\{peer="web"/);

		// A peer that left the map is gone from the next scrape.
		peers = [peers[0]!];
		await new Promise((resolve) => setImmediate(resolve));
		const again = await (await fetch(`http://${server.address}/metrics`)).text();
		expect(again).not.toContain('peer="web"');
	});

	it("answers other paths with 404 and a JSON message", async () => {
		server = await startMetricsServer(
			{ host: "127.0.0.1", port: 0 },
			agentMetrics({ state: "down" as const, peers: async () => [] }),
			logger,
		);
		const res = await fetch(`http://${server.address}/`);
		expect(res.status).toBe(404);
		expect(await res.json()).toMatchObject({ code: "not_found" });
		const text = await (await fetch(`http://${server.address}/metrics`)).text();
		expect(text).toContain("starling_agent_up 0");
	});
});
