import type { NetcheckReport } from "@starling/proto";
import { describe, expect, it } from "vitest";
import { PeerLatency, parsePingRtt } from "./peer-latency.js";
import { netcheckToJson, netcheckToText } from "./report-format.js";

const report: NetcheckReport = {
	source: "daemon",
	udpReachable: true,
	mappedAddress: "198.18.200.3:40000",
	localPort: 40000,
	behindNat: true,
	mapping: "endpoint-independent",
	mappingDetail: "2 server addresses saw the same 198.18.200.3:40000",
	portPreserved: undefined,
	stun: [
		{
			server: "stun:198.18.200.1:3478",
			address: "198.18.200.1:3478",
			origin: "configured",
			answered: true,
			latencyMs: 0.42,
			mappedAddress: "198.18.200.3:40000",
			error: "",
		},
	],
	relays: [
		{
			url: "ws://198.18.200.1:33080",
			reachable: true,
			connectMs: 1.5,
			latencyMs: 0.3,
			error: "",
			admitted: false,
			admissionError: "relay refused our token: expired",
		},
	],
	peers: [
		{
			name: "b",
			fqdn: "b.starling.internal",
			overlayIp: "100.64.0.2",
			connectionState: "connected",
			pathType: "relayed",
			reason: "relayed: ice failed: ice not connected within 8000 ms",
		},
	],
	durationMs: 12,
};

describe("netcheck output", () => {
	it("JSON: snake_case, unknowns as null", () => {
		const json = netcheckToJson(report);
		expect(json).toMatchObject({
			udp_reachable: true,
			port_preserved: null,
			mapping: "endpoint-independent",
			relays: [{ admitted: false, admission_error: "relay refused our token: expired" }],
			peers: [
				{ path_type: "relayed", reason: "relayed: ice failed: ice not connected within 8000 ms" },
			],
		});
		expect(
			netcheckToJson({ ...report, relays: [{ ...report.relays[0]!, admitted: undefined }] }).relays,
		).toEqual([expect.objectContaining({ admitted: null })]);
	});

	it("text: one line per fact, the reason once", () => {
		const text = netcheckToText(report);
		expect(text).toContain("UDP: reachable");
		expect(text).toContain("Port preserved: unknown");
		expect(text).toContain("stun:198.18.200.1:3478: saw 198.18.200.3:40000, 0.4 ms");
		expect(text).toContain("not admitted: relay refused our token: expired");
		expect(text).toContain(
			"b.starling.internal (100.64.0.2): relayed: ice failed: ice not connected within 8000 ms",
		);
		expect(netcheckToText({ ...report, udpReachable: false })).toContain("UDP: not reachable");
	});
});

describe("peer latency", () => {
	it("reads iputils and busybox ping output", () => {
		expect(parsePingRtt("64 bytes from 100.64.0.2: icmp_seq=1 ttl=64 time=0.412 ms")).toBe(0.412);
		expect(parsePingRtt("rtt min/avg/max/mdev = 1.1/2.2/3.3/0.1 ms")).toBe(2.2);
		expect(parsePingRtt("round-trip min/avg/max = 1.0/1.5/2.0 ms")).toBe(1.5);
		expect(parsePingRtt("1 packets transmitted, 0 received")).toBeUndefined();
	});

	it("pings connected peers at most once per ttl and keeps others as they are", async () => {
		const calls: string[] = [];
		let now = 0;
		const latency = new PeerLatency(
			async (_cmd, args) => {
				const ip = args[args.length - 1]!;
				calls.push(ip);
				return ip === "100.64.0.3"
					? { stdout: "1 packets transmitted, 0 received", stderr: "", exitCode: 1 }
					: { stdout: "64 bytes from x: icmp_seq=1 ttl=64 time=2.5 ms", stderr: "", exitCode: 0 };
			},
			{ ttlMs: 10_000, now: () => now },
		);
		const peer = (ip: string, state: string) =>
			({ overlayIp: ip, connectionState: state, latencyMs: 0 }) as never;
		const peers = [
			peer("100.64.0.2", "connected"),
			peer("100.64.0.3", "connected"),
			peer("100.64.0.4", "connecting"),
		];
		const first = await latency.fill(peers);
		expect(first.map((p) => p.latencyMs)).toEqual([2.5, 0, 0]);
		expect(calls.sort()).toEqual(["100.64.0.2", "100.64.0.3"]);
		now = 5_000;
		await latency.fill(peers);
		expect(calls).toHaveLength(2);
		now = 20_000;
		await latency.fill(peers);
		expect(calls).toHaveLength(4);
	});
});
