import { z } from "zod";
import { ObjectId, restSchemaRegistry } from "./schemas.js";

// Request and response of POST /api/routes/check (not part of NetBird's API).

function described<T extends z.ZodType>(schema: T, description: string): T {
	const copy = schema.clone() as T;
	restSchemaRegistry.add(copy, { description });
	return copy;
}

export const RouteCheckBody = z.strictObject({
	peer_id: described(ObjectId, "The peer sending the traffic"),
	address: described(
		z.ipv4("must be an IPv4 address, e.g. 198.18.10.7"),
		"The destination IPv4 address",
	),
});

const RouterCandidate = z.object({
	peer_id: z.string(),
	name: z.string(),
	metric: z.int(),
	connected: described(z.boolean(), "Holds a Sync stream to management now"),
	route_id: described(z.string(), "The route (or network resource) it serves the network through"),
});

export const RouteCheckResponse = z.object({
	route: described(
		z
			.object({
				id: z.string(),
				type: described(
					z.enum(["route", "network_resource"]),
					"A /api/routes route, or a resource of /api/networks",
				),
				network_id: described(z.string(), "The HA key (a Network's id for a resource)"),
				network: z.string(),
				description: z.string(),
				skip_auto_apply: described(
					z.boolean(),
					"An exit node applied only once the user selects it on the peer",
				),
			})
			.nullable(),
		"The route the peer would use: the longest prefix covering the address among the routes it receives; null when none covers it",
	),
	router: described(
		RouterCandidate.extend({ reason: z.string() }).nullable(),
		"The router it would use now: the lowest metric among the connected ones; null when none is connected. The agent's own choice also depends on path state only it knows (direct or relayed, latency, a failed path)",
	),
	candidates: described(
		z.array(RouterCandidate),
		"Every router of that network, lowest metric first",
	),
	access: described(
		z
			.object({
				allowed: z.boolean(),
				rule: z
					.object({
						policy_id: z.string(),
						policy_name: z.string(),
						rule_id: z.string(),
						rule_name: z.string(),
						protocol: z.enum(["all", "tcp", "udp", "icmp"]),
						ports: z.array(z.object({ start: z.int(), end: z.int() })),
					})
					.nullable(),
				reason: z.string(),
			})
			.nullable(),
		"Whether the router forwards the peer's traffic: open (no access control groups), or the first policy rule admitting the peer; null when no route covers the address",
	),
	reason: described(z.string(), "The answer in words"),
});
restSchemaRegistry.add(RouteCheckResponse, {
	id: "RouteCheckResult",
	description: "Which route and router would carry an address for a peer, as the account is now",
});
