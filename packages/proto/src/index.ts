// Wire types generated from proto/ (see scripts/gen-proto.sh). Every message
// between agents and services is one of these; nothing is hand-copied.
export * from "./gen/starling/v1/daemon.js";
export * from "./gen/starling/v1/envelope.js";
export * from "./gen/starling/v1/management.js";
export * from "./gen/starling/v1/network_map.js";
export * from "./gen/starling/v1/peer_negotiation.js";
export * from "./gen/starling/v1/signal.js";
export * from "./gen/starling/v1/signal_bus.js";

/** Bumped when the sealed-body format or its semantics change incompatibly. */
export const PROTOCOL_VERSION = 1;
