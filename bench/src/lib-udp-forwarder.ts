// The relay benchmark's baseline forwarder, run as its own process (forked by
// relay.ts) so that, like the relay, it has an event loop and a core of its
// own: for each pair it receives the sender's datagrams on one socket and
// sends each, unchanged, to the receiver from a second socket connected to it.
// That is the relay's job (receive, look up the destination, send) over plain
// UDP, without framing, WebSockets, TCP or authentication.
//
// Protocol over the IPC channel: the parent sends { receiverPorts: number[] };
// the forwarder answers { inboundPorts: number[] } (one per receiver, same
// order), and answers { drops } to "stats". It exits on disconnect.
import { createSocket, type Socket } from "node:dgram";

/** Sends in flight per outbound socket before the forwarder drops (as the relay does for a slow receiver). */
const MAX_IN_FLIGHT = 64;
const BUFFER_BYTES = 4 << 20;

let drops = 0;
const sockets: Socket[] = [];

async function bound(): Promise<Socket> {
	const socket = createSocket({
		type: "udp4",
		recvBufferSize: BUFFER_BYTES,
		sendBufferSize: BUFFER_BYTES,
	});
	await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
	sockets.push(socket);
	return socket;
}

async function forwardTo(receiverPort: number): Promise<number> {
	const inbound = await bound();
	const outbound = await bound();
	await new Promise<void>((resolve) => outbound.connect(receiverPort, "127.0.0.1", resolve));
	let inFlight = 0;
	const sent = () => {
		inFlight--;
	};
	inbound.on("message", (datagram) => {
		if (inFlight >= MAX_IN_FLIGHT) {
			drops++;
			return;
		}
		inFlight++;
		outbound.send(datagram, sent);
	});
	return inbound.address().port;
}

process.on("message", (message: { receiverPorts?: number[] } | "stats") => {
	if (message === "stats") {
		process.send?.({ drops });
		return;
	}
	if (message.receiverPorts) {
		void Promise.all(message.receiverPorts.map(forwardTo)).then((inboundPorts) =>
			process.send?.({ inboundPorts }),
		);
	}
});
process.on("disconnect", () => {
	for (const s of sockets) s.close();
	process.exit(0);
});
