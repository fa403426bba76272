import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { type RelayClient, RelayUdpBridge } from "@starling/relay-client";
import { afterEach, describe, expect, it } from "vitest";
import type { RelayServer } from "../src/server.js";
import { identity, relayClient, startTestRelay, waitFor } from "./helpers.js";

/** A UDP socket standing in for a WireGuard listen port. */
async function fakeWireguard(): Promise<{
	socket: Socket;
	port: number;
	received: { msg: Buffer; from: RemoteInfo }[];
}> {
	// Big buffers, as the bridge has: the bursts below outrun the default 208 KiB.
	const socket = createSocket({ type: "udp4", recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
	const received: { msg: Buffer; from: RemoteInfo }[] = [];
	socket.on("message", (msg, from) => received.push({ msg, from }));
	await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
	return { socket, port: socket.address().port, received };
}

describe("RelayUdpBridge", () => {
	let relay: RelayServer;
	const clients: RelayClient[] = [];
	const bridges: RelayUdpBridge[] = [];
	const sockets: Socket[] = [];
	afterEach(async () => {
		for (const b of bridges.splice(0)) await b.close();
		for (const c of clients.splice(0)) await c.close();
		for (const s of sockets.splice(0)) s.close();
		await relay?.close();
	});

	it("carries datagrams between two WireGuard ports through two bridges and the relay", async () => {
		relay = await startTestRelay();
		const alice = identity();
		const bob = identity();
		const a = relayClient(relay, alice);
		const b = relayClient(relay, bob);
		clients.push(a, b);
		await Promise.all([a.connect(), b.connect()]);
		const wgA = await fakeWireguard();
		const wgB = await fakeWireguard();
		sockets.push(wgA.socket, wgB.socket);
		const bridgeA = new RelayUdpBridge({ relay: a, wireguardPort: wgA.port });
		const bridgeB = new RelayUdpBridge({ relay: b, wireguardPort: wgB.port });
		bridges.push(bridgeA, bridgeB);
		// On A, WireGuard's endpoint for Bob is 127.0.0.1:bobOnA, and vice versa.
		const bobOnA = await bridgeA.addPeer(bob.publicKey);
		const aliceOnB = await bridgeB.addPeer(alice.publicKey);
		expect(await bridgeA.addPeer(bob.publicKey)).toBe(bobOnA); // idempotent
		expect(bridgeA.portOf(bob.publicKey)).toBe(bobOnA);

		wgA.socket.send("handshake initiation", bobOnA, "127.0.0.1");
		await waitFor(() => wgB.received.length === 1, "datagram at B");
		const first = wgB.received[0];
		expect(first?.msg.toString()).toBe("handshake initiation");
		// It comes from Alice's stable bridge port on B, so WireGuard learns that endpoint.
		expect(first?.from).toMatchObject({ address: "127.0.0.1", port: aliceOnB });

		wgB.socket.send("handshake response", first?.from.port ?? 0, "127.0.0.1");
		await waitFor(() => wgA.received.length === 1, "datagram at A");
		expect(wgA.received[0]?.msg.toString()).toBe("handshake response");
		expect(wgA.received[0]?.from.port).toBe(bobOnA);

		// A burst of full-size packets both ways arrives intact and in order.
		for (let i = 0; i < 1000; i++) {
			const packet = Buffer.alloc(1200, i % 256);
			packet.writeUInt32BE(i, 0);
			wgA.socket.send(packet, bobOnA, "127.0.0.1");
			wgB.socket.send(packet, aliceOnB, "127.0.0.1");
			if (i % 25 === 24) await new Promise((resolve) => setTimeout(resolve, 5));
		}
		await waitFor(() => wgB.received.length === 1001 && wgA.received.length === 1001, "bursts");
		expect(wgB.received.slice(1).map((r) => r.msg.readUInt32BE(0))).toEqual([
			...Array(1000).keys(),
		]);
		expect(bridgeA.peerStats(bob.publicKey)).toMatchObject({
			port: bobOnA,
			toRelayPackets: 1001,
			toWireguardPackets: 1001,
			toRelayDrops: 0,
		});
	});

	it("hands interleaved packets of two peers to WireGuard from each peer's own port", async () => {
		relay = await startTestRelay();
		const [alice, bob, carol] = [identity(), identity(), identity()];
		const [a, b, c] = [
			relayClient(relay, alice),
			relayClient(relay, bob),
			relayClient(relay, carol),
		];
		clients.push(a, b, c);
		await Promise.all([a.connect(), b.connect(), c.connect()]);
		const wgA = await fakeWireguard();
		const wgB = await fakeWireguard();
		const wgC = await fakeWireguard();
		sockets.push(wgA.socket, wgB.socket, wgC.socket);
		const bridgeA = new RelayUdpBridge({ relay: a, wireguardPort: wgA.port });
		const bridgeB = new RelayUdpBridge({ relay: b, wireguardPort: wgB.port });
		const bridgeC = new RelayUdpBridge({ relay: c, wireguardPort: wgC.port });
		bridges.push(bridgeA, bridgeB, bridgeC);
		const bobOnA = await bridgeA.addPeer(bob.publicKey);
		const carolOnA = await bridgeA.addPeer(carol.publicKey);
		const aliceOnB = await bridgeB.addPeer(alice.publicKey);
		const aliceOnC = await bridgeC.addPeer(alice.publicKey);
		for (let i = 0; i < 200; i++) {
			// Runs of 1-3 packets from one peer, then the other.
			const from = Math.floor(i / (1 + (i % 3))) % 2 === 0 ? "bob" : "carol";
			if (from === "bob") wgB.socket.send(`bob ${i}`, aliceOnB, "127.0.0.1");
			else wgC.socket.send(`carol ${i}`, aliceOnC, "127.0.0.1");
			if (i % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 5));
		}
		await waitFor(() => wgA.received.length === 200, "all 200 at A");
		for (const { msg, from } of wgA.received) {
			expect(from.port, msg.toString()).toBe(msg.toString().startsWith("bob") ? bobOnA : carolOnA);
		}
		// A removed peer's packets are dropped, the other's still arrive.
		await bridgeA.removePeer(bob.publicKey);
		wgB.socket.send("bob after removal", aliceOnB, "127.0.0.1");
		wgC.socket.send("carol after removal", aliceOnC, "127.0.0.1");
		await waitFor(() => wgA.received.length === 201, "carol's packet");
		await new Promise((resolve) => setTimeout(resolve, 100));
		expect(wgA.received.map((r) => r.msg.toString()).slice(200)).toEqual(["carol after removal"]);
	});

	it("ignores datagrams from anything but WireGuard's port, and drops packets of removed peers", async () => {
		relay = await startTestRelay();
		const alice = identity();
		const bob = identity();
		const a = relayClient(relay, alice);
		const b = relayClient(relay, bob);
		clients.push(a, b);
		await Promise.all([a.connect(), b.connect()]);
		const wgA = await fakeWireguard();
		const wgB = await fakeWireguard();
		const intruder = await fakeWireguard();
		sockets.push(wgA.socket, wgB.socket, intruder.socket);
		const bridgeA = new RelayUdpBridge({ relay: a, wireguardPort: wgA.port });
		const bridgeB = new RelayUdpBridge({ relay: b, wireguardPort: wgB.port });
		bridges.push(bridgeA, bridgeB);
		const bobOnA = await bridgeA.addPeer(bob.publicKey);
		await bridgeB.addPeer(alice.publicKey);

		intruder.socket.send("spoofed", bobOnA, "127.0.0.1");
		await new Promise((resolve) => setTimeout(resolve, 100));
		expect(wgB.received).toHaveLength(0);
		expect(relay.stats().framesForwarded).toBe(0);

		await bridgeB.removePeer(alice.publicKey);
		wgA.socket.send("to nobody", bobOnA, "127.0.0.1");
		await waitFor(() => bridgeB.stats().unknownPeerPackets === 1, "unknown peer drop");
		expect(wgB.received).toHaveLength(0);
	});

	it("counts datagrams WireGuard sends while the relay is down as drops", async () => {
		relay = await startTestRelay();
		const a = relayClient(relay, identity());
		clients.push(a);
		const wgA = await fakeWireguard();
		sockets.push(wgA.socket);
		const bridgeA = new RelayUdpBridge({ relay: a, wireguardPort: wgA.port });
		bridges.push(bridgeA);
		const bob = identity();
		const port = await bridgeA.addPeer(bob.publicKey);
		wgA.socket.send("early", port, "127.0.0.1");
		await waitFor(() => bridgeA.peerStats(bob.publicKey)?.toRelayDrops === 1, "drop");
	});
});
