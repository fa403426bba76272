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
export function doc<T extends z.ZodType>(schema: T, description: string): T {
	const copy = schema.clone() as T;
	restSchemaRegistry.add(copy, { description });
	return copy;
}

/** Registers `schema` as a named component of the document. */
export function component<T extends z.ZodType>(id: string, schema: T, description: string): T {
	restSchemaRegistry.add(schema, { id, description });
	return schema;
}

const NO_CONTROL_CHARS = /^[^\p{Cc}]*$/u;

/**
 * A request field that NetBird defines (or its dashboard sends) for a feature
 * Starling does not have: accepted with the one value that means "off",
 * refused with `message` otherwise, so a request never asks for something
 * that would silently not happen.
 */
function offOnly<T extends boolean | string>(off: T, message: string, description: string) {
	return doc(
		z.literal(off, message).optional(),
		`${description}; only ${JSON.stringify(off)}: ${message}`,
	);
}

/** An array field for a feature Starling does not have: only empty. */
function emptyOnly(message: string, description: string) {
	return doc(
		z.array(z.unknown()).max(0, message).optional(),
		`${description}; only empty: ${message}`,
	);
}

/** A display name: trimmed, non-empty, no control characters. */
export function displayName(max: number) {
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

/**
 * What NetBird sends for a time that never happened (Go's zero time.Time):
 * its clients expect a string there, never null.
 */
export const NEVER = "0001-01-01T00:00:00Z";

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
	409: "A name (or network range) that must be unique is taken",
	413: "Request body larger than 64 KiB",
	415: "Request body is not application/json",
	422: "Well-formed but not possible (e.g. an unknown group id, or a group still in use)",
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
	allow_extra_dns_labels: offOnly(
		false,
		"extra DNS labels are not supported",
		"Whether peers registered with this key may carry extra DNS labels",
	),
	revoked: offOnly(false, "a setup key cannot be created revoked", "Sent by NetBird's dashboard"),
});

const FIXED_AT_CREATION =
	"Sent by NetBird's dashboard with the key's current value; set at creation only, so another value is refused";

export const SetupKeyUpdateBody = z.strictObject({
	revoked: doc(z.boolean(), "true revokes the key, for good: a revoked key cannot be un-revoked"),
	auto_groups: AutoGroups,
	name: doc(displayName(255).optional(), "New name (optional)"),
	type: doc(z.enum(["reusable", "one-off"]).optional(), FIXED_AT_CREATION),
	expires_in: doc(z.int().min(0).optional(), FIXED_AT_CREATION),
	usage_limit: doc(z.int().min(0).optional(), FIXED_AT_CREATION),
	ephemeral: doc(z.boolean().optional(), FIXED_AT_CREATION),
	allow_extra_dns_labels: offOnly(
		false,
		"extra DNS labels are not supported",
		"Sent by NetBird's dashboard",
	),
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
		expires: doc(IsoDate, `Expiry time; "${NEVER}": never expires`),
		type: z.enum(["reusable", "one-off"]),
		valid: doc(z.boolean(), 'state == "valid"'),
		revoked: z.boolean(),
		used_times: z.int(),
		last_used: doc(IsoDate, `Last registration with this key; "${NEVER}": never used`),
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
	inactivity_expiration_enabled: offOnly(
		false,
		"inactivity expiration is not supported",
		"Expire the peer's login after inactivity",
	),
	approval_required: offOnly(
		false,
		"peer approval is not supported",
		"Hold the peer until approved",
	),
	ip: doc(
		z.string().max(64).optional(),
		"The peer's overlay address: only its current one (addresses are assigned, not chosen)",
	),
	ipv6: doc(
		z.never("IPv6 overlay addresses are not supported").optional(),
		"Refused: IPv6 overlay addresses are not supported",
	),
	peerId: doc(ObjectId.optional(), "Sent by NetBird's dashboard: the peer's id, as in the path"),
});

