import type { RelayClient } from "@starling/relay-client";
import { parsePrometheusText } from "@starling/service-runtime";
import { afterEach, describe, expect, it } from "vitest";
import type { RelayServer } from "../src/server.js";
import {
	identity,
	metricValue,
	nextPacket,
	relayClient,
	startTestRelay,
	waitFor,
} from "./helpers.js";

describe("relay HTTP endpoints", () => {
	let relay: RelayServer;
	const clients: RelayClient[] = [];
	afterEach(async () => {
		for (const c of clients.splice(0)) await c.close();
		await relay?.close();
	});

	const http = (path: string, init?: RequestInit) =>
		fetch(`http://127.0.0.1:${relay.port}${path}`, init);

	it("answers /healthz with status and counts", async () => {
		relay = await startTestRelay();
		const res = await http("/healthz");
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toBe("application/json");
		expect(await res.json()).toMatchObject({ status: "ok", connections: 0, peers: 0 });
		const head = await http("/healthz", { method: "HEAD" });
		expect(head.status).toBe(200);
		expect(await head.text()).toBe("");
		// Readiness, named as management's and signal's: the relay needs nothing else.
		const ready = await http("/readyz");
		expect(ready.status).toBe(200);
		expect(await ready.json()).toMatchObject({ status: "ok", connections: 0, peers: 0 });
	});

	it("answers 404 and 405 with a JSON body", async () => {
		relay = await startTestRelay();
		const missing = await http("/nope");
		expect(missing.status).toBe(404);
		expect(await missing.json()).toEqual({ message: "not found", code: 404 });
		const post = await http("/metrics", { method: "POST", body: "x" });
		expect(post.status).toBe(405);
		expect(post.headers.get("allow")).toBe("GET, HEAD");
	});

	it("exposes Prometheus metrics that follow the traffic", async () => {
		relay = await startTestRelay();
		const alice = identity();
		const bob = identity();
		const a = relayClient(relay, alice);
		const b = relayClient(relay, bob);
		clients.push(a, b);
		await Promise.all([a.connect(), b.connect()]);
		const got = nextPacket(b);
		a.sendTo(bob.publicKey, Buffer.alloc(1200, 1));
		await got;
		a.sendTo(identity().publicKey, Buffer.alloc(100, 1));
		await waitFor(() => relay.stats().dropped.peer_offline === 1, "drop");

		const res = await http("/metrics");
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
		const text = await res.text();
		expect(metricValue(text, 'starling_relay_connections{state="ready"}')).toBe(2);
		expect(metricValue(text, 'starling_relay_connections{state="pending"}')).toBe(0);
		expect(metricValue(text, "starling_relay_connections_accepted_total")).toBe(2);
		expect(metricValue(text, "starling_relay_frames_forwarded_total")).toBe(1);
		expect(metricValue(text, "starling_relay_bytes_forwarded_total")).toBe(1233);
		expect(metricValue(text, 'starling_relay_frames_dropped_total{reason="peer_offline"}')).toBe(1);
		expect(metricValue(text, 'starling_relay_frames_dropped_total{reason="receiver_slow"}')).toBe(
			0,
		);
		// Two HELLOs (2 + 98 bytes each) + 1233 + 133 bytes of DATA.
		expect(metricValue(text, "starling_relay_bytes_received_total")).toBe(2 * 100 + 1233 + 133);
		// Two WELCOMEs (41 bytes each) + the forwarded frame.
		expect(metricValue(text, "starling_relay_bytes_sent_total")).toBe(2 * 41 + 1233);
		expect(metricValue(text, "process_resident_memory_bytes")).toBeGreaterThan(1e6);
		expect(metricValue(text, "process_cpu_seconds_total")).toBeGreaterThan(0);
		// Every line is a comment or a sample in the text format (the parser throws otherwise).
		expect(parsePrometheusText(text).size).toBeGreaterThan(20);
	});
});
