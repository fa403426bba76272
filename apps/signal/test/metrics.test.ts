import { status } from "@grpc/grpc-js";
import { generateKeyPair, sealTo } from "@starling/crypto";
import { parsePrometheusText } from "@starling/service-runtime";
import { describe, expect, it } from "vitest";
import type { SignalServer } from "../src/server.js";
import { closedAfterEach, nextMessage, waitFor } from "./helpers.js";

/** Scrapes the server's /metrics over HTTP, as Prometheus would. */
async function scrape(server: SignalServer): Promise<Map<string, number>> {
	const res = await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`);
	expect(res.status).toBe(200);
	expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
	return parsePrometheusText(await res.text());
}

describe("signal health and metrics", () => {
	const resources = closedAfterEach();
	const { client, raw } = resources;
	const server = () => resources.server({ metricsListen: { host: "127.0.0.1", port: 0 } });

	it("counts connected peers, routed and refused messages, and routing latency", async () => {
		const srv = await server();
		const before = await scrape(srv);
		expect(before.get("starling_signal_connected_peers")).toBe(0);
		expect(before.get("starling_signal_messages_routed_total")).toBe(0);
		expect(before.get("starling_signal_routing_seconds_count")).toBe(0);

		const alice = generateKeyPair();
		const bob = generateKeyPair();
		const a = client(srv, alice);
		const b = client(srv, bob);
		await Promise.all([a.connect(), b.connect()]);
		expect((await scrape(srv)).get("starling_signal_connected_peers")).toBe(2);

		const atBob = nextMessage(b);
		await a.send(bob.publicKey, sealTo(new Uint8Array([1, 2, 3]), bob.publicKey, alice.privateKey));
		await atBob;
		// The latency is observed when the delivery is flushed, which may follow the send's answer.
		await waitFor(() => srv.stats().messagesDelivered === 1, "the delivery");
		let after = await scrape(srv);
		for (let i = 0; i < 50 && after.get("starling_signal_routing_seconds_count") !== 1; i++) {
			await new Promise((resolve) => setTimeout(resolve, 20));
			after = await scrape(srv);
		}
		expect(after.get("starling_signal_messages_routed_total")).toBe(1);
		expect(after.get("starling_signal_routing_seconds_count")).toBe(1);
		const sum = after.get("starling_signal_routing_seconds_sum") ?? -1;
		expect(sum).toBeGreaterThan(0);
		expect(sum).toBeLessThan(5);

		// To a key nobody holds: refused as not connected; the routed count stays.
		const nobody = generateKeyPair();
		await expect(a.send(nobody.publicKey, new Uint8Array([9]))).rejects.toMatchObject({
			code: status.NOT_FOUND,
		});
		const carolStream = raw(srv);
		await carolStream.authenticate(generateKeyPair());
		expect((await carolStream.send(1, new Uint8Array(5), new Uint8Array([1]))).code).toBe(
			status.INVALID_ARGUMENT,
		);
		const refused = await scrape(srv);
		expect(refused.get('starling_signal_messages_refused_total{reason="not_connected"}')).toBe(1);
		expect(refused.get('starling_signal_messages_refused_total{reason="invalid"}')).toBe(1);
		expect(refused.get('starling_signal_messages_refused_total{reason="recipient_slow"}')).toBe(0);
		expect(refused.get("starling_signal_messages_routed_total")).toBe(1);
		expect(refused.get("starling_signal_connected_peers")).toBe(3);

		await a.close();
		await waitFor(() => srv.stats().connectedPeers === 2, "alice to leave");
		expect((await scrape(srv)).get("starling_signal_connected_peers")).toBe(2);
	});

	it("answers /healthz and /readyz while serving, and stops with the server", async () => {
		const srv = await server();
		const base = `http://127.0.0.1:${srv.metricsPort}`;
		const live = await fetch(`${base}/healthz`);
		expect(live.status).toBe(200);
		expect(await live.json()).toEqual({ status: "ok", checks: { process: "ok" } });
		const ready = await fetch(`${base}/readyz`);
		expect(ready.status).toBe(200);
		expect(await ready.json()).toEqual({ status: "ok", checks: { grpc: "ok" } });

		// While closing, the server is not ready: the check says so before the listener goes.
		const closing = srv.close();
		const answer = await srv.ready();
		expect(answer).toEqual({ grpc: { ok: false, reason: "shutting down" } });
		await closing;
		await expect(fetch(`${base}/healthz`)).rejects.toThrow();
	});

	it("keeps the registries of two servers in one process apart", async () => {
		const one = await server();
		const two = await server();
		const a = client(one, generateKeyPair());
		await a.connect();
		expect((await scrape(one)).get("starling_signal_connected_peers")).toBe(1);
		expect((await scrape(two)).get("starling_signal_connected_peers")).toBe(0);
	});
});
