// Two real signal processes on one nats-server behind Debian's HAProxy, as
// the `ha` compose deployment runs them: HAProxy speaks h2c to signal's gRPC
// port and checks each instance's /readyz on its metrics port (signal's gRPC
// port has no health endpoint). Each agent's stream lands on an instance of
// the proxy's choosing; messages cross; a killed instance is taken out and its
// agents reconnect through the proxy to the other.

import { generateKeyPair, type KeyPair } from "@starling/crypto";
import { type RunningHaproxy, startHaproxy, startNatsServer } from "@starling/lab";
import { SignalClient } from "@starling/signal-client";
import { afterEach, describe, expect, it } from "vitest";
import { nextMessage } from "./helpers.js";
import { type SignalInstance, signalHaproxyBackend, startSignalInstance } from "./instances.js";

const text = (s: string) => new TextEncoder().encode(s);
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
	for (const step of cleanup.splice(0).reverse()) await step();
});

async function instance(natsUrl: string): Promise<SignalInstance> {
	const started = await startSignalInstance(natsUrl);
	cleanup.push(() => started.kill("SIGKILL"));
	return started;
}

function client(proxy: RunningHaproxy, keyPair: KeyPair): SignalClient {
	const created = new SignalClient({
		url: proxy.url,
		keyPair,
		reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
		// Its own connection, as a separate agent would have.
		channelOptions: { "grpc.use_local_subchannel_pool": 1 },
	});
	cleanup.push(() => created.close());
	return created;
}

describe("signal behind HAProxy", () => {
	it("spreads streams over both instances, carries messages across, and moves agents off a killed instance", async () => {
		const nats = await startNatsServer();
		cleanup.push(() => nats.stop());
		const instances = await Promise.all([instance(nats.url), instance(nats.url)]);
		const proxy = await startHaproxy({
			backends: [
				signalHaproxyBackend(
					instances.map((instance, i) => ({ name: `signal-${i + 1}`, instance })),
					[],
				),
			],
		});
		cleanup.push(() => proxy.stop());
		for (const name of ["signal-1", "signal-2"]) {
			await proxy.waitForServer("signal_grpc", name, "UP");
		}

		const alice = generateKeyPair();
		const bob = generateKeyPair();
		const atAlice = client(proxy, alice);
		const atBob = client(proxy, bob);
		await atAlice.connect();
		await atBob.connect();
		// Round robin per stream: one stream on each instance, so every message crosses NATS.
		const servers = (await proxy.states()).filter(
			(s) => s.backend === "signal_grpc" && s.server.startsWith("signal-"),
		);
		expect(servers.map((s) => [s.server, s.sessionsTotal > 0])).toEqual([
			["signal-1", true],
			["signal-2", true],
		]);
		const toBob = nextMessage(atBob);
		await atAlice.send(bob.publicKey, text("offer 1"));
		expect((await toBob).body).toEqual(text("offer 1"));
		const toAlice = nextMessage(atAlice);
		await atBob.send(alice.publicKey, text("answer 1"));
		expect((await toAlice).from).toEqual(bob.publicKey);

		// One instance dies: the checks take it out; its agent reconnects through the proxy.
		const reconnected = Promise.race([
			new Promise<void>((resolve) => atAlice.once("connected", resolve)),
			new Promise<void>((resolve) => atBob.once("connected", resolve)),
		]);
		await instances[0].kill("SIGKILL");
		await proxy.waitForServer("signal_grpc", "signal-1", "DOWN", 5_000);
		await reconnected;
		const again = nextMessage(atBob);
		await atAlice.send(bob.publicKey, text("offer 2"));
		expect((await again).body).toEqual(text("offer 2"));
		const back = nextMessage(atAlice);
		await atBob.send(alice.publicKey, text("answer 2"));
		expect((await back).body).toEqual(text("answer 2"));
	});
});
