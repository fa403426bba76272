import { createSocket, type Socket } from "node:dgram";
import { isIP } from "node:net";
import { createLogger, type Logger } from "@starling/log";
import { PUBLIC_KEY_BYTES, peerIdHex } from "@starling/relay-protocol";
import type { RelayClient } from "./client.js";

export interface RelayUdpBridgeOptions {
	/** The relay connection packets go through (the bridge does not own it). */
	relay: RelayClient;
	/** WireGuard's listen port. */
	wireguardPort: number;
	/** Where WireGuard listens; default 127.0.0.1. */
	wireguardHost?: string;
	/** Address the per-peer sockets bind; default 127.0.0.1. */
	bindHost?: string;
	/**
	 * Send and receive buffer of each socket (the kernel caps it at
	 * net.core.{r,w}mem_max). Default 4 MiB.
	 */
	socketBufferBytes?: number;
	logger?: Logger;
}

export interface BridgePeerStats {
	/** Port of the bridge socket: WireGuard's endpoint for this peer is wireguardHost:port. */
	port: number;
	/** Datagrams from WireGuard sent into the relay. */
	toRelayPackets: number;
	toRelayBytes: number;
	/** Datagrams from WireGuard the relay client refused (not admitted, buffer full). */
	toRelayDrops: number;
	/** Packets from the relay handed to WireGuard. */
	toWireguardPackets: number;
	toWireguardBytes: number;
	/** Socket errors (e.g. ECONNREFUSED while WireGuard is not listening yet). */
	socketErrors: number;
}

interface PeerBridge {
	readonly publicKey: Uint8Array;
	readonly peerId: Uint8Array;
	readonly socket: Socket;
	readonly stats: BridgePeerStats;
}

const DEFAULT_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * Connects WireGuard to the relay with one local UDP socket per remote peer.
 * WireGuard's endpoint for peer P is set to 127.0.0.1:<addPeer(P)>; what it
 * sends there goes through the relay to P, and what P sends through the
 * relay comes back to WireGuard's listen port from that same socket, so
 * WireGuard sees one stable endpoint per peer. Each socket is connected to
 * WireGuard's port: nothing else on the host can inject packets through it.
 */
export class RelayUdpBridge {
	private readonly relay: RelayClient;
	private readonly wireguardPort: number;
	private readonly wireguardHost: string;
	private readonly bindHost: string;
	private readonly socketBufferBytes: number;
	private readonly logger: Logger;
	/** By peer id (latin1 string of its 32 bytes). */
	private readonly byPeerId = new Map<string, PeerBridge>();
	/** By public key (latin1 string), with pending binds. */
	private readonly byKey = new Map<string, Promise<PeerBridge>>();
	private readonly onPacket: (from: Uint8Array, payload: Buffer) => void;
	private unknownPeerPackets = 0;
	/** The peer of the last packet from the relay (see onPacket). */
	private lastBridge: PeerBridge | undefined;
	private closed = false;

	constructor(options: RelayUdpBridgeOptions) {
		if (
			!Number.isInteger(options.wireguardPort) ||
			options.wireguardPort < 1 ||
			options.wireguardPort > 65535
		) {
			throw new RangeError(`wireguardPort must be 1 to 65535, got ${options.wireguardPort}`);
		}
		this.relay = options.relay;
		this.wireguardPort = options.wireguardPort;
		this.wireguardHost = options.wireguardHost ?? "127.0.0.1";
		this.bindHost = options.bindHost ?? "127.0.0.1";
		this.socketBufferBytes = options.socketBufferBytes ?? DEFAULT_SOCKET_BUFFER_BYTES;
		this.logger = options.logger ?? createLogger("relay-bridge", { level: "silent" });
		this.onPacket = (from, payload) => {
			// Bulk traffic comes from one peer at a time: compare against the last
			// one before building a map key (an allocation per packet).
			const id = Buffer.from(from.buffer, from.byteOffset, 32);
			let bridge = this.lastBridge;
			if (bridge === undefined || !id.equals(bridge.peerId)) {
				bridge = this.byPeerId.get(id.toString("latin1"));
				if (bridge === undefined) {
					this.unknownPeerPackets++;
					return;
				}
				this.lastBridge = bridge;
			}
			bridge.stats.toWireguardPackets++;
			bridge.stats.toWireguardBytes += payload.length;
			bridge.socket.send(payload);
		};
		this.relay.on("packet", this.onPacket);
	}

