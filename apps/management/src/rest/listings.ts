import { notFound } from "../app/errors.js";
import { readRoutingConfig } from "../app/routing.js";
import { AccessIndex } from "../core/policy.js";
import type { Peer, RoutingConfig } from "../domain/types.js";
import type { Store, StoreReader } from "../store/store.js";
import { groupJson, type PeerContext, peerJson, policyJson } from "./mappers.js";
import { RevisionCache } from "./revision-cache.js";
import { networkJson, resourceJson, routeJson, routerJson } from "./routing-mappers.js";
import type { NetworkJson, ResourceJson, RouteJson, RouterJson } from "./routing-schemas.js";
import type { GroupJson, PeerJson, PolicyJson } from "./schemas.js";

// The account-wide answers of the REST API (every peer with its access
// count, every group with its members, every policy), built once per change
// of the account and kept by its revision (see revision-cache.ts): listing
// 5,000 peers used to load them and recompute every peer's access under
// every policy on each request. The revision moves with every write to the
// account's peers, groups, memberships, policies or settings, from any
// process on the database, so nothing stale is served.

/** Every peer of an account, mapped, with what single-peer routes need. */
export interface PeerListing {
	peers: readonly Peer[];
	/** peerJson of each peer, in the order of `peers` (oldest first). Shared by requests: never mutated. */
	json: PeerJson[];
	/** Position of each peer id in `peers` and `json`. */
	positionOf: ReadonlyMap<string, number>;
	ctx: PeerContext;
}

/** The account's routes and networks, mapped, each list in creation order. */
export interface RoutingListing {
	config: RoutingConfig;
	routes: RouteJson[];
	networks: NetworkJson[];
	/** In the order of config.networkResources / config.networkRouters. */
	resources: ResourceJson[];
	routers: RouterJson[];
}

/**
 * How much the caches keep, in listed items over all accounts: the peer
 * listing of 20,000 peers (peers, their JSON and the access index) is some
 * 60 MB. Least recently listed accounts go first.
 */
const MAX_CACHED_PEERS = 20_000;
const MAX_CACHED_GROUP_MEMBERS = 100_000;
const MAX_CACHED_POLICY_RULES = 50_000;
const MAX_CACHED_ROUTING_OBJECTS = 50_000;

export class AccountListings {
	private readonly peerCache = new RevisionCache<PeerListing>({
		maxWeight: MAX_CACHED_PEERS,
		weigh: (l) => l.peers.length,
	});
	private readonly groupCache = new RevisionCache<GroupJson[]>({
		maxWeight: MAX_CACHED_GROUP_MEMBERS,
		weigh: (groups) => groups.reduce((n, g) => n + 1 + g.peers.length, 0),
	});
	private readonly policyCache = new RevisionCache<PolicyJson[]>({
		maxWeight: MAX_CACHED_POLICY_RULES,
		weigh: (policies) => policies.reduce((n, p) => n + 1 + p.rules.length, 0),
	});

	private readonly routingCache = new RevisionCache<RoutingListing>({
		maxWeight: MAX_CACHED_ROUTING_OBJECTS,
		weigh: (l) => 1 + l.routes.length + l.networks.length + l.resources.length + l.routers.length,
	});

	constructor(private readonly store: Store) {}

	routing(accountId: string): Promise<RoutingListing> {
		return this.cached(this.routingCache, accountId, buildRoutingListing);
	}

	peers(accountId: string): Promise<PeerListing> {
		return this.cached(this.peerCache, accountId, buildPeerListing);
	}

	groups(accountId: string): Promise<GroupJson[]> {
		return this.cached(this.groupCache, accountId, buildGroupListing);
	}

	policies(accountId: string): Promise<PolicyJson[]> {
		return this.cached(this.policyCache, accountId, buildPolicyListing);
	}

	private async cached<V>(
		cache: RevisionCache<V>,
		accountId: string,
		build: (tx: StoreReader, accountId: string) => Promise<V>,
	): Promise<V> {
		const revision = await this.store.getAccountRevision(accountId);
		if (revision === undefined) {
			cache.delete(accountId);
			throw notFound("account");
		}
		return cache.get(accountId, revision, () =>
			this.store.read(async (tx) => {
				// The revision of this snapshot, which may be later than the one read above.
				const current = await tx.getAccountRevision(accountId);
				if (current === undefined) throw notFound("account");
				return { revision: current, value: await build(tx, accountId) };
			}),
		);
	}
}

async function buildPeerListing(tx: StoreReader, accountId: string): Promise<PeerListing> {
	const account = await tx.getAccount(accountId);
	if (!account) throw notFound("account");
	const peers = await tx.listPeers(accountId);
	const groups = await tx.listGroups(accountId);
	const peerGroupIds = await tx.listPeerGroupIds(accountId);
	const policies = await tx.listPolicies(accountId);
	// With the routes: a peer's accessible peers are those of its map, routers and clients included.
	const routing = await readRoutingConfig(tx, accountId);
	const ctx: PeerContext = {
		account,
		groups: new Map(groups.map((g) => [g.id, g])),
		peerGroupIds,
		access: AccessIndex.build(account, peers, { groups, policies, routing }),
	};
	return {
		peers,
		json: peers.map((p) => peerJson(p, ctx)),
		positionOf: new Map(peers.map((p, i) => [p.id, i])),
		ctx,
	};
}

async function buildGroupListing(tx: StoreReader, accountId: string): Promise<GroupJson[]> {
	const groups = await tx.listGroups(accountId);
	const names = new Map((await tx.listPeers(accountId)).map((p) => [p.id, p.name]));
	return groups.map((g) => groupJson(g, names, names.size));
}

async function buildPolicyListing(tx: StoreReader, accountId: string): Promise<PolicyJson[]> {
	const policies = await tx.listPolicies(accountId);
	const groups = new Map((await tx.listGroups(accountId)).map((g) => [g.id, g]));
	return policies.map((p) => policyJson(p, groups));
}

async function buildRoutingListing(tx: StoreReader, accountId: string): Promise<RoutingListing> {
	const config = await readRoutingConfig(tx, accountId);
	const policies = await tx.listPolicies(accountId);
	const groups = new Map((await tx.listGroups(accountId)).map((g) => [g.id, g]));
	return {
		config,
		routes: config.routes.map(routeJson),
		networks: config.networks.map((n) => networkJson(n, config, policies, groups)),
		resources: config.networkResources.map((r) => resourceJson(r, groups)),
		routers: config.networkRouters.map(routerJson),
	};
}
