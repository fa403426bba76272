import { z } from "zod";

// Request and response schemas of the REST API, with NetBird's JSON field
// names. Routes declare these (schema-first): fastify validates requests and
// serializes responses through them, and the OpenAPI document is generated
// from them. Request bodies are strict objects: an unknown field is a 400,
// so a misspelt field never silently does nothing.

/**
 * Metadata (component ids, descriptions) for the OpenAPI document. A private
 * registry rather than zod's global one, so that schemas of other modules
 * never collide with these or leak into the document.
 */
export const restSchemaRegistry = z.registry<{ id?: string | undefined; [key: string]: unknown }>();

/** `schema` with a description in the document (a copy: shared schemas stay bare). */
function doc<T extends z.ZodType>(schema: T, description: string): T {
	const copy = schema.clone() as T;
	restSchemaRegistry.add(copy, { description });
	return copy;
}

/** Registers `schema` as a named component of the document. */
function component<T extends z.ZodType>(id: string, schema: T, description: string): T {
	restSchemaRegistry.add(schema, { id, description });
	return schema;
}

const NO_CONTROL_CHARS = /^[^\p{Cc}]*$/u;

/** A display name: trimmed, non-empty, no control characters. */
function displayName(max: number) {
	return z
		.string()
		.trim()
		.min(1, "must not be empty")
		.max(max, `must be at most ${max} characters`)
		.regex(NO_CONTROL_CHARS, "must not contain control characters");
}

/** Object ids are base62 (core/random.ts); anything else cannot name an object. */
export const ObjectId = z
	.string()
	.regex(/^[A-Za-z0-9_-]{1,64}$/, "malformed id (expected 1 to 64 letters, digits, '-' or '_')");

/** A time in responses: ISO 8601 in UTC, as Date.toISOString() writes it. */
const IsoDate = z.string();
restSchemaRegistry.add(IsoDate, { format: "date-time" });

// ---------------------------------------------------------------- common

export const ErrorBody = component(
	"Error",
	z.object({
		message: doc(z.string(), "What went wrong, in one line"),
		code: doc(z.int(), "The HTTP status code, repeated"),
	}),
	'Every error answer: {"message": "...", "code": <HTTP status>}',
);

/** The answer to DELETE, as NetBird's: an empty object. */
export const EmptyObject = doc(z.object({}), "An empty object");

/** Routes without query parameters declare that they take none (unknown ones are ignored). */
export const NoQuery = z.object({});

const ERROR_DESCRIPTIONS: Record<number, string> = {
	400: "Invalid request: a parameter or body field fails validation, or the body is not valid JSON",
	401: "Missing, malformed, unknown or expired token",
	403: "The token's user may not do this",
	404: "No such object in the token's account",
	413: "Request body larger than 64 KiB",
	415: "Request body is not application/json",
	422: "Well-formed but not possible (e.g. an unknown group id)",
};

/** A documented JSON response. */
export function json<T extends z.ZodType>(schema: T, description: string) {
	return { description, content: { "application/json": { schema } } };
}

/** Error answers a route documents, each the shared Error component. */
export function errorResponses<S extends number>(
	...statuses: S[]
): Record<S, ReturnType<typeof json<typeof ErrorBody>>> {
	const out = {} as Record<S, ReturnType<typeof json<typeof ErrorBody>>>;
	for (const s of statuses) out[s] = json(ErrorBody, ERROR_DESCRIPTIONS[s] ?? "Error");
	return out;
}

// ---------------------------------------------------------------- setup keys

export const SetupKeyIdParams = z.object({ keyId: doc(ObjectId, "The setup key's id") });

const AutoGroups = doc(
	z.array(ObjectId).max(100, "at most 100 groups"),
	"Ids of the groups that peers registered with this key join",
);

export const MIN_SETUP_KEY_EXPIRY_SECONDS = 60;
export const MAX_SETUP_KEY_EXPIRY_SECONDS = 365 * 86_400;

export const SetupKeyCreateBody = z.strictObject({
	name: doc(displayName(255), "Setup key name"),
	type: doc(
		z.enum(["reusable", "one-off"]),
		"one-off: registers a single peer; reusable: up to usage_limit peers",
	),
	expires_in: doc(
		z
			.int()
			.min(0)
			.max(MAX_SETUP_KEY_EXPIRY_SECONDS)
			.refine((v) => v === 0 || v >= MIN_SETUP_KEY_EXPIRY_SECONDS, {
				message: `must be 0 (never expires) or ${MIN_SETUP_KEY_EXPIRY_SECONDS} to ${MAX_SETUP_KEY_EXPIRY_SECONDS} seconds`,
			})
			.default(0),
		`Seconds until the key expires: 0 = never (the default), otherwise ${MIN_SETUP_KEY_EXPIRY_SECONDS} (one minute) to ${MAX_SETUP_KEY_EXPIRY_SECONDS} (365 days)`,
	),
	auto_groups: AutoGroups.default([]),
	usage_limit: doc(
		z.int().min(0).max(2_147_483_647).default(0),
		"How many peers a reusable key may register; 0 = unlimited. A one-off key always has 1",
	),
	ephemeral: doc(z.boolean().default(false), "Peers registered with this key are ephemeral"),
	allow_extra_dns_labels: doc(
		z.boolean().default(false),
		"Accepted for NetBird compatibility; extra DNS labels are not supported, so it reads back false",
	),
});

