import { isIP } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { EnvelopeChannel, encodeKey, KEY_LENGTH, type KeyPair, OpenError } from "@starling/crypto";
import type { Logger } from "@starling/log";
import {
	LoginRequest,
	LoginResponse,
	LogoutRequest,
	LogoutResponse,
	type ManagementServiceServer,
	ManagementServiceService,
	type PeerSystemMeta,
	PROTOCOL_VERSION,
	type SealedEnvelope,
	SyncRequest,
	SyncResponse,
} from "@starling/proto";
import { AppError } from "../app/errors.js";
import type { NetworkChangeSink } from "../app/events.js";
import { deletePeer, loginPeer, recordPeerMeta } from "../app/peers.js";
import { type ServiceEndpoints, selfConfigOf } from "../core/network-map.js";
import type { PeerSystemInfo } from "../domain/types.js";
import { loginFailure } from "../metrics/login-result.js";
import type { ManagementMetrics } from "../metrics/management-metrics.js";
import type { Store, StoreWrites } from "../store/store.js";
import { StoreUnavailableError } from "../store/store.js";
import type { OutputBudget } from "../sync/output-budget.js";
import type { SyncHub } from "../sync/sync-hub.js";
import { UndecodableRequest, withSafeDeserializers } from "./safe-definition.js";

export interface ManagementGrpcDeps {
	store: Store;
	/** Where logins of known peers are recorded (a GroupCommit in front of the store); the store by default. */
	loginWrites?: StoreWrites;
	hub: SyncHub;
	/** Told of every committed change (the hub, then the other instances). */
	sink: NetworkChangeSink;
	serverKey: KeyPair;
	endpoints: ServiceEndpoints;
	outputBudget: OutputBudget;
	logger: Logger;
	now?: () => Date;
	/** Counts logins and Sync traffic; nothing is counted without it. */
	metrics?: Pick<ManagementMetrics, "login" | "syncMessageSent">;
}

class GrpcStatusError extends Error {
	constructor(
		readonly code: grpc.status,
		message: string,
	) {
		super(message);
	}
}

const MAX_META_FIELD = 256;

/**
 * The caller's address without its port, from grpc-js's `getPeer()`
 * ("<address>:<port>", "unknown" without a socket), as NetBird's
 * connection_ip shows it: an IPv4 client of a dual-stack socket is
 * "::ffff:a.b.c.d" there, and plain a.b.c.d here.
 */
export function remoteIp(peer: string): string {
	const colon = peer.lastIndexOf(":");
	if (colon <= 0 || !/^[0-9]+$/.test(peer.slice(colon + 1))) return "";
	let address = peer.slice(0, colon);
	if (address.startsWith("[") && address.endsWith("]")) address = address.slice(1, -1);
	if (address.startsWith("::ffff:") && address.includes(".")) address = address.slice(7);
	return isIP(address) ? address : "";
}

function toSystemInfo(meta: PeerSystemMeta | undefined, connectionIp: string): PeerSystemInfo {
	const field = (name: keyof PeerSystemMeta) => {
		const value = meta?.[name] ?? "";
		if (value.length > MAX_META_FIELD) {
			throw new GrpcStatusError(
				grpc.status.INVALID_ARGUMENT,
				`meta.${name} is longer than ${MAX_META_FIELD} characters`,
			);
		}
		return value;
	};
	return {
		hostname: field("hostname"),
		os: field("os"),
		osVersion: field("osVersion"),
		kernelVersion: field("kernelVersion"),
		agentVersion: field("agentVersion"),
		connectionIp,
	};
}

/** Maps anything thrown by a handler to a gRPC status the agent can act on. */
function toServiceError(err: unknown, logger: Logger): Partial<grpc.StatusObject> {
	if (err instanceof GrpcStatusError) return { code: err.code, details: err.message };
	if (err instanceof OpenError)
		return {
			code: grpc.status.UNAUTHENTICATED,
			details: `cannot open sealed body: ${err.message}`,
		};
	if (err instanceof AppError) {
		const code =
			err.status === 403
				? grpc.status.PERMISSION_DENIED
				: err.status === 404
					? grpc.status.NOT_FOUND
					: err.status === 401
						? grpc.status.UNAUTHENTICATED
						: grpc.status.INVALID_ARGUMENT;
		return { code, details: err.message };
	}
	if (err instanceof StoreUnavailableError) {
		// Logged once per outage by the store; the agent retries with backoff.
		return {
			code: grpc.status.UNAVAILABLE,
			details: "the database is unavailable; try again later",
		};
	}
	logger.error({ err }, "management gRPC handler failed");
	return { code: grpc.status.INTERNAL, details: "internal error" };
}

/** Opens a request envelope sealed by an agent to the server key. */
function openRequest<T>(
	serverKey: KeyPair,
	envelope: SealedEnvelope,
	codec: { encode(m: T): { finish(): Uint8Array }; decode(b: Uint8Array): T },
): { channel: EnvelopeChannel; body: T; wgPublicKey: string } {
	if ((envelope as unknown) instanceof UndecodableRequest) {
		const reason = (envelope as unknown as UndecodableRequest).reason;
		throw new GrpcStatusError(
			grpc.status.INVALID_ARGUMENT,
			`request is not a SealedEnvelope: ${reason}`,
		);
	}
	if (!envelope || envelope.senderPublicKey.length !== KEY_LENGTH) {
		throw new GrpcStatusError(
			grpc.status.INVALID_ARGUMENT,
			"sender_public_key must be a 32-byte WireGuard public key",
		);
	}
	const channel = new EnvelopeChannel(
		serverKey.publicKey,
		serverKey.privateKey,
		envelope.senderPublicKey,
	);
	const body = channel.open(codec, envelope);
	return { channel, body, wgPublicKey: encodeKey(envelope.senderPublicKey) };
}

