/**
 * The UDP socket on a peer's ICE port once ICE has handed the port to
 * WireGuard: the port rewrite sends WireGuard's packets to WireGuard's own
 * port and leaves STUN here. It answers STUN binding requests (the peer's
 * path probes) and sends ours, always from the port the NATs have seen.
 */

import { createSocket, type Socket } from "node:dgram";
import {
	decodeStunMessage,
	encodeBindingRequest,
	encodeBindingResponse,
	isStunMessage,
	MessageType,
} from "../netcheck/stun-codec.js";

/** The ICE worker releases its port a few ms after closing (docs/networking.md, "Handing the ICE port to WireGuard"). */
const BIND_ATTEMPTS = 40;
const BIND_RETRY_MS = 50;

export class ProbeSocket {
	private closed = false;

	private constructor(
		private readonly socket: Socket,
		readonly port: number,
	) {}

	/**
	 * Binds `port` on all addresses, retrying while the ICE worker still
	 * holds it. `onAnswer` gets the transaction id of every binding response.
	 */
	static async open(
		port: number,
		onAnswer: (transactionId: Uint8Array) => void,
	): Promise<ProbeSocket> {
		let lastError: unknown;
		for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
			const socket = createSocket({ type: "udp4" });
			try {
				await new Promise<void>((resolve, reject) => {
					socket.once("error", reject);
					socket.bind(port, () => {
						socket.off("error", reject);
						resolve();
					});
				});
			} catch (error) {
				socket.close();
				lastError = error;
				if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") break;
				await new Promise((r) => setTimeout(r, BIND_RETRY_MS));
				continue;
			}
			const probe = new ProbeSocket(socket, port);
			socket.on("error", () => {
				// ICMP errors (peer gone) surface here; silence is what the probe judges.
			});
			socket.on("message", (data, from) =>
				probe.onMessage(data, from.address, from.port, onAnswer),
			);
			return probe;
		}
		throw new Error(`cannot bind the ICE port ${port} for path probes: ${String(lastError)}`);
	}

	/** Sends one probe (a STUN binding request) to the peer's address. */
	send(transactionId: Uint8Array, address: string, port: number): void {
		if (this.closed) return;
		this.socket.send(encodeBindingRequest(transactionId), port, address);
	}

	close(): void {
		if (this.closed) return;
		this.closed = true;
		this.socket.close();
	}

	private onMessage(
		data: Buffer,
		address: string,
		port: number,
		onAnswer: (transactionId: Uint8Array) => void,
	): void {
		if (!isStunMessage(data)) return;
		const decoded = decodeStunMessage(data);
		if (!decoded.ok) return;
		const { message } = decoded;
		if (message.type === MessageType.BindingRequest) {
			if (this.closed) return;
			this.socket.send(
				encodeBindingResponse(message.transactionId, {
					xorMappedAddress: { family: 4, address, port },
				}),
				port,
				address,
			);
		} else if (
			message.type === MessageType.BindingSuccess ||
			message.type === MessageType.BindingError
		) {
			onAnswer(message.transactionId);
		}
	}
}
