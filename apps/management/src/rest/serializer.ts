import fastJson from "fast-json-stringify";
import type { FastifySerializerCompiler } from "fastify";
import { z } from "zod";

// Responses are written by fast-json-stringify, compiled once per route and
// status from the JSON Schema of the route's zod response schema: the same
// zod schema the OpenAPI document is generated from, so the document and
// the bytes on the wire have one source. The answer is not validated on the
// way out (zod parsing a 3 MB list of 5,000 peers cost more than building
// it); the mappers in mappers.ts are typed by the schemas, and the NetBird
// contract test checks every field of every answer.
//
// What fast-json-stringify does with a value its schema does not expect:
// a property not in the schema is left out (so a field missing from a
// schema is missing from the answer: the contract test would fail), a
// required property that is absent throws (a 500, as zod's refusal was).
// Objects are written open (no `additionalProperties: false`): zod strips an
// unknown property and so does fast-json-stringify for a plain object, but it
// picks the branch of a nullable object or union by validating the value,
// and a closed object would refuse one with an extra property (a 500 where
// zod answered).

/**
 * The JSON Schema a response is written with: zod's output side, inlined
 * (no $ref: components exist for the document, not for writing), draft-07,
 * which is what fast-json-stringify reads.
 */
export function responseJsonSchema(schema: z.ZodType): Record<string, unknown> {
	const { $schema: _, ...jsonSchema } = z.toJSONSchema(schema, {
		io: "output",
		target: "draft-7",
		reused: "inline",
		cycles: "throw",
		unrepresentable: "throw",
	}) as Record<string, unknown>;
	return opened(jsonSchema) as Record<string, unknown>;
}

/** `schema` without any `additionalProperties: false` (see the top of this file). */
function opened(schema: unknown): unknown {
	if (Array.isArray(schema)) return schema.map(opened);
	if (schema === null || typeof schema !== "object") return schema;
	const out: Record<string, unknown> = {};
	for (const [key, value] of Object.entries(schema)) {
		if (key === "additionalProperties" && value === false) continue;
		out[key] = opened(value);
	}
	return out;
}

/** The zod schema of a route's response, as fastify hands it over (bare or under `properties`). */
function zodSchemaOf(schema: unknown): z.ZodType {
	if (schema instanceof z.ZodType) return schema;
	const inner = (schema as { properties?: unknown } | null)?.properties;
	if (inner instanceof z.ZodType) return inner;
	throw new Error(`a response schema must be a zod schema, got ${JSON.stringify(schema)}`);
}

/** fastify's serializer compiler for zod response schemas (see the top of this file). */
export const fastSerializerCompiler: FastifySerializerCompiler<unknown> = ({ schema }) => {
	const write = fastJson(responseJsonSchema(zodSchemaOf(schema)) as fastJson.AnySchema);
	return (data: unknown) => write(data) as string;
};