	/**
	 * Binds (once) the socket for a remote peer and resolves with its port,
	 * WireGuard's endpoint for that peer on wireguardHost.
	 */
	async addPeer(publicKey: Uint8Array): Promise<number> {
		if (this.closed) throw new Error("bridge is closed");
		if (publicKey.length !== PUBLIC_KEY_BYTES) {
			throw new RangeError(`a WireGuard public key is ${PUBLIC_KEY_BYTES} bytes`);
		}
		const key = Buffer.from(publicKey).toString("latin1");
		let pending = this.byKey.get(key);
		if (pending === undefined) {
			pending = this.open(Uint8Array.from(publicKey));
			this.byKey.set(key, pending);
			pending.catch(() => {
				if (this.byKey.get(key) === pending) this.byKey.delete(key);
			});
		}
		return (await pending).stats.port;
	}

	/** Closes the socket of a peer; packets for it from the relay are then dropped. */
	async removePeer(publicKey: Uint8Array): Promise<void> {
		const key = Buffer.from(publicKey).toString("latin1");
		const pending = this.byKey.get(key);
		if (pending === undefined) return;
		this.byKey.delete(key);
		const bridge = await pending.catch(() => undefined);
		if (bridge === undefined) return;
		this.byPeerId.delete(Buffer.from(bridge.peerId).toString("latin1"));
		if (this.lastBridge === bridge) this.lastBridge = undefined;
		await closeSocket(bridge.socket);
	}

	/** The bridge port of a peer, once addPeer has bound it. */
	portOf(publicKey: Uint8Array): number | undefined {
		const peerId = this.relay.peerIdFor(publicKey);
		return this.byPeerId.get(Buffer.from(peerId).toString("latin1"))?.stats.port;
	}

	stats(): { peers: BridgePeerStats[]; unknownPeerPackets: number } {
		return {
			peers: [...this.byPeerId.values()].map((b) => ({ ...b.stats })),
			unknownPeerPackets: this.unknownPeerPackets,
		};
	}

	/** Stats of one peer's socket. */
	peerStats(publicKey: Uint8Array): BridgePeerStats | undefined {
		const peerId = this.relay.peerIdFor(publicKey);
		const bridge = this.byPeerId.get(Buffer.from(peerId).toString("latin1"));
		return bridge ? { ...bridge.stats } : undefined;
	}

	/** Closes every socket and stops listening to the relay (which stays open). */
	async close(): Promise<void> {
		if (this.closed) return;
		this.closed = true;
		this.relay.off("packet", this.onPacket);
		const pending = [...this.byKey.values()];
		this.byKey.clear();
		this.byPeerId.clear();
		this.lastBridge = undefined;
		await Promise.all(
			pending.map(async (p) => {
				const bridge = await p.catch(() => undefined);
				if (bridge) await closeSocket(bridge.socket);
			}),
		);
	}

	private async open(publicKey: Uint8Array): Promise<PeerBridge> {
		const family = isIP(this.wireguardHost) === 6 ? "udp6" : "udp4";
		const socket = createSocket({
			type: family,
			recvBufferSize: this.socketBufferBytes,
			sendBufferSize: this.socketBufferBytes,
		});
		try {
			await new Promise<void>((resolve, reject) => {
				socket.once("error", reject);
				socket.bind(0, this.bindHost, () => {
					socket.off("error", reject);
					resolve();
				});
			});
			await new Promise<void>((resolve, reject) => {
				socket.connect(this.wireguardPort, this.wireguardHost, (err?: Error) => {
					if (err) reject(err);
					else resolve();
				});
			});
		} catch (err) {
			socket.close();
			throw err;
		}
		const peerId = this.relay.peerIdFor(publicKey);
		const stats: BridgePeerStats = {
			port: socket.address().port,
			toRelayPackets: 0,
			toRelayBytes: 0,
			toRelayDrops: 0,
			toWireguardPackets: 0,
			toWireguardBytes: 0,
			socketErrors: 0,
		};
		const bridge: PeerBridge = { publicKey, peerId, socket, stats };
		socket.on("message", (msg: Buffer) => {
			if (this.relay.send(peerId, msg)) {
				stats.toRelayPackets++;
				stats.toRelayBytes += msg.length;
			} else {
				stats.toRelayDrops++;
			}
		});
		socket.on("error", (err: NodeJS.ErrnoException) => {
			// ECONNREFUSED: WireGuard is not listening (yet); the socket stays usable.
			stats.socketErrors++;
			this.logger.debug({ port: stats.port, code: err.code }, "bridge socket error");
		});
		if (this.closed) {
			await closeSocket(socket);
			throw new Error("bridge is closed");
		}
		this.byPeerId.set(Buffer.from(peerId).toString("latin1"), bridge);
		this.logger.debug(
			{ peer: peerIdHex(peerId).slice(0, 16), port: stats.port },
			"bridge socket bound",
		);
		return bridge;
	}
}

function closeSocket(socket: Socket): Promise<void> {
	return new Promise((resolve) => {
		try {
			socket.close(() => resolve());
		} catch {
			resolve(); // already closed
		}
	});
}
