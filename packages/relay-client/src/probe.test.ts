import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { probeRelay } from "./probe.js";

describe("probeRelay", () => {
	it("measures connect and a ping round trip without sending a frame", async () => {
		const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
		await new Promise((r) => wss.once("listening", r));
		const frames: unknown[] = [];
		wss.on("connection", (ws) => ws.on("message", (m) => frames.push(m)));
		const port = (wss.address() as { port: number }).port;
		try {
			const r = await probeRelay(`ws://127.0.0.1:${port}/`);
			expect(r).toMatchObject({ reachable: true });
			expect(r.connectMs).toBeGreaterThan(0);
			expect(r.rttMs).toBeGreaterThan(0);
			expect(r.error).toBeUndefined();
			// No HELLO (no token) went to the relay.
			expect(frames).toEqual([]);
		} finally {
			await new Promise((r) => wss.close(r));
		}
	});

	it("says why a relay is not reachable, in one line", async () => {
		const port = await new Promise<number>((resolve) => {
			const s = createServer().listen(0, "127.0.0.1", () => {
				const p = (s.address() as { port: number }).port;
				s.close(() => resolve(p));
			});
		});
		const refused = await probeRelay(`ws://127.0.0.1:${port}`);
		expect(refused.reachable).toBe(false);
		expect(refused.error).toMatch(/ECONNREFUSED/);
		expect(await probeRelay("http://127.0.0.1:1")).toMatchObject({
			reachable: false,
			error: "relay URL must be ws:// or wss://",
		});
		// A TCP server that never answers the upgrade.
		const silent = createServer(() => {});
		await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
		try {
			const r = await probeRelay(`ws://127.0.0.1:${(silent.address() as { port: number }).port}`, {
				timeoutMs: 300,
			});
			expect(r.reachable).toBe(false);
			expect(r.error).toMatch(/300 ms|timed out/i);
		} finally {
			silent.close();
		}
	});
});
