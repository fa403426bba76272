import { CloseCode } from "@starling/relay-protocol";

/** Close code ws reports when a connection ended without a close frame. */
export const ABNORMAL_CLOSURE = 1006;

/**
 * Why a relay connection ended or a request was refused. `code` is the
 * WebSocket close code (CloseCode, or 1006 for a lost connection) or, for a
 * refused token refresh, the code of the relay's ERROR frame.
 */
export class RelayError extends Error {
	override name = "RelayError";

	constructor(
		readonly code: number,
		readonly reason: string,
	) {
		super(`${describeCode(code)} (${code})${reason ? `: ${reason}` : ""}`);
	}
}

function describeCode(code: number): string {
	switch (code) {
		case CloseCode.Normal:
			return "closed";
		case CloseCode.GoingAway:
			return "relay going away";
		case CloseCode.MessageTooBig:
			return "message too big";
		case CloseCode.TryAgainLater:
			return "relay full";
		case CloseCode.TokenInvalid:
			return "token invalid";
		case CloseCode.TokenExpired:
			return "token expired";
		case CloseCode.ProtocolError:
			return "protocol error";
		case CloseCode.HelloTimeout:
			return "hello timeout";
		case CloseCode.Replaced:
			return "replaced";
		case ABNORMAL_CLOSURE:
			return "connection lost";
		default:
			return "relay error";
	}
}
