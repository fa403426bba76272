import * as grpc from "@grpc/grpc-js";
import { EnvelopeChannel, type KeyPair } from "@starling/crypto";
import { applyNetworkMapDelta, DeltaGapError } from "@starling/netmap";
import {
	LoginRequest,
	LoginResponse,
	LogoutRequest,
	LogoutResponse,
	ManagementServiceClient,
	type NetworkMap,
	type PeerSystemMeta,
	type SealedEnvelope,
	SyncRequest,
	SyncResponse,
} from "@starling/proto";
import { parseGrpcTarget } from "./target.js";

export interface ManagementClientOptions {
	/** e.g. "http://127.0.0.1:33073" */
	url: string;
	/** This peer's WireGuard key pair; the private key never leaves the process. */
	keyPair: KeyPair;
	/** Per-call deadline for unary calls. */
	timeoutMs?: number;
	channelOptions?: grpc.ChannelOptions;
}

/** A failed call, with the gRPC status code the server (or the channel) gave. */
export class ManagementCallError extends Error {
	override name = "ManagementCallError";
	constructor(
		readonly code: grpc.status,
		message: string,
	) {
		super(message);
	}
}

function callError(err: grpc.ServiceError | Error): ManagementCallError {
	const code = "code" in err && typeof err.code === "number" ? err.code : grpc.status.UNKNOWN;
	const details =
		"details" in err && typeof err.details === "string" && err.details ? err.details : err.message;
	return new ManagementCallError(code, details);
}

export interface SyncHandlers {
	/** Called with the whole current map after every full map or applied delta. */
	onMap(map: NetworkMap, update: "full" | "delta"): void;
	onHeartbeat?(serverTimeUnixMs: number): void;
	/** The stream ended; `error` is undefined for a clean end. */
	onEnd?(error: ManagementCallError | undefined): void;
}

export interface SyncStream {
	/** The map as last received, or undefined before the first full map. */
	readonly map: NetworkMap | undefined;
	/** Bytes of sealed envelopes received on this stream (for benchmarks). */
	readonly bytesReceived: number;
	close(): void;
}

/**
 * The agent's control client for management: fetches the server key, logs
 * in, and keeps a network map current from a Sync stream. All bodies are
 * sealed between this peer's WireGuard key and the server key.
 */
export class ManagementClient {
	private readonly client: ManagementServiceClient;
	private channel: EnvelopeChannel | undefined;
	private readonly timeoutMs: number;

	constructor(private readonly options: ManagementClientOptions) {
		const target = parseGrpcTarget(options.url);
		this.client = new ManagementServiceClient(target.address, target.credentials, {
			"grpc.keepalive_time_ms": 30_000,
			"grpc.keepalive_timeout_ms": 10_000,
			"grpc.max_receive_message_length": 16 * 1024 * 1024,
			...options.channelOptions,
		});
		this.timeoutMs = options.timeoutMs ?? 10_000;
	}

	private deadline(): Date {
		return new Date(Date.now() + this.timeoutMs);
	}

	async getServerKey(): Promise<Uint8Array> {
		return new Promise((resolve, reject) => {
			this.client.getServerKey(
				{},
				new grpc.Metadata(),
				{ deadline: this.deadline() },
				(err, res) => {
					if (err) return reject(callError(err));
					if (res.publicKey.length !== 32) {
						return reject(
							new ManagementCallError(grpc.status.INTERNAL, "server key is not 32 bytes"),
						);
					}
					resolve(res.publicKey);
				},
			);
		});
	}

	private async envelopeChannel(): Promise<EnvelopeChannel> {
		if (!this.channel) {
			const serverKey = await this.getServerKey();
			this.channel = new EnvelopeChannel(
				this.options.keyPair.publicKey,
				this.options.keyPair.privateKey,
				serverKey,
			);
		}
		return this.channel;
	}

	/** Registers (with a setup key) or logs back in (without one). */
	async login(setupKey: string, meta: PeerSystemMeta): Promise<LoginResponse> {
		const channel = await this.envelopeChannel();
		const request = channel.seal(LoginRequest, { setupKey, meta });
		const response = await new Promise<SealedEnvelope>((resolve, reject) => {
			this.client.login(request, new grpc.Metadata(), { deadline: this.deadline() }, (err, res) =>
				err ? reject(callError(err)) : resolve(res),
			);
		});
		return channel.open(LoginResponse, response);
	}

	/** Deregisters this peer; joining again needs a setup key. */
	async logout(): Promise<void> {
		const channel = await this.envelopeChannel();
		const request = channel.seal(LogoutRequest, {});
		const response = await new Promise<SealedEnvelope>((resolve, reject) => {
			this.client.logout(request, new grpc.Metadata(), { deadline: this.deadline() }, (err, res) =>
				err ? reject(callError(err)) : resolve(res),
			);
		});
		channel.open(LogoutResponse, response);
	}

	/**
	 * Opens one Sync stream. Applies deltas to the map; when a delta does not
	 * fit (a gap), it ends the stream with onEnd(error) so the caller
	 * reconnects and receives a full map.
	 */
	async sync(meta: PeerSystemMeta | undefined, handlers: SyncHandlers): Promise<SyncStream> {
		const channel = await this.envelopeChannel();
		// applyNetworkMapDelta folds firewall changes, so management may send them.
		const call = this.client.sync(
			channel.seal(SyncRequest, { meta, acceptsFirewallChanges: true }),
		);
		const state: { map: NetworkMap | undefined; bytesReceived: number; ended: boolean } = {
			map: undefined,
			bytesReceived: 0,
			ended: false,
		};
		const end = (error: ManagementCallError | undefined) => {
			if (state.ended) return;
			state.ended = true;
			handlers.onEnd?.(error);
		};
		call.on("data", (envelope: SealedEnvelope) => {
			if (state.ended) return;
			try {
				state.bytesReceived +=
					envelope.ciphertext.length + envelope.nonce.length + envelope.senderPublicKey.length;
				const { update } = channel.open(SyncResponse, envelope);
				if (update?.$case === "full") {
					state.map = update.value;
					handlers.onMap(update.value, "full");
				} else if (update?.$case === "delta") {
					if (!state.map) throw new DeltaGapError(0, update.value.baseSerial);
					state.map = applyNetworkMapDelta(state.map, update.value);
					handlers.onMap(state.map, "delta");
				} else if (update?.$case === "heartbeat") {
					handlers.onHeartbeat?.(update.value.serverTimeUnixMs);
				}
			} catch (err) {
				call.cancel();
				end(new ManagementCallError(grpc.status.DATA_LOSS, (err as Error).message));
			}
		});
		call.on("error", (err: grpc.ServiceError) => end(callError(err)));
		call.on("end", () => end(undefined));
		return {
			get map() {
				return state.map;
			},
			get bytesReceived() {
				return state.bytesReceived;
			},
			close() {
				state.ended = true;
				call.cancel();
			},
		};
	}

	close(): void {
		this.client.close();
	}
}
