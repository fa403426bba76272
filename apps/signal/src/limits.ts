/** Protocol limits shared by validation, the gRPC server options and the docs. */

/** Largest opaque body a peer may send (SignalSend.body), in bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

/**
 * gRPC's own receive limit. Well above the largest valid frame (a 64 KiB body
 * plus a few dozen bytes of framing) so every valid frame fits, while garbage
 * beyond it is refused by grpc-js with RESOURCE_EXHAUSTED before we decode it.
 */
export const MAX_RECEIVE_MESSAGE_BYTES = 256 * 1024;

/** WireGuard / Curve25519 public key length. */
export const PUBLIC_KEY_BYTES = 32;

/** Length of the random secret sealed into each challenge. */
export const CHALLENGE_SECRET_BYTES = 32;

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 15_000;

/** A stream silent for this many heartbeat intervals is treated as dead. */
export const MISSED_HEARTBEATS_BEFORE_DEAD = 3;

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Per-recipient bound on deliveries written but not yet flushed to the socket. */
export const DEFAULT_MAX_QUEUED_DELIVERY_BYTES = 1024 * 1024;
export const DEFAULT_MAX_QUEUED_DELIVERY_FRAMES = 1024;
