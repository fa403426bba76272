/**
 * WebSocket close codes the relay uses. 1000-1015 are the standard ones;
 * 4000-4999 are private to this protocol.
 */
export const CloseCode = {
	/** The client closed, or the relay closed a connection replaced by itself. */
	Normal: 1000,
	/** The relay is shutting down; reconnect (to it or another relay) with backoff. */
	GoingAway: 1001,
	/** A frame over MAX_FRAME_BYTES (sent by ws itself). */
	MessageTooBig: 1009,
	/** The relay is at its connection limit; retry later. */
	TryAgainLater: 1013,
	/** The token is malformed, forged, or signed with another secret. */
	TokenInvalid: 4001,
	/** The token expired (at HELLO, or while connected without a TOKEN refresh). */
	TokenExpired: 4002,
	/** A frame that does not parse, a text message, or a frame not allowed in this state. */
	ProtocolError: 4003,
	/** No HELLO within the relay's hello timeout. */
	HelloTimeout: 4004,
	/** Another connection authenticated with the same peer id; the newest wins. */
	Replaced: 4005,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

/** True for closes after which retrying with the same token cannot succeed. */
export function needsNewToken(code: number): boolean {
	return code === CloseCode.TokenInvalid || code === CloseCode.TokenExpired;
}
