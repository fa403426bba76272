export {
	type BackoffOptions,
	backoffDelay,
	DEFAULT_BACKOFF,
	resolveBackoff,
} from "@starling/backoff";
export { CloseCode, peerIdOf } from "@starling/relay-protocol";
export {
	type BridgePeerStats,
	RelayUdpBridge,
	type RelayUdpBridgeOptions,
} from "./bridge.js";
export {
	RelayClient,
	type RelayClientEvents,
	type RelayClientOptions,
	type RelayClientState,
	type RelayClientStats,
	type RelayWelcome,
} from "./client.js";
export { ABNORMAL_CLOSURE, RelayError } from "./errors.js";
export { probeRelay, type RelayProbeOptions, type RelayProbeResult } from "./probe.js";
