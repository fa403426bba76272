// How PostgreSQL and the pg driver report what the store must tell apart.

const SERIALIZATION_FAILURE = "40001";
const DEADLOCK_DETECTED = "40P01";

export function sqlState(err: unknown): string | undefined {
	const code = (err as { code?: unknown } | null)?.code;
	return typeof code === "string" ? code : undefined;
}

/** A write that lost a race with another transaction: running it again may succeed. */
export function isSerializationFailure(err: unknown): boolean {
	const code = sqlState(err);
	return code === SERIALIZATION_FAILURE || code === DEADLOCK_DETECTED;
}

const SOCKET_ERRORS = new Set([
	"ECONNREFUSED",
	"ECONNRESET",
	"ETIMEDOUT",
	"EPIPE",
	"ENOTFOUND",
	"EAI_AGAIN",
	"EHOSTUNREACH",
	"ENETUNREACH",
]);

/**
 * The database is out of reach, not wrong: refused or lost connections
 * (socket errors, SQLSTATE class 08), a server shutting down or starting
 * (57P01-57P03), too many connections (53300), a statement or connection
 * timeout (57014, the driver's own timeouts).
 */
export function isConnectionFailure(err: unknown): boolean {
	const code = sqlState(err);
	if (code !== undefined) {
		if (SOCKET_ERRORS.has(code)) return true;
		if (code.startsWith("08")) return true;
		if (code === "57P01" || code === "57P02" || code === "57P03" || code === "53300") return true;
		if (code === "57014") return true;
	}
	const message = err instanceof Error ? err.message : "";
	return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|not queryable|Client was closed/i.test(
		message,
	);
}