export function createManagementService(deps: ManagementGrpcDeps): ManagementServiceServer {
	const now = deps.now ?? (() => new Date());
	const { logger } = deps;

	return {
		getServerKey(_call, callback) {
			callback(null, {
				publicKey: deps.serverKey.publicKey,
				serverTimeUnixMs: Date.now(),
				protocolVersion: PROTOCOL_VERSION,
			});
		},

		login(call, callback) {
			let setupKeyGiven = false;
			(async () => {
				const { channel, body, wgPublicKey } = openRequest(
					deps.serverKey,
					call.request,
					LoginRequest,
				);
				setupKeyGiven = body.setupKey.length > 0;
				if (body.setupKey.length > 256) {
					throw new GrpcStatusError(grpc.status.INVALID_ARGUMENT, "setup_key is too long");
				}
				const { peer, registered } = await loginPeer(
					deps.store,
					deps.sink,
					{
						wgPublicKey,
						setupKey: body.setupKey,
						system: toSystemInfo(body.meta, remoteIp(call.getPeer())),
					},
					now(),
					deps.loginWrites,
				);
				const account = await deps.store.getAccount(peer.accountId);
				if (!account)
					throw new GrpcStatusError(grpc.status.NOT_FOUND, "the peer's account no longer exists");
				logger.info(
					{ peerId: peer.id, registered },
					registered ? "peer registered" : "peer logged in",
				);
				const response: LoginResponse = {
					self: selfConfigOf(peer, account),
					signal: deps.endpoints.signal,
					stunServers: deps.endpoints.stunServers,
					relay: deps.endpoints.relayFor?.(peer),
					registered,
				};
				const sealed = channel.seal(LoginResponse, response);
				deps.metrics?.login(registered ? "registered" : "logged_in");
				return sealed;
			})().then(
				(envelope) => callback(null, envelope),
				(err) => {
					const status = toServiceError(err, logger);
					deps.metrics?.login(loginFailure(status.code, setupKeyGiven));
					callback(status);
				},
			);
		},

		logout(call, callback) {
			(async () => {
				const { channel, wgPublicKey } = openRequest(deps.serverKey, call.request, LogoutRequest);
				const peer = await deps.store.getPeerByPublicKey(wgPublicKey);
				if (!peer) throw new GrpcStatusError(grpc.status.NOT_FOUND, "peer is not registered");
				await deletePeer(
					deps.store,
					deps.sink,
					peer.accountId,
					peer.id,
					{ id: peer.id, name: peer.name, email: "" },
					now(),
				);
				logger.info({ peerId: peer.id }, "peer logged out and was deregistered");
				return channel.seal(LogoutResponse, {});
			})().then(
				(envelope) => callback(null, envelope),
				(err) => callback(toServiceError(err, logger)),
			);
		},

		sync(call) {
			let unsubscribe: (() => Promise<void>) | undefined;
			let closed = false;
			const release = () => {
				const u = unsubscribe;
				unsubscribe = undefined;
				if (u) void u().catch((err) => logger.error({ err }, "sync unsubscribe failed"));
			};
			const onClosed = () => {
				closed = true;
				release();
			};
			call.on("cancelled", onClosed);
			call.on("close", onClosed);
			call.on("finish", onClosed);
			// grpc-js sends the status of an 'error' event and ends the stream.
			const endWithStatus = (code: grpc.status, details: string) => {
				if (closed) return;
				closed = true;
				call.emit("error", { code, details });
				release();
			};
			(async () => {
				const { channel, body, wgPublicKey } = openRequest(
					deps.serverKey,
					call.request,
					SyncRequest,
				);
				const peer = await deps.store.getPeerByPublicKey(wgPublicKey);
				if (!peer) {
					throw new GrpcStatusError(
						grpc.status.PERMISSION_DENIED,
						"peer is not registered: log in with a setup key first",
					);
				}
				const meta = body.meta ? toSystemInfo(body.meta, remoteIp(call.getPeer())) : undefined;
				const current = meta?.hostname
					? ((await recordPeerMeta(deps.loginWrites ?? deps.store, peer, meta)) ?? peer)
					: peer;
				if (closed) return;
				// Backpressure by bytes, not messages: grpc-js buffers 16 messages
				// per stream whatever their size.
				const budget = deps.outputBudget.stream();
				call.on("close", () => budget.close());
				unsubscribe = await deps.hub.subscribe(current, {
					acceptsFirewallChanges: body.acceptsFirewallChanges,
					write: (update) => {
						if (closed) return;
						const envelope = channel.seal(SyncResponse, update);
						call.write(envelope, budget.queued(envelope.ciphertext.length));
						const kind = update.update?.$case;
						if (kind) deps.metrics?.syncMessageSent(kind, envelope.ciphertext.length);
					},
					writable: () => budget.writable(),
					onWritable: (cb) => budget.onWritable(cb),
					end: (code, message) =>
						endWithStatus(
							code === "deleted"
								? grpc.status.PERMISSION_DENIED
								: code === "replaced"
									? grpc.status.ABORTED
									: grpc.status.UNAVAILABLE,
							message,
						),
				});
				if (closed) release();
				else logger.info({ peerId: peer.id }, "sync stream opened");
			})().catch((err) => {
				const status = toServiceError(err, logger);
				endWithStatus(status.code ?? grpc.status.INTERNAL, status.details ?? "internal error");
			});
		},
	};
}

export const managementServiceDefinition = withSafeDeserializers(ManagementServiceService);
