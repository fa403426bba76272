/**
 * An error meant for the caller, with the HTTP status that REST answers and
 * that gRPC maps to its own codes. Anything else that is thrown is a bug.
 */
export class AppError extends Error {
	override name = "AppError";
	constructor(
		readonly status: 400 | 401 | 403 | 404 | 409 | 422 | 429,
		message: string,
	) {
		super(message);
	}
}

export const notFound = (what: string) => new AppError(404, `${what} not found`);
