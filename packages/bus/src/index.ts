export {
	type Bus,
	BusClosedError,
	BusConnectError,
	type BusHandler,
	BusNoResponderError,
	type BusResponder,
	type BusState,
	type BusSubscription,
	BusTimeoutError,
	BusUnavailableError,
	type SubscribeOptions,
} from "./bus.js";
export { InProcessBus, type InProcessBusOptions } from "./in-process.js";
export { NatsBus, type NatsBusOptions } from "./nats.js";
export {
	type NatsCredentials,
	natsServerProblem,
	redactServerUrl,
	splitCredentials,
} from "./servers.js";
export { isPublishSubject, isSubscribeSubject, subjectMatches } from "./subject.js";
