import { randomBytes } from "node:crypto";
import { newId } from "../../core/random.js";
import {
	accountFixture,
	peerFixture,
	routeFixture,
	setupKeyFixture,
} from "../../domain/fixtures.js";
import type {
	Account,
	Group,
	Network,
	NetworkResource,
	NetworkRouter,
	NewAuditEvent,
	Peer,
	PersonalAccessToken,
	Policy,
	Route,
	SetupKey,
	User,
} from "../../domain/types.js";

// Domain objects for the conformance suite, complete and valid, with the
// fields a test cares about given and the rest filled in.

const T0 = Date.UTC(2026, 0, 1);
/** A fixed instant `seconds` after the suite's epoch (ordering tests need distinct times). */
export const at = (seconds = 0) => new Date(T0 + seconds * 1000);

let counter = 0;
/** A network no other call returns: 10.x.y.0/24. */
function nextNetwork(): string {
	counter += 1;
	return `10.${(counter >> 8) & 255}.${counter & 255}.0/24`;
}

export function account(over: Partial<Account> = {}): Account {
	return accountFixture({ id: newId(), network: nextNetwork(), createdAt: at(), ...over });
}

export function user(accountId: string, over: Partial<User> = {}): User {
	return {
		id: newId(),
		accountId,
		name: "someone",
		email: `${newId()}@example.test`,
		role: "user",
		isServiceUser: false,
		blocked: false,
		autoGroups: [],
		createdAt: at(),
		...over,
	};
}

export function token(
	userId: string,
	over: Partial<PersonalAccessToken> = {},
): PersonalAccessToken {
	return {
		id: newId(),
		userId,
		name: "t",
		hashedToken: randomBytes(32).toString("hex"),
		expiresAt: at(86_400),
		createdBy: userId,
		createdAt: at(),
		lastUsed: null,
		...over,
	};
}

export function setupKey(accountId: string, over: Partial<SetupKey> = {}): SetupKey {
	return setupKeyFixture({
		id: newId(),
		accountId,
		hashedKey: randomBytes(32).toString("hex"),
		createdAt: at(),
		updatedAt: at(),
		...over,
	});
}

export function group(accountId: string, over: Partial<Group> = {}): Group {
	return { id: newId(), accountId, name: `g-${newId()}`, issued: "api", peerIds: [], ...over };
}

export function policy(accountId: string, groupIds: string[], over: Partial<Policy> = {}): Policy {
	return {
		id: newId(),
		accountId,
		name: "p",
		description: "",
		enabled: true,
		rules: [
			{
				id: newId(),
				name: "r",
				description: "",
				enabled: true,
				action: "accept",
				bidirectional: true,
				protocol: "tcp",
				ports: [22],
				portRanges: [{ start: 8000, end: 8080 }],
				sources: groupIds,
				destinations: groupIds,
			},
		],
		createdAt: at(),
		...over,
	};
}

/** A peer of `acc` at host `host` (1-254) of the account's /24. */
export function peer(acc: Account, host: number, over: Partial<Peer> = {}): Peer {
	const base = acc.network.split("/")[0]!.split(".").slice(0, 3).join(".");
	return peerFixture({
		id: newId(),
		accountId: acc.id,
		wgPublicKey: randomBytes(32).toString("base64"),
		name: `host-${host}`,
		ip: `${base}.${host}`,
		system: { osVersion: "12", kernelVersion: "6.1", agentVersion: "test" },
		createdAt: at(host),
		lastLogin: at(host),
		lastSeen: at(host),
		...over,
	});
}

export function event(accountId: string, seconds: number, targetId = "t"): NewAuditEvent {
	return {
		accountId,
		timestamp: at(seconds),
		activityCode: "group.add",
		initiatorId: "u",
		initiatorName: "n",
		initiatorEmail: "e@example.test",
		targetId,
		meta: { n: String(seconds) },
	};
}

export function route(accountId: string, over: Partial<Route> = {}): Route {
	return routeFixture({ id: newId(), accountId, description: "lan", networkId: "office", ...over });
}

export function network(accountId: string, over: Partial<Network> = {}): Network {
	return { id: newId(), accountId, name: `n-${newId()}`, description: "", ...over };
}

export function networkResource(
	net: Network,
	over: Partial<NetworkResource> = {},
): NetworkResource {
	return {
		id: newId(),
		accountId: net.accountId,
		networkId: net.id,
		name: "db",
		description: "",
		address: "198.18.20.5",
		type: "host",
		prefix: "198.18.20.5/32",
		enabled: true,
		groups: [],
		...over,
	};
}

export function networkRouter(net: Network, over: Partial<NetworkRouter> = {}): NetworkRouter {
	return {
		id: newId(),
		accountId: net.accountId,
		networkId: net.id,
		peerId: null,
		peerGroups: [],
		metric: 100,
		masquerade: true,
		enabled: true,
		...over,
	};
}
