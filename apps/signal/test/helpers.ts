import {
	Client,
	type ClientDuplexStream,
	credentials,
	type StatusObject,
	status,
} from "@grpc/grpc-js";
import { BoxChannel, type KeyPair } from "@starling/crypto";
import { createLogger } from "@starling/log";
import { SignalClientFrame, SignalServerFrame, SignalServiceService } from "@starling/proto";
import {
	SignalClient,
	type SignalClientOptions,
	type SignalMessage,
} from "@starling/signal-client";
import { afterEach, expect } from "vitest";
import { type SignalServer, type SignalServerOptions, startSignalServer } from "../src/server.js";

export const quietLogger = createLogger("signal-test", { level: "silent" });

export function startTestServer(options: SignalServerOptions = {}): Promise<SignalServer> {
	return startSignalServer({ host: "127.0.0.1", port: 0, logger: quietLogger, ...options });
}

/**
 * Servers, clients and raw streams a test starts, closed after each test,
 * newest first. Call once per describe block.
 */
export function closedAfterEach() {
	const cleanup: (() => unknown)[] = [];
	afterEach(async () => {
		for (const step of cleanup.splice(0).reverse()) await step();
	});
	return {
		async server(options: SignalServerOptions = {}): Promise<SignalServer> {
			const started = await startTestServer(options);
			cleanup.push(() => started.close());
			return started;
		},
		client(...args: Parameters<typeof signalClient>): SignalClient {
			const created = signalClient(...args);
			cleanup.push(() => created.close());
			return created;
		},
		raw(server: { port: number }): RawStream {
			const stream = new RawStream(server.port);
			cleanup.push(() => stream.close());
			return stream;
		},
	};
}

export function signalClient(
	server: { port: number },
	keyPair: KeyPair,
	options: Partial<SignalClientOptions> = {},
): SignalClient {
	return new SignalClient({
		url: `127.0.0.1:${server.port}`,
		keyPair,
		reconnect: false,
		...options,
	});
}

/** Resolves with the next message a client receives. */
export function nextMessage(client: SignalClient, timeoutMs = 2_000): Promise<SignalMessage> {
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => {
			client.off("message", onMessage);
			reject(new Error(`no message within ${timeoutMs} ms`));
		}, timeoutMs);
		const onMessage = (message: SignalMessage): void => {
			clearTimeout(timer);
			resolve(message);
		};
		client.once("message", onMessage);
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

const path = SignalServiceService.connectStream.path;

/**
 * A ConnectStream call at the byte level, with nothing of SignalClient's
 * manners: it sends exactly what a test says, including garbage, and never
 * answers pings on its own.
 */
export class RawStream {
	readonly call: ClientDuplexStream<Buffer, Buffer>;
	/** Resolves with the call's final status. */
	readonly ended: Promise<StatusObject>;
	private readonly client: Client;
	private readonly frames: SignalServerFrame[] = [];
	private waiter: (() => void) | undefined;

	constructor(port: number) {
		this.client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
		this.call = this.client.makeBidiStreamRequest(
			path,
			(bytes: Buffer) => bytes,
			(bytes: Buffer) => bytes,
		);
		this.call.on("data", (bytes: Buffer) => {
			this.frames.push(SignalServerFrame.decode(bytes));
			this.waiter?.();
		});
		this.call.on("error", () => {});
		this.ended = new Promise((resolve) => {
			this.call.on("status", (ending: StatusObject) => {
				resolve(ending);
				this.waiter?.();
			});
		});
	}

	sendBytes(bytes: Uint8Array): void {
		this.call.write(Buffer.from(bytes));
	}

	sendFrame(frame: SignalClientFrame["frame"]): void {
		this.sendBytes(SignalClientFrame.encode({ frame }).finish());
	}

	/** The next frame from the server, skipping pings unless asked for. */
	async nextFrame(timeoutMs = 2_000, skipPings = true): Promise<SignalServerFrame> {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			const frame = this.frames.shift();
			if (frame) {
				if (skipPings && frame.frame?.$case === "ping") continue;
				return frame;
			}
			const left = deadline - Date.now();
			if (left <= 0) throw new Error(`no frame within ${timeoutMs} ms`);
			await new Promise<void>((resolve) => {
				const timer = setTimeout(resolve, left);
				this.waiter = () => {
					clearTimeout(timer);
					this.waiter = undefined;
					resolve();
				};
			});
		}
	}

	/** Runs hello → challenge → response → ready with a real key pair. */
	async authenticate(keyPair: KeyPair): Promise<void> {
		this.sendFrame({ $case: "hello", value: { publicKey: keyPair.publicKey } });
		const challenge = (await this.nextFrame()).frame;
		if (challenge?.$case !== "challenge")
			throw new Error(`expected challenge, got ${challenge?.$case}`);
		const { ephemeralPublicKey, nonce, sealedSecret } = challenge.value;
		const secret = new BoxChannel(keyPair.privateKey, ephemeralPublicKey).open(nonce, sealedSecret);
		this.sendFrame({ $case: "challengeResponse", value: { secret } });
		const ready = (await this.nextFrame()).frame;
		if (ready?.$case !== "ready") throw new Error(`expected ready, got ${ready?.$case}`);
	}

	/** Sends one SignalSend and returns its result frame. */
	async send(
		id: number,
		to: Uint8Array,
		body: Uint8Array,
	): Promise<{ code: number; message: string }> {
		this.sendFrame({ $case: "send", value: { id, to, body } });
		const result = (await this.nextFrame()).frame;
		if (result?.$case !== "sendResult")
			throw new Error(`expected send_result, got ${result?.$case}`);
		expect(result.value.id).toBe(id);
		return result.value;
	}

	close(): void {
		this.call.cancel();
		this.client.close();
	}
}

/** Matches a final status by code name and a fragment of its details. */
export function statusOf(ending: StatusObject): string {
	return `${status[ending.code]}: ${ending.details}`;
}
