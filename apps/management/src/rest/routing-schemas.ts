import { z } from "zod";
import { component, displayName, doc, ObjectId, PeerGroup } from "./schemas.js";

// Schemas of /api/routes and /api/networks (NetBird's field names), beside
// schemas.ts, which holds the shared helpers. Request bodies are strict:
// an unknown field is a 400. Rules that need the account (overlaps,
// references) are checked by the use cases (app/routes.ts, app/networks.ts).

const GroupIds = z.array(ObjectId).max(100, "at most 100 groups");
const Metric = doc(
	z.int().min(1, "metric must be 1 to 9999").max(9999, "metric must be 1 to 9999"),
	"1 to 9999, lower is preferred",
);
/** NetBird's clients send "" or omit the peer when peer_groups is used. */
const RoutingPeer = doc(
	z.union([ObjectId, z.literal("")]).optional(),
	'The routing peer\'s id; omit (or "") when peer_groups is used',
);
const RoutingPeerGroups = doc(
	GroupIds.nullable().optional(),
	"Groups whose peers all route; omit (or null, or empty) when peer is used",
);

export const RouteIdParams = z.object({ routeId: doc(ObjectId, "The route's id") });
export const NetworkIdParams = z.object({ networkId: doc(ObjectId, "The network's id") });
export const ResourceIdParams = NetworkIdParams.extend({
	resourceId: doc(ObjectId, "The resource's id"),
});
export const RouterIdParams = NetworkIdParams.extend({
	routerId: doc(ObjectId, "The router's id"),
});

export const RouteBody = z
	.strictObject({
		description: z.string().max(1024).default(""),
		network_id: doc(
			z.string().trim().min(1, "must not be empty").max(40, "must be at most 40 characters"),
			"High-availability key: routes with the same network_id are one network served by several routers",
		),
		enabled: z.boolean(),
		peer: RoutingPeer,
		peer_groups: RoutingPeerGroups,
		network: doc(
			z.string().max(64).optional(),
			'IPv4 CIDR (host bits are cleared); "0.0.0.0/0" makes an exit node',
		),
		domains: doc(
			z.array(z.string()).nullable().optional(),
			"Only absent or empty: domain routes are not supported yet",
		),
		metric: Metric,
		masquerade: doc(
			z.boolean(),
			"Rewrite forwarded traffic's source to the routing peer's address",
		),
		groups: doc(
			GroupIds.min(1, "at least one group (the peers that receive the route)"),
			"Groups whose peers receive the route",
		),
		keep_route: doc(
			z.boolean().default(false),
			"Keep the client's kernel route while no router of the network is reachable",
		),
		access_control_groups: doc(
			GroupIds.nullable().optional(),
			"When set, forwarded traffic is limited to what the policies with these groups as destination allow",
		),
		skip_auto_apply: doc(
			z.boolean().default(false),
			"Exit nodes only: offered to clients, applied once the user selects it (true on another route is a 400)",
		),
	})
	.superRefine((r, ctx) => {
		if (r.domains && r.domains.length > 0) {
			ctx.addIssue({
				code: "custom",
				path: ["domains"],
				message:
					"domain routes are not supported yet (they need DNS support); give an IPv4 network",
			});
		} else if (r.network === undefined) {
			ctx.addIssue({ code: "custom", path: ["network"], message: "is required (an IPv4 CIDR)" });
		}
	});

export const RouteResponse = component(
	"Route",
	z.object({
		id: z.string(),
		network_type: doc(z.literal("IPv4"), "Always IPv4"),
		description: z.string(),
		network_id: z.string(),
		enabled: z.boolean(),
		peer: doc(z.string().optional(), "The routing peer's id; absent when peer_groups is used"),
		peer_groups: doc(z.array(z.string()).optional(), "Absent when peer is used"),
		network: doc(z.string(), "Canonical IPv4 CIDR"),
		metric: z.int(),
		masquerade: z.boolean(),
		groups: z.array(z.string()),
		keep_route: z.boolean(),
		access_control_groups: z.array(z.string()),
		skip_auto_apply: z.boolean(),
	}),
	"A route: a network reached through routing peers",
);

export const NetworkBody = z.strictObject({
	name: doc(displayName(255), "Network name"),
	description: z.string().max(1024).default(""),
});

export const NetworkResponse = component(
	"Network",
	z.object({
		id: z.string(),
		name: z.string(),
		description: z.string(),
		routers: doc(z.array(z.string()), "Ids of the network's routers"),
		resources: doc(z.array(z.string()), "Ids of the network's resources"),
		policies: doc(
			z.array(z.string()),
			"Ids of the policies with a group of one of the network's resources among their destinations",
		),
		routing_peers_count: doc(
			z.int(),
			"How many peers route for the network (its routers' peers and peer group members, each once)",
		),
	}),
	"A network: resources reached through its routers",
);

export const ResourceBody = z.strictObject({
	name: doc(displayName(255), "Resource name"),
	description: z.string().max(1024).default(""),
	address: doc(
		z.string().trim().min(1, "must not be empty").max(255),
		"An IPv4 address (a host) or an IPv4 CIDR (a subnet); domains are not supported yet",
	),
	enabled: z.boolean(),
	groups: doc(
		GroupIds.default([]),
		"Groups of the resource: policies with one of them as destination reach it",
	),
});

export const ResourceResponse = component(
	"NetworkResource",
	z.object({
		id: z.string(),
		type: doc(z.enum(["host", "subnet"]), "host for a single address, subnet otherwise"),
		name: z.string(),
		description: z.string(),
		address: doc(z.string(), "As given"),
		enabled: z.boolean(),
		groups: z.array(PeerGroup),
	}),
	"A host or subnet of a network",
);

export const RouterBody = z.strictObject({
	peer: RoutingPeer,
	peer_groups: RoutingPeerGroups,
	metric: Metric,
	masquerade: doc(z.boolean(), "Rewrite forwarded traffic's source to the routing peer's address"),
	enabled: z.boolean(),
});

export const RouterResponse = component(
	"NetworkRouter",
	z.object({
		id: z.string(),
		peer: doc(z.string().optional(), "The routing peer's id; absent when peer_groups is used"),
		peer_groups: doc(z.array(z.string()).optional(), "Absent when peer is used"),
		metric: z.int(),
		masquerade: z.boolean(),
		enabled: z.boolean(),
	}),
	"A routing peer (or group of them) of a network",
);

export type RouteJson = z.output<typeof RouteResponse>;
export type NetworkJson = z.output<typeof NetworkResponse>;
export type ResourceJson = z.output<typeof ResourceResponse>;
export type RouterJson = z.output<typeof RouterResponse>;
