import { type NatsServer, startNatsServer, waitFor } from "@starling/lab";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
	type Bus,
	BusClosedError,
	BusConnectError,
	BusNoResponderError,
	type BusState,
	BusTimeoutError,
	BusUnavailableError,
} from "./bus.js";
import { InProcessBus } from "./in-process.js";
import { NatsBus } from "./nats.js";

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

let nats: NatsServer;
beforeAll(async () => {
	nats = await startNatsServer();
});
afterAll(async () => {
	await nats?.stop();
});

/**
 * Two "instances" on one bus: the in-process bus is shared by both (one
 * process), NATS gives each its own connection, as two processes would have.
 */
const backends: Array<[string, () => Promise<[Bus, Bus]>]> = [
	[
		"in-process",
		async () => {
			const bus = new InProcessBus();
			return [bus, bus];
		},
	],
	[
		"nats",
		async () => [
			await NatsBus.connect({ servers: nats.url, name: "a" }),
			await NatsBus.connect({ servers: nats.url, name: "b" }),
		],
	],
];

describe.each(backends)("bus contract: %s", (_name, open) => {
	it("delivers to matching subscribers, never inside publish", async () => {
		const [a, b] = await open();
		const got: string[] = [];
		b.subscribe("acct.*.serial", (p, s) => got.push(`${s}=${str(p)}`));
		b.subscribe("other.>", (p) => got.push(`other=${str(p)}`));
		await b.flush();
		a.publish("acct.x.serial", text("7"));
		expect(got).toEqual([]);
		await a.flush();
		await waitFor("delivery", async () => (got.length === 1 ? true : undefined), 5_000, 10);
		expect(got).toEqual(["acct.x.serial=7"]);
		await a.close();
		await b.close();
	});

	it("gives each message to one member of a queue group", async () => {
		const [a, b] = await open();
		const counts = [0, 0];
		a.subscribe("work", () => counts[0]++, { queue: "q" });
		b.subscribe("work", () => counts[1]++, { queue: "q" });
		await a.flush();
		await b.flush();
		for (let i = 0; i < 20; i++) a.publish("work", text(String(i)));
		await a.flush();
		await waitFor(
			"20 deliveries",
			async () => (counts[0] + counts[1] === 20 ? true : undefined),
			5_000,
			10,
		);
		await new Promise((r) => setTimeout(r, 100));
		expect(counts[0] + counts[1]).toBe(20);
		await a.close();
		await b.close();
	});

	it("answers requests, says at once when nobody listens, times out when nobody answers", async () => {
		const [a, b] = await open();
		b.respond("peer.k1", (p) => text(`ack:${str(p)}`));
		b.respond("peer.silent", () => undefined);
		await b.flush();
		expect(str(await a.request("peer.k1", text("hi"), 2_000))).toBe("ack:hi");
		const started = Date.now();
		await expect(a.request("peer.nobody", text("hi"), 2_000)).rejects.toBeInstanceOf(
			BusNoResponderError,
		);
		expect(Date.now() - started).toBeLessThan(1_000);
		await expect(a.request("peer.silent", text("hi"), 200)).rejects.toBeInstanceOf(BusTimeoutError);
		await a.close();
		await b.close();
	});

	it("stops delivering after unsubscribe and refuses use after close", async () => {
		const [a, b] = await open();
		let n = 0;
		const sub = b.subscribe("x", () => n++);
		await b.flush();
		a.publish("x", text("1"));
		await a.flush();
		await waitFor("first", async () => (n === 1 ? true : undefined), 5_000, 10);
		sub.unsubscribe();
		await b.flush();
		a.publish("x", text("2"));
		await a.flush();
		await new Promise((r) => setTimeout(r, 100));
		expect(n).toBe(1);
		await a.close();
		await b.close();
		expect(a.state()).toBe("closed");
		expect(() => a.publish("x", text("3"))).toThrow(BusClosedError);
	});
});

describe("NATS bus against a server that goes away", () => {
	it("fails to start with one line naming the server", async () => {
		const err = await NatsBus.connect({
			servers: "nats://127.0.0.1:1",
			name: "t",
			connectTimeoutMs: 1_000,
		}).catch((e: unknown) => e);
		expect(err).toBeInstanceOf(BusConnectError);
		expect((err as Error).message).toContain("nats://127.0.0.1:1");
		expect((err as Error).message).not.toContain("\n");
	});

	it("authenticates with the user and password of the URL", async () => {
		const guarded = await startNatsServer({ args: ["--user", "signal", "--pass", "hunter2"] });
		try {
			const bus = await NatsBus.connect({
				servers: `nats://signal:hunter2@127.0.0.1:${guarded.port}`,
				name: "t",
			});
			const echoed = bus.respond("echo", (p) => p);
			expect(str(await bus.request("echo", text("hi"), 2_000))).toBe("hi");
			echoed.unsubscribe();
			await bus.close();
			const refused = await NatsBus.connect({
				servers: `nats://signal:wrong@127.0.0.1:${guarded.port}`,
				name: "t",
				connectTimeoutMs: 2_000,
			}).catch((e: unknown) => e);
			expect(refused).toBeInstanceOf(BusConnectError);
			expect((refused as Error).message).toContain(`nats://***@127.0.0.1:${guarded.port}`);
			expect((refused as Error).message).not.toContain("wrong");
		} finally {
			await guarded.stop();
		}
	});

	it("never prints the password of a server URL it cannot reach", async () => {
		const err = await NatsBus.connect({
			servers: ["nats://signal:hunter2@127.0.0.1:1"],
			name: "t",
			connectTimeoutMs: 1_000,
		}).catch((e: unknown) => e);
		expect(err).toBeInstanceOf(BusConnectError);
		expect((err as Error).message).toContain("nats://***@127.0.0.1:1");
		expect((err as Error).message).not.toContain("hunter2");
	});

	it("reports each loss and return once, and carries on after the server restarts", async () => {
		const own = await startNatsServer();
		try {
			const a = await NatsBus.connect({ servers: own.url, name: "a" });
			const b = await NatsBus.connect({ servers: own.url, name: "b" });
			const changes: BusState[] = [];
			a.onStateChange((s) => changes.push(s));
			const got: string[] = [];
			b.subscribe("s", (p) => got.push(str(p)));
			await b.flush();

			await own.kill("SIGKILL");
			await waitFor(
				"disconnect",
				async () => (a.state() === "disconnected" ? true : undefined),
				10_000,
				20,
			);
			await expect(a.request("s", text("x"), 500)).rejects.toBeInstanceOf(BusUnavailableError);

			await own.restart();
			await waitFor(
				"reconnect a",
				async () => (a.state() === "connected" ? true : undefined),
				10_000,
				20,
			);
			await waitFor(
				"reconnect b",
				async () => (b.state() === "connected" ? true : undefined),
				10_000,
				20,
			);
			await b.flush(); // its subscription is re-sent on reconnect
			a.publish("s", text("after"));
			await a.flush();
			await waitFor(
				"delivery after restart",
				async () => (got.includes("after") ? true : undefined),
				5_000,
				20,
			);
			expect(changes).toEqual(["disconnected", "connected"]);
			await a.close();
			await b.close();
			expect(changes).toEqual(["disconnected", "connected", "closed"]);
		} finally {
			await own.stop();
		}
	}, 40_000);
});
