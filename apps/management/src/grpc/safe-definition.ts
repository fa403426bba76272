import type * as grpc from "@grpc/grpc-js";

/** Stands in for a request whose bytes did not decode. */
export class UndecodableRequest {
	constructor(readonly reason: string) {}
}

/**
 * Returns a copy of a service definition whose request deserializers never
 * throw: garbage becomes an UndecodableRequest that handlers answer with
 * INVALID_ARGUMENT (grpc-js would otherwise answer INTERNAL).
 */
export function withSafeDeserializers<T extends grpc.ServiceDefinition>(definition: T): T {
	const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
	for (const [name, method] of Object.entries(definition)) {
		const m = method as grpc.MethodDefinition<unknown, unknown>;
		out[name] = {
			...m,
			requestDeserialize: (bytes: Buffer) => {
				try {
					return m.requestDeserialize(bytes);
				} catch (err) {
					return new UndecodableRequest((err as Error).message);
				}
			},
		};
	}
	return out as unknown as T;
}
