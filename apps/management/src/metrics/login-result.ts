import { status } from "@grpc/grpc-js";

/** How an agent's Login ended: the label of the login counter (a fixed set). */
export const LOGIN_RESULTS = [
	"registered",
	"logged_in",
	"setup_key_missing",
	"setup_key_refused",
	"bad_request",
	"bad_seal",
	"account_missing",
	"error",
] as const;
export type LoginResult = (typeof LOGIN_RESULTS)[number];

/**
 * The reason label for a Login refused with `code` (the gRPC status the agent
 * got). A new key without a setup key and a setup key that does not register
 * (unknown, revoked, expired, used up) are both PERMISSION_DENIED; whether
 * the request carried a setup key tells them apart.
 */
export function loginFailure(code: status | undefined, setupKeyGiven: boolean): LoginResult {
	switch (code) {
		case status.PERMISSION_DENIED:
			return setupKeyGiven ? "setup_key_refused" : "setup_key_missing";
		case status.INVALID_ARGUMENT:
			return "bad_request";
		case status.UNAUTHENTICATED:
			return "bad_seal";
		case status.NOT_FOUND:
			return "account_missing";
		default:
			return "error";
	}
}
