/** Receives the duration of one store operation (a transaction, or one atomic method). */
export type ObserveStoreSeconds = (operation: string, seconds: number) => void;

/**
 * Runs `fn` and reports how long it took, until its promise settles when it
 * returns one; failures are timed too (a slow failing transaction is still
 * slow). The narrow seam every store timing goes through.
 */
export function timeStoreTransaction<T>(
	observe: ObserveStoreSeconds,
	operation: string,
	fn: () => T,
	clock: () => number = performance.now.bind(performance),
): T {
	const started = clock();
	const done = () => observe(operation, (clock() - started) / 1000);
	let result: T;
	try {
		result = fn();
	} catch (err) {
		done();
		throw err;
	}
	if (isThenable(result)) {
		return result.then(
			(value) => {
				done();
				return value;
			},
			(err: unknown) => {
				done();
				throw err;
			},
		) as T;
	}
	done();
	return result;
}

/**
 * The store with every method timed under its own name (the operation
 * label: bounded by the Store interface, not by data). Each Store method is
 * one atomic unit of work, so its duration is its transaction's; a store
 * with explicit `read(fn)` / `write(fn)` transactions gets them timed as
 * "read" and "write" the same way. Methods run on the store itself, so a
 * method calling another is timed once, and properties pass through.
 */
export function instrumentStore<S extends object>(store: S, observe: ObserveStoreSeconds): S {
	const wrapped = new Map<string, unknown>();
	return new Proxy(store, {
		get(target, property) {
			const value: unknown = Reflect.get(target, property, target);
			if (typeof value !== "function" || typeof property !== "string") return value;
			let timed = wrapped.get(property);
			if (timed === undefined) {
				const method = value as (...args: unknown[]) => unknown;
				timed = (...args: unknown[]) =>
					timeStoreTransaction(observe, property, () => method.apply(target, args));
				wrapped.set(property, timed);
			}
			return timed;
		},
	});
}

function isThenable(value: unknown): value is PromiseLike<unknown> & Promise<unknown> {
	return (
		typeof value === "object" &&
		value !== null &&
		typeof (value as { then?: unknown }).then === "function"
	);
}
