export { backoffDelayMs, compareBytes, newSessionId, roleFor } from "./negotiation-math.js";
export { PeerConnection, type PeerConnectionOptions } from "./peer-connection.js";
export {
	type ConnCommand,
	type ConnConfig,
	type ConnInput,
	type ConnPath,
	type ConnRole,
	type ConnSnapshot,
	type ConnStateName,
	DEFAULT_CONN_CONFIG,
	type PeerEndpoint,
	type TimerName,
} from "./types.js";
