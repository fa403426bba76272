import { randomBytes } from "node:crypto";
import { createLogger } from "@starling/log";
import { RelayClient, type RelayClientOptions } from "@starling/relay-client";
import {
	encodeFrame,
	type Frame,
	issueRelayToken,
	PROTOCOL_VERSION,
	parseFrame,
	peerIdOf,
} from "@starling/relay-protocol";
import { parsePrometheusText } from "@starling/service-runtime";
import { type RawData, WebSocket } from "ws";
import { type RelayServer, type RelayServerOptions, startRelayServer } from "../src/server.js";

export const SECRET = "test secret, 32 bytes or so....!";
export const quietLogger = createLogger("relay-test", { level: "silent" });

export function startTestRelay(options: Partial<RelayServerOptions> = {}): Promise<RelayServer> {
	return startRelayServer({
		host: "127.0.0.1",
		port: 0,
		secret: SECRET,
		logger: quietLogger,
		...options,
	});
}

/** A WireGuard-like identity: a random public key and its relay peer id. */
export interface Identity {
	publicKey: Uint8Array;
	peerId: Uint8Array;
}

export function identity(): Identity {
	const publicKey = new Uint8Array(randomBytes(32));
	return { publicKey, peerId: peerIdOf(publicKey) };
}

export function tokenFor(id: Identity, ttlMs = 60_000, secret = SECRET): string {
	return issueRelayToken(secret, id.publicKey, Date.now() + ttlMs);
}

export function relayClient(
	relay: { url: string },
	id: Identity,
	options: Partial<RelayClientOptions> = {},
): RelayClient {
	return new RelayClient({ url: relay.url, token: tokenFor(id), reconnect: false, ...options });
}

/** Resolves with the next packet a client receives. */
export function nextPacket(
	client: RelayClient,
	timeoutMs = 2_000,
): Promise<{ from: Uint8Array; payload: Buffer }> {
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => {
			client.off("packet", onPacket);
			reject(new Error(`no packet within ${timeoutMs} ms`));
		}, timeoutMs);
		const onPacket = (from: Uint8Array, payload: Buffer): void => {
			clearTimeout(timer);
			client.off("packet", onPacket);
			resolve({ from: Uint8Array.from(from), payload: Buffer.from(payload) });
		};
		client.on("packet", onPacket);
	});
}

export async function waitFor(
	condition: () => boolean,
	what: string,
	timeoutMs = 3_000,
): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!condition()) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 10));
	}
}

export function encode(frame: Frame): Uint8Array {
	const result = encodeFrame(frame);
	if (!result.ok) throw new Error(result.error.message);
	return result.bytes;
}

/**
 * A WebSocket to the relay with none of RelayClient's manners: it sends
 * exactly what a test says and records every frame and the close.
 */
export class RawPeer {
	readonly ws: WebSocket;
	readonly frames: Frame[] = [];
	readonly opened: Promise<void>;
	readonly closed: Promise<{ code: number; reason: string }>;

	constructor(url: string, options: { autoPong?: boolean } = {}) {
		this.ws = new WebSocket(url, { perMessageDeflate: false, autoPong: options.autoPong ?? true });
		this.ws.binaryType = "nodebuffer";
		this.opened = new Promise((resolve, reject) => {
			this.ws.once("open", () => resolve());
			this.ws.once("error", reject);
		});
		this.closed = new Promise((resolve) => {
			this.ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() }));
		});
		this.ws.on("error", () => {});
		this.ws.on("message", (data: RawData) => {
			const parsed = parseFrame(data as Buffer);
			if (parsed.ok) this.frames.push(parsed.frame);
		});
	}

	/** Opens and sends HELLO with `token`. */
	static async hello(
		url: string,
		token: string,
		options: { autoPong?: boolean } = {},
	): Promise<RawPeer> {
		const peer = new RawPeer(url, options);
		await peer.opened;
		peer.send({ type: "hello", version: PROTOCOL_VERSION, token });
		return peer;
	}

	/** Opens, sends HELLO and waits for WELCOME. */
	static async admitted(
		url: string,
		token: string,
		options: { autoPong?: boolean } = {},
	): Promise<RawPeer> {
		const peer = await RawPeer.hello(url, token, options);
		await waitFor(() => peer.frames.some((f) => f.type === "welcome"), "WELCOME");
		return peer;
	}

	send(frame: Frame): void {
		this.ws.send(encode(frame), { binary: true });
	}

	data(): Frame[] {
		return this.frames.filter((f) => f.type === "data");
	}

	close(): void {
		this.ws.terminate();
	}
}

/** Fetches a metric's value from Prometheus text, by name and labels as served. */
export function metricValue(text: string, nameWithLabels: string): number {
	const value = parsePrometheusText(text).get(nameWithLabels);
	if (value === undefined) throw new Error(`metric ${nameWithLabels} not found`);
	return value;
}