/** NetBird's geolocation fields of a peer, which Starling does not fill. */
const NotGeolocated = {
	country_code: doc(z.string(), 'Always "": peers are not geolocated'),
	city_name: doc(z.string(), 'Always "": peers are not geolocated'),
	geoname_id: doc(z.int(), "Always 0: peers are not geolocated"),
};

export const PeerGroup = component(
	"GroupMinimum",
	z.object({
		id: z.string(),
		name: z.string(),
		peers_count: z.int(),
		resources_count: doc(
			z.int(),
			"Always 0: a network resource names its groups (its `groups` field); groups do not list resources",
		),
	}),
	"A group, in short",
);

export const PeerResponse = component(
	"Peer",
	z.object({
		id: z.string(),
		name: z.string(),
		ip: doc(z.string(), "Overlay IPv4 address"),
		connection_ip: doc(
			z.string(),
			'The public address the peer last logged in from, as management saw it ("" when unknown)',
		),
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
		...NotGeolocated,
	}),
	"A peer",
);

export const AccessiblePeerResponse = component(
	"AccessiblePeer",
	z.object({
		id: z.string(),
		name: z.string(),
		ip: doc(z.string(), "Overlay IPv4 address"),
		dns_label: doc(z.string(), "The peer's fully qualified domain name"),
		user_id: doc(z.string(), '"" for peers registered with a setup key'),
		os: z.string(),
		...NotGeolocated,
		connected: z.boolean(),
		last_seen: IsoDate,
	}),
	"A peer that another peer can reach",
);

// ---------------------------------------------------------------- users and tokens

const UserPermissions = component(
	"UserPermissions",
	z.object({
		is_restricted: doc(
			z.boolean(),
			"true: the user sees only what concerns them (role user: their own tokens)",
		),
		modules: doc(
			z.record(z.string(), z.record(z.string(), z.boolean())),
			'Per module (e.g. "peers"), per operation (read, create, update, delete): whether the user may',
		),
	}),
	"What a user may do, as NetBird's clients read it",
);

