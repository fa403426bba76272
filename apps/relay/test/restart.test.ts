import { CloseCode, type RelayClient, type RelayError } from "@starling/relay-client";
import { afterEach, describe, expect, it } from "vitest";
import type { RelayServer } from "../src/server.js";
import {
	identity,
	nextPacket,
	RawPeer,
	relayClient,
	startTestRelay,
	tokenFor,
	waitFor,
} from "./helpers.js";

describe("relay restart", () => {
	let relay: RelayServer | undefined;
	const clients: RelayClient[] = [];
	afterEach(async () => {
		for (const c of clients.splice(0)) await c.close();
		await relay?.close();
	});

	it("clients reconnect by themselves and exchange packets again", async () => {
		relay = await startTestRelay();
		const port = relay.port;
		const alice = identity();
		const bob = identity();
		const reconnect = { initialDelayMs: 50, maxDelayMs: 200 };
		const a = relayClient(relay, alice, { reconnect });
		const b = relayClient(relay, bob, { reconnect });
		clients.push(a, b);
		a.start();
		b.start();
		await waitFor(() => a.state === "ready" && b.state === "ready", "both admitted");

		const lost: RelayError[] = [];
		a.on("disconnected", (err) => lost.push(err));
		await relay.close();
		relay = undefined;
		await waitFor(() => lost.length === 1, "disconnect seen");
		expect(lost[0]?.code).toBe(CloseCode.GoingAway);
		expect(a.state).not.toBe("ready");

		// Down for a while: attempts fail and back off, nothing is sent.
		await new Promise((resolve) => setTimeout(resolve, 300));
		expect(a.send(bob.peerId, Buffer.from("lost"))).toBe(false);

		relay = await startTestRelay({ port });
		await waitFor(() => a.state === "ready" && b.state === "ready", "both back", 5_000);
		const got = nextPacket(b);
		expect(a.sendTo(bob.publicKey, Buffer.from("after restart"))).toBe(true);
		expect((await got).payload.toString()).toBe("after restart");
		expect(a.stats().connects).toBe(2);
	});

	it("a client whose relay vanishes without a close frame notices by silence", async () => {
		relay = await startTestRelay({ pingIntervalMs: 60_000 });
		const a = relayClient(relay, identity(), { silenceTimeoutMs: 300, reconnect: false });
		clients.push(a);
		await a.connect();
		const closed = new Promise<RelayError | undefined>((resolve) => a.once("closed", resolve));
		// No pings (60 s interval) and no traffic: the client gives up after ~300 ms.
		const err = await closed;
		expect(err?.reason).toMatch(/silent/);
	});

	it("keeps a live client that answers pings, and terminates one that does not", async () => {
		relay = await startTestRelay({ pingIntervalMs: 100 });
		const a = relayClient(relay, identity());
		clients.push(a);
		await a.connect();
		const mute = await RawPeer.admitted(relay.url, tokenFor(identity()), { autoPong: false });
		const closed = await mute.closed;
		expect(closed.code).toBe(1006); // terminated, no close frame
		await waitFor(() => relay?.stats().disconnects.ping_timeout === 1, "ping timeout counted");
		// The client (ws answers pings by itself) is still there.
		expect(a.state).toBe("ready");
		expect(relay.stats().readyConnections).toBe(1);
	});
});
