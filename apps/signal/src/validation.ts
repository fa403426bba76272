import { status } from "@grpc/grpc-js";
import type { SignalSend } from "@starling/proto";
import { MAX_BODY_BYTES, PUBLIC_KEY_BYTES } from "./limits.js";

/** Why a send is refused before routing: a gRPC status code and a readable reason. */
export interface SendRejection {
	code: status;
	message: string;
}

/** Checks the fields of a SignalSend that do not depend on who is connected. */
export function validateSend(send: SignalSend): SendRejection | undefined {
	if (send.to.length !== PUBLIC_KEY_BYTES) {
		return {
			code: status.INVALID_ARGUMENT,
			message: `to must be a ${PUBLIC_KEY_BYTES}-byte public key, got ${send.to.length} bytes`,
		};
	}
	if (send.body.length === 0) {
		return { code: status.INVALID_ARGUMENT, message: "body is empty" };
	}
	if (send.body.length > MAX_BODY_BYTES) {
		return {
			code: status.INVALID_ARGUMENT,
			message: `body is ${send.body.length} bytes; the limit is ${MAX_BODY_BYTES}`,
		};
	}
	return undefined;
}
