import fastifySwagger, { type FastifyDynamicSwaggerOptions } from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import {
	createJsonSchemaTransform,
	createJsonSchemaTransformObject,
	type ZodTypeProvider,
} from "fastify-type-provider-zod";
import { z } from "zod";
import { restSchemaRegistry } from "./schemas.js";

export const OPENAPI_PATH = "/api/openapi.json";
/** The interactive API reference (Swagger UI, served from this process: works offline). */
export const DOCS_PATH = "/api/docs";

/** The OpenAPI security scheme name of `Authorization: Token <personal access token>`. */
export const TOKEN_AUTH = "TokenAuth";

type TransformObject = NonNullable<FastifyDynamicSwaggerOptions["transformObject"]>;

/**
 * The zod transform emits every registered component twice, as input
 * ("<id>Input") and as output ("<id>"); drop those that nothing references.
 */
function withoutUnusedComponents(transform: TransformObject): TransformObject {
	return (documentObject) => {
		const doc = transform(documentObject) as { components?: { schemas?: Record<string, unknown> } };
		const schemas = doc.components?.schemas;
		if (!schemas) return doc as ReturnType<TransformObject>;
		let kept: Record<string, unknown> = schemas;
		// Removing one schema can orphan another it referenced: repeat until stable.
		for (;;) {
			const { components: _, ...rest } = doc as Record<string, unknown>;
			const text = JSON.stringify([rest, kept]);
			const used = Object.fromEntries(
				Object.entries(kept).filter(
					([id]) => text.includes(`"#/components/schemas/${id}"`) || !id.endsWith("Input"),
				),
			);
			if (Object.keys(used).length === Object.keys(kept).length) break;
			kept = used;
		}
		return {
			...doc,
			components: { ...doc.components, schemas: kept },
		} as ReturnType<TransformObject>;
	};
}

/**
 * Registers @fastify/swagger. Must run before any route is added: the
 * document is collected from routes as they are registered.
 */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
	await app.register(fastifySwagger, {
		openapi: {
			openapi: "3.1.0",
			info: {
				title: "Starling management API",
				description:
					"Admin REST API of the Starling management service, following NetBird's REST model and field names. " +
					'Errors are always {"message": "...", "code": <HTTP status>}. ' +
					`An interactive reference is served at ${DOCS_PATH}.`,
				version: "0.1.0",
			},
			// The document is served by the API it describes: relative to where it was fetched.
			servers: [{ url: "/", description: "This management service" }],
			tags: [
				{ name: "Setup Keys", description: "Keys that register new peers" },
				{ name: "Peers", description: "Machines in the network" },
				{ name: "Groups", description: "Groups of peers, which policies connect" },
				{ name: "Policies", description: "Who may connect to whom, with which protocol and ports" },
				{
					name: "Routes",
					description: "Networks reached through routing peers, exit nodes (0.0.0.0/0)",
				},
				{
					name: "Networks",
					description:
						"Named sets of hosts and subnets, reached through routers, opened by policies",
				},
				{ name: "Users", description: "Users of the account" },
				{ name: "Tokens", description: "Personal access tokens" },
				{ name: "Accounts", description: "Account settings" },
				{ name: "Events", description: "The audit log" },
				{ name: "Meta", description: "This document" },
			],
			components: {
				securitySchemes: {
					[TOKEN_AUTH]: {
						type: "apiKey",
						in: "header",
						name: "Authorization",
						description: 'A personal access token, sent as "Authorization: Token <token>"',
					},
				},
			},
			security: [{ [TOKEN_AUTH]: [] }],
		},
		transform: createJsonSchemaTransform({ schemaRegistry: restSchemaRegistry }),
		transformObject: withoutUnusedComponents(
			createJsonSchemaTransformObject({ schemaRegistry: restSchemaRegistry }),
		),
	});
}

/** GET /api/openapi.json, unauthenticated. */
export function openApiRoute(app: FastifyInstance): void {
	app.withTypeProvider<ZodTypeProvider>().get(
		OPENAPI_PATH,
		{
			schema: {
				tags: ["Meta"],
				operationId: "getOpenApiDocument",
				summary: "This OpenAPI document",
				description: "Needs no token.",
				security: [],
				querystring: z.object({}),
				response: { 200: z.record(z.string(), z.unknown()) },
			},
		},
		async () => app.swagger() as unknown as Record<string, unknown>,
	);
}

/**
 * The interactive reference at /api/docs (no token needed to read it; "Try
 * it out" needs "Token <token>" under Authorize). Swagger UI's files ship
 * inside @fastify/swagger-ui and are served by this process: no CDN. Its
 * routes are hidden from the OpenAPI document.
 */
export async function registerApiDocs(app: FastifyInstance): Promise<void> {
	await app.register(fastifySwaggerUi, {
		routePrefix: DOCS_PATH,
		uiConfig: { docExpansion: "list", deepLinking: true, persistAuthorization: false },
		staticCSP: true,
	});
}
