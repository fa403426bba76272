import { StoreConflictError, StoreReferenceError } from "../store/store.js";

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

/**
 * Awaits a store call, turning its refusals into caller errors: a unique
 * constraint (a name or key taken meanwhile) is a 409, a reference to
 * nothing a 422. The use cases check both first with readable messages;
 * this is the backstop.
 */
export async function stored<T>(call: Promise<T>): Promise<T> {
	try {
		return await call;
	} catch (err) {
		if (err instanceof StoreConflictError) throw new AppError(409, err.message);
		if (err instanceof StoreReferenceError) throw new AppError(422, err.message);
		throw err;
	}
}