export const UserResponse = component(
	"User",
	z.object({
		id: z.string(),
		email: z.string(),
		name: z.string(),
		role: z.enum(["owner", "admin", "user"]),
		status: z.enum(["active", "blocked"]),
		last_login: doc(IsoDate, `Last use of any of the user's tokens; "${NEVER}": never`),
		auto_groups: doc(
			z.array(z.string()),
			"Groups that peers registered by this user join (peers are registered with setup keys so far)",
		),
		is_current: doc(z.boolean(), "Whether this is the user that the request authenticated as"),
		is_service_user: z.boolean(),
		is_blocked: z.boolean(),
		pending_approval: doc(z.boolean(), "Always false: users need no approval"),
		issued: z.literal("api"),
		permissions: doc(
			UserPermissions.optional(),
			"What the user may see and do (GET /api/users/current only)",
		),
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
		last_used: doc(IsoDate.optional(), "Last use of the token; absent: never used (as NetBird)"),
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

const UserRole = z.enum(["owner", "admin", "user"]);
const GroupIds = (what: string) =>
	doc(z.array(ObjectId).max(100, "at most 100 groups"), `Ids of the groups ${what}`);

export const UserCreateBody = z
	.strictObject({
		email: doc(
			z.string().trim().max(255).optional(),
			"The user's email (required for regular users, unique in the account)",
		),
		name: doc(displayName(255).optional(), "The user's name (required for service users)"),
		role: doc(UserRole, "admin or user (there is one owner per account)"),
		auto_groups: GroupIds("that peers registered by this user join"),
		is_service_user: doc(
			z.boolean(),
			"A service user is for automation: it has tokens but no email",
		),
	})
	.superRefine((v, ctx) => {
		if (!v.is_service_user) {
			if (!v.email) {
				ctx.addIssue({ code: "custom", path: ["email"], message: "is required for regular users" });
			} else if (!z.email().safeParse(v.email).success) {
				ctx.addIssue({ code: "custom", path: ["email"], message: "is not an email address" });
			}
		} else if (!v.name) {
			ctx.addIssue({ code: "custom", path: ["name"], message: "is required for service users" });
		}
	});

export const UserUpdateBody = z.strictObject({
	role: UserRole,
	auto_groups: GroupIds("that peers registered by this user join"),
	is_blocked: doc(z.boolean(), "A blocked user's tokens stop working"),
});

// ---------------------------------------------------------------- groups

export const GroupIdParams = z.object({ groupId: doc(ObjectId, "The group's id") });

export const GroupListQuery = z.object({
	name: doc(z.string().max(255).optional(), "Only the group with exactly this name"),
});

const NoResources = emptyOnly(
	"network resources in a group are not supported here: set a resource's groups under /api/networks/{networkId}/resources",
	"The group's network resources",
);

export const GroupCreateBody = z.strictObject({
	name: doc(displayName(255), "Group name, unique in the account"),
	peers: doc(
		z.array(ObjectId).max(100_000).default([]),
		"Ids of the peers in the group (default none)",
	),
	resources: NoResources,
});

export const GroupUpdateBody = z.strictObject({
	name: doc(displayName(255), "Group name, unique in the account"),
	peers: doc(z.array(ObjectId).max(100_000), "Ids of the peers in the group: replaces the list"),
	resources: NoResources,
});

const PeerMinimum = component(
	"PeerMinimum",
	z.object({ id: z.string(), name: z.string() }),
	"A peer, in short",
);

export const GroupResponse = component(
	"Group",
	z.object({
		id: z.string(),
		name: z.string(),
		peers_count: z.int(),
		resources_count: doc(
			z.int(),
			"Always 0: a network resource names its groups (its `groups` field); groups do not list resources",
		),
		issued: doc(z.enum(["api", "integration", "jwt"]), "How the group was made (always api)"),
		peers: z.array(PeerMinimum),
		resources: z.array(z.object({ id: z.string(), type: z.string() })),
	}),
	"A group of peers; All holds every peer and is read-only",
);

// ---------------------------------------------------------------- policies

export const PolicyIdParams = z.object({ policyId: doc(ObjectId, "The policy's id") });

const Protocol = z.enum(["all", "tcp", "udp", "icmp"]);
/** NetBird's protocols: netbird-ssh is refused with a message rather than as an unknown value. */
const ProtocolBody = z
	.enum(["all", "tcp", "udp", "icmp", "netbird-ssh"])
	.refine((p) => p !== "netbird-ssh", { message: "protocol netbird-ssh is not supported" });
const Port = z.int().min(1, "ports are 1 to 65535").max(65535, "ports are 1 to 65535");

const PortRangeBody = doc(
	z
		.strictObject({ start: Port, end: Port })
		.refine((r) => r.start <= r.end, { message: "start must not be after end" }),
	"An inclusive range of ports",
);

const PolicyRuleBody = z
	.strictObject({
		id: doc(
			ObjectId.optional(),
			"Id of an existing rule of the policy (updates); omit for a new rule",
		),
		name: doc(displayName(255), "Rule name"),
		description: z.string().max(1024).default(""),
		enabled: doc(z.boolean(), "A disabled rule allows nothing"),
		action: doc(
			z.enum(["accept", "drop"]),
			"accept (drop is refused: traffic that no rule accepts is dropped anyway)",
		),
		bidirectional: doc(
			z.boolean(),
			"Also allow destinations to open connections to sources, with the same protocol and ports",
		),
		protocol: doc(ProtocolBody, "all, tcp, udp or icmp (netbird-ssh is refused)"),
		ports: doc(
			z
				.array(z.string().regex(/^[0-9]{1,5}$/, 'a port is a number as a string, e.g. "443"'))
				.max(64, "at most 64 ports")
				.default([]),
			"Ports as strings (NetBird's format), tcp and udp only; with port_ranges empty too: every port",
		),
		port_ranges: doc(
			z.array(PortRangeBody).max(64, "at most 64 port ranges").default([]),
			"Port ranges, tcp and udp only",
		),
		sources: doc(
			z.array(ObjectId).min(1, "at least one source group").max(100, "at most 100 groups"),
			"Group ids whose peers may open connections",
		),
		destinations: doc(
			z.array(ObjectId).min(1, "at least one destination group").max(100, "at most 100 groups"),
			"Group ids whose peers accept them",
		),
		sourceResource: doc(
			z
				.null(
					"network resources as policy sources or destinations are not supported: give the resource a group and name the group",
				)
				.optional(),
			"Refused: name a group of the resource instead",
		),
		destinationResource: doc(
			z
				.null(
					"network resources as policy sources or destinations are not supported: give the resource a group and name the group",
				)
				.optional(),
			"Refused: name a group of the resource instead",
		),
		authorized_groups: doc(
			z
				.record(z.string(), z.array(z.string()))
				.refine((r) => Object.keys(r).length === 0, {
					message: "authorized groups (for netbird-ssh) are not supported",
				})
				.optional(),
			"Only empty: authorized groups (for netbird-ssh) are not supported",
		),
	})
	.superRefine((r, ctx) => {
		if (r.action === "drop") {
			ctx.addIssue({
				code: "custom",
				path: ["action"],
				message: "drop rules are not supported: what no rule accepts is dropped",
			});
		}
		r.ports.forEach((p, i) => {
			const n = Number(p);
			if (n < 1 || n > 65535)
				ctx.addIssue({ code: "custom", path: ["ports", i], message: "ports are 1 to 65535" });
		});
		if (
			(r.protocol === "all" || r.protocol === "icmp") &&
			(r.ports.length || r.port_ranges.length)
		) {
			ctx.addIssue({
				code: "custom",
				path: ["ports"],
				message: `protocol ${r.protocol} takes no ports (only tcp and udp do)`,
			});
		}
	});

export const PolicyBody = z.strictObject({
	name: doc(displayName(255), "Policy name"),
	description: z.string().max(1024).default(""),
	enabled: doc(z.boolean(), "A disabled policy allows nothing"),
	rules: doc(
		z.array(PolicyRuleBody).min(1, "at least one rule").max(100, "at most 100 rules"),
		"The policy's rules (an update replaces them; rules keep their ids when given)",
	),
	source_posture_checks: doc(
		z.array(ObjectId).max(0, "posture checks are not supported").optional(),
		"Only empty: posture checks are not supported",
	),
	query: offOnly("", "policy queries are not supported", "Sent by NetBird's dashboard"),
});

const PolicyRuleResponse = component(
	"PolicyRule",
	z.object({
		id: z.string(),
		name: z.string(),
		description: z.string(),
		enabled: z.boolean(),
		action: z.literal("accept"),
		bidirectional: z.boolean(),
		protocol: Protocol,
		ports: z.array(z.string()),
		port_ranges: z.array(z.object({ start: z.int(), end: z.int() })),
		sources: z.array(PeerGroup),
		destinations: z.array(PeerGroup),
	}),
	"A rule of a policy",
);

export const PolicyResponse = component(
	"Policy",
	z.object({
		id: z.string(),
		name: z.string(),
		description: z.string(),
		enabled: z.boolean(),
		source_posture_checks: z.array(z.string()),
		rules: z.array(PolicyRuleResponse),
	}),
	"An access policy",
);

export const PolicyCheckBody = z
	.strictObject({
		source_peer_id: doc(ObjectId, "The peer opening the connection"),
		destination_peer_id: doc(ObjectId, "The peer it connects to"),
		protocol: doc(z.enum(["tcp", "udp", "icmp"]), "tcp, udp or icmp"),
		port: doc(Port.optional(), "Destination port: required for tcp and udp, absent for icmp"),
	})
	.superRefine((v, ctx) => {
		if (v.protocol !== "icmp" && v.port === undefined)
			ctx.addIssue({ code: "custom", path: ["port"], message: `is required for ${v.protocol}` });
		if (v.protocol === "icmp" && v.port !== undefined)
			ctx.addIssue({ code: "custom", path: ["port"], message: "icmp has no ports" });
	});

export const PolicyCheckResponse = component(
	"PolicyCheckResult",
	z.object({
		allowed: z.boolean(),
		rule: doc(
			z
				.object({
					policy_id: z.string(),
					policy_name: z.string(),
					rule_id: z.string(),
					rule_name: z.string(),
				})
				.nullable(),
			"The first enabled rule (in policy order) that allows it; null when none does",
		),
		reason: doc(z.string(), "Why, in one sentence"),
	}),
	"Whether a connection would be allowed by the account's policies as they are now",
);

// ---------------------------------------------------------------- accounts

export const AccountIdParams = z.object({ accountId: doc(ObjectId, "The account's id") });

export const MIN_LOGIN_EXPIRATION = 3600;
export const MAX_LOGIN_EXPIRATION = 180 * 86_400;

const AccountSettingsBody = z.strictObject({
	peer_login_expiration_enabled: doc(
		z.boolean(),
		"Expire the login of peers added by a user (peers registered with a setup key never expire)",
	),
	peer_login_expiration: doc(
		z.int().min(MIN_LOGIN_EXPIRATION).max(MAX_LOGIN_EXPIRATION),
		`Seconds after which such a login expires (${MIN_LOGIN_EXPIRATION} to ${MAX_LOGIN_EXPIRATION})`,
	),
	peer_inactivity_expiration_enabled: offOnly(
		false,
		"inactivity expiration is not supported",
		"Expire peers' logins after inactivity",
	),
	peer_inactivity_expiration: doc(
		z.literal(0, "inactivity expiration is not supported").optional(),
		"Seconds of inactivity before expiry; only 0: inactivity expiration is not supported",
	),
	regular_users_view_blocked: offOnly(
		true,
		"users of role user never see the admin surface",
		"Whether users of role user are kept from the admin surface",
	),
	groups_propagation_enabled: offOnly(
		false,
		"group propagation is not supported",
		"Propagate user groups to their peers",
	),
	jwt_groups_enabled: offOnly(false, "JWT groups are not supported", "Take groups from JWT claims"),
	jwt_groups_claim_name: offOnly("", "JWT groups are not supported", "The JWT claim with groups"),
	jwt_allow_groups: emptyOnly("JWT groups are not supported", "Groups allowed to log in"),
	routing_peer_dns_resolution_enabled: offOnly(
		false,
		"routing peers are not supported",
		"DNS resolution on routing peers",
	),
	dns_domain: doc(
		z.string().max(255).optional(),
		"The DNS domain of the account's peers: only its current value (it is set by the installation)",
	),
	network_range_v6: doc(
		z.never("IPv6 overlay networks are not supported").optional(),
		"Refused: IPv6 overlay networks are not supported",
	),
	peer_expose_enabled: offOnly(false, "peers cannot expose services", "Let peers expose services"),
	peer_expose_groups: emptyOnly("peers cannot expose services", "Groups whose peers may expose"),
	extra: doc(
		z
			.strictObject({
				peer_approval_enabled: offOnly(false, "peer approval is not supported", "Peer approval"),
				user_approval_required: offOnly(false, "user approval is not supported", "User approval"),
				network_traffic_logs_enabled: offOnly(
					false,
					"traffic logs are not supported",
					"Traffic logs",
				),
				network_traffic_logs_groups: emptyOnly("traffic logs are not supported", "Traffic logs"),
				network_traffic_packet_counter_enabled: offOnly(
					false,
					"traffic logs are not supported",
					"Packet counters",
				),
			})
			.optional(),
		"NetBird's extra settings: each only off",
	),
	lazy_connection_enabled: offOnly(
		false,
		"lazy connections are not supported",
		"Connect to peers only on demand",
	),
	auto_update_version: offOnly(
		"",
		"agent auto-update is not supported",
		"Agent version to update to",
	),
	auto_update_always: offOnly(false, "agent auto-update is not supported", "Always auto-update"),
	metrics_push_enabled: offOnly(false, "metrics push is not supported", "Push agent metrics"),
	agent_network_only: offOnly(false, "agent networks are not supported", "Agent network only"),
	dashboard_features: doc(
		z
			.strictObject({
				agent_network: offOnly(false, "agent networks are not supported", "Agent network"),
			})
			.optional(),
		"Dashboard features: each only off",
	),
	embedded_idp_enabled: offOnly(
		false,
		"an embedded identity provider is not supported",
		"Embedded identity provider",
	),
	local_auth_disabled: offOnly(
		false,
		"tokens are the only way to log in, so they cannot be disabled",
		"Disable local login",
	),
	local_mfa_enabled: offOnly(false, "multi-factor login is not supported", "Local MFA"),
	ipv6_enabled_groups: emptyOnly("IPv6 overlay addresses are not supported", "IPv6 groups"),
	network_range: doc(
		z
			.string()
			.regex(
				/^[0-9]{1,3}(\.[0-9]{1,3}){3}\/[0-9]{1,2}$/,
				"expected an IPv4 CIDR, e.g. 100.64.0.0/16",
			)
			.optional(),
		"The account's overlay network; it can change only while the account has no peers",
	),
});

export const AccountUpdateBody = z.strictObject({
	settings: AccountSettingsBody,
	onboarding: doc(
		z
			.strictObject({
				signup_form_pending: z.literal(false, "there is no sign-up form"),
				onboarding_flow_pending: z.literal(false, "there is no onboarding flow"),
			})
			.optional(),
		"Only both false: there is no sign-up or onboarding flow",
	),
});

export const AccountResponse = component(
	"Account",
	z.object({
		id: z.string(),
		settings: z.object({
			peer_login_expiration_enabled: z.boolean(),
			peer_login_expiration: z.int(),
			peer_inactivity_expiration_enabled: z.boolean(),
			peer_inactivity_expiration: z.int(),
			regular_users_view_blocked: z.boolean(),
			network_range: doc(z.string(), "The account's overlay network"),
			dns_domain: doc(z.string(), "The DNS domain of the account's peers"),
			peer_expose_enabled: doc(z.boolean(), "Always false: peers cannot expose services"),
			peer_expose_groups: doc(z.array(z.string()), "Always empty"),
		}),
		domain: doc(z.string(), "The DNS domain of the account's peers"),
		domain_category: z.string(),
		created_at: IsoDate,
		created_by: doc(z.string(), "Id of the account's owner"),
		onboarding: doc(
			z.object({ signup_form_pending: z.boolean(), onboarding_flow_pending: z.boolean() }),
			"Always false and false: there is no sign-up or onboarding flow",
		),
	}),
	"An account: everything else belongs to exactly one",
);

// ---------------------------------------------------------------- audit events

export const MAX_EVENTS = 10_000;

export const EventsQuery = z.object({
	limit: doc(
		z.coerce.number().int().min(1).max(MAX_EVENTS).default(1000),
		`At most this many events, newest first (1 to ${MAX_EVENTS}, default 1000)`,
	),
});

export const EventResponse = component(
	"Event",
	z.object({
		id: z.string(),
		timestamp: IsoDate,
		activity: doc(z.string(), "What happened, in words"),
		activity_code: doc(z.string(), 'What happened, as a code, e.g. "policy.update"'),
		initiator_id: doc(
			z.string(),
			"Who did it: a user id, a setup key id (registration) or a peer id (logout)",
		),
		initiator_name: z.string(),
		initiator_email: z.string(),
		target_id: doc(z.string(), "The object acted on"),
		meta: doc(z.record(z.string(), z.string()), "Details, e.g. names"),
	}),
	"An audit event",
);

export type SetupKeyJson = z.output<typeof SetupKeyResponse>;
export type GroupJson = z.output<typeof GroupResponse>;
export type PolicyJson = z.output<typeof PolicyResponse>;
export type AccountJson = z.output<typeof AccountResponse>;
export type EventJson = z.output<typeof EventResponse>;
export type PeerJson = z.output<typeof PeerResponse>;
export type AccessiblePeerJson = z.output<typeof AccessiblePeerResponse>;
export type UserJson = z.output<typeof UserResponse>;
export type TokenJson = z.output<typeof TokenResponse>;
