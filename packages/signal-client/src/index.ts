export {
	type BackoffOptions,
	backoffDelay,
	DEFAULT_BACKOFF,
	resolveBackoff,
} from "@starling/backoff";
export {
	MAX_BODY_BYTES,
	SignalClient,
	type SignalClientEvents,
	type SignalClientOptions,
	type SignalClientState,
	type SignalMessage,
} from "./client.js";
export { SignalError, toSignalError } from "./errors.js";
export { answerChallenge } from "./handshake.js";
export { PendingSends, type SendOutcome } from "./pending-sends.js";
export { DEFAULT_SIGNAL_PORT, parseSignalUrl, type SignalTarget } from "./target.js";
