/**
 * Why the agent refused or failed an operation, in the agent's own terms.
 * The daemon's gRPC edge (daemon-server.ts) maps each kind to a status code.
 */
export type AgentErrorKind =
	/** A flag or request field has a value the agent cannot use. */
	| "invalid-argument"
	/** `up` while already up. */
	| "already-up"
	/** The operation needs the interface up (e.g. netcheck from the map). */
	| "not-up"
	/** Something on this machine must be fixed first (e.g. nftables unusable). */
	| "host-not-ready"
	/** Management is unreachable, or sent no map in time. */
	| "management-unreachable"
	/** Management or signal presented a TLS certificate this machine does not accept. */
	| "server-not-trusted"
	/** Management refused the login (wrong or used-up setup key, peer removed). */
	| "login-refused"
	/** Management answered the login with another error. */
	| "login-failed"
	/** The daemon lacks a privilege (it must run as root). */
	| "permission-denied"
	/** Anything else: a bug or an unexpected failure of a tool. */
	| "internal";

/** A refusal meant for the CLI user: one readable line and its kind. */
export class AgentError extends Error {
	override name = "AgentError";
	constructor(
		readonly kind: AgentErrorKind,
		message: string,
	) {
		super(message);
	}
}
