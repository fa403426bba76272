import { status } from "@grpc/grpc-js";

/**
 * A failure reported by or about the signal server. `code` is a gRPC status
 * number (grpc-js `status`), the same for stream endings and send results.
 */
export class SignalError extends Error {
	override name = "SignalError";

	constructor(
		readonly code: status,
		readonly details: string,
		context?: string,
	) {
		super(`${context ? `${context}: ` : ""}${status[code] ?? `status ${code}`}: ${details}`);
	}
}

/** Reads a grpc-js call error (or anything thrown) as a SignalError. */
export function toSignalError(err: unknown, context?: string): SignalError {
	if (err instanceof SignalError) return err;
	if (typeof err === "object" && err !== null && "code" in err && typeof err.code === "number") {
		const details =
			"details" in err && typeof err.details === "string"
				? err.details
				: err instanceof Error
					? err.message
					: "unknown error";
		return new SignalError(err.code, details, context);
	}
	return new SignalError(status.UNKNOWN, err instanceof Error ? err.message : String(err), context);
}