export const SetupKeyUpdateBody = z.strictObject({
	revoked: doc(z.boolean(), "true revokes the key, for good: a revoked key cannot be un-revoked"),
	auto_groups: AutoGroups,
	name: doc(displayName(255).optional(), "New name (optional)"),
});

export const SetupKeyResponse = component(
	"SetupKey",
	z.object({
		id: z.string(),
		name: z.string(),
		key: doc(
			z.string(),
			'The plain key in the creation answer only; everywhere else its first characters followed by "****"',
		),
		expires: doc(IsoDate.nullable(), "Expiry time; null: never expires"),
		type: z.enum(["reusable", "one-off"]),
		valid: doc(z.boolean(), 'state == "valid"'),
		revoked: z.boolean(),
		used_times: z.int(),
		last_used: doc(IsoDate.nullable(), "Last registration with this key; null: never used"),
		state: z.enum(["valid", "expired", "revoked", "overused"]),
		auto_groups: z.array(z.string()),
		updated_at: IsoDate,
		usage_limit: doc(z.int(), "0 = unlimited"),
		ephemeral: z.boolean(),
		allow_extra_dns_labels: z.boolean(),
	}),
	"A setup key",
);

// ---------------------------------------------------------------- peers

export const PeerIdParams = z.object({ peerId: doc(ObjectId, "The peer's id") });

export const PeerListQuery = z.object({
	name: doc(z.string().max(255).optional(), "Only peers with exactly this name"),
	ip: doc(z.string().max(64).optional(), "Only the peer with this overlay address"),
});

export const PeerUpdateBody = z.strictObject({
	name: doc(displayName(63), "Peer name; the peer's DNS label follows it (kept unique)"),
	ssh_enabled: z.boolean().optional(),
	login_expiration_enabled: z.boolean().optional(),
	inactivity_expiration_enabled: doc(
		z.boolean().optional(),
		"Accepted for NetBird compatibility; not supported, so it reads back false",
	),
});

const PeerGroup = component(
	"GroupMinimum",
	z.object({ id: z.string(), name: z.string(), peers_count: z.int() }),
	"A group that a peer belongs to",
);

export const PeerResponse = component(
	"Peer",
	z.object({
		id: z.string(),
		name: z.string(),
		ip: doc(z.string(), "Overlay IPv4 address"),
		connected: doc(z.boolean(), "Whether the peer holds a sync stream with management"),
		last_seen: IsoDate,
		os: doc(z.string(), "Operating system and its version"),
		kernel_version: z.string(),
		version: doc(z.string(), "Agent version"),
		ui_version: z.string(),
		groups: z.array(PeerGroup),
		ssh_enabled: z.boolean(),
		user_id: doc(
			z.string(),
			'The user that registered the peer; "" for peers registered with a setup key',
		),
		hostname: z.string(),
		dns_label: doc(z.string(), "The peer's fully qualified domain name"),
		extra_dns_labels: z.array(z.string()),
		login_expiration_enabled: z.boolean(),
		login_expired: z.boolean(),
		inactivity_expiration_enabled: z.boolean(),
		last_login: IsoDate,
		created_at: IsoDate,
		approval_required: z.boolean(),
		accessible_peers_count: doc(z.int(), "How many other peers this peer can reach"),
		ephemeral: z.boolean(),
		serial_number: z.string(),
	}),
	"A peer",
);

// ---------------------------------------------------------------- users and tokens

export const UserResponse = component(
	"User",
	z.object({
		id: z.string(),
		email: z.string(),
		name: z.string(),
		role: z.enum(["owner", "admin", "user"]),
		status: z.enum(["active", "blocked"]),
		last_login: doc(IsoDate.nullable(), "Last use of any of the user's tokens; null: never"),
		auto_groups: z.array(z.string()),
		is_current: doc(z.boolean(), "Whether this is the user that the request authenticated as"),
		is_service_user: z.boolean(),
		is_blocked: z.boolean(),
		issued: z.literal("api"),
	}),
	"A user",
);

export const UserListQuery = z.object({
	service_user: doc(
		z.enum(["true", "false"]).optional(),
		"Only service users (true) or only regular users (false)",
	),
});

export const UserIdParams = z.object({ userId: doc(ObjectId, "The user's id") });

export const TokenParams = z.object({
	userId: doc(ObjectId, "The user's id"),
	tokenId: doc(ObjectId, "The token's id"),
});

export const TokenCreateBody = z.strictObject({
	name: doc(displayName(64), "Token name"),
	expires_in: doc(z.int().min(1).max(365), "Days until the token expires (1 to 365)"),
});

export const TokenResponse = component(
	"PersonalAccessToken",
	z.object({
		id: z.string(),
		name: z.string(),
		expiration_date: IsoDate,
		created_by: doc(z.string(), "Id of the user that created the token"),
		created_at: IsoDate,
		last_used: doc(IsoDate.nullable(), "null: never used"),
	}),
	"A personal access token (its metadata: the token itself is never stored)",
);

export const TokenCreatedResponse = component(
	"PersonalAccessTokenGenerated",
	z.object({
		plain_token: doc(z.string(), "The token, shown this once: only its hash is stored"),
		personal_access_token: TokenResponse,
	}),
	"A new personal access token",
);

export type SetupKeyJson = z.output<typeof SetupKeyResponse>;
export type PeerJson = z.output<typeof PeerResponse>;
export type UserJson = z.output<typeof UserResponse>;
export type TokenJson = z.output<typeof TokenResponse>;
