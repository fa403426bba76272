import type { Account, Peer, Policy, PolicyRule, Route, SetupKey } from "./types.js";

// Complete, valid domain objects for tests and benchmarks. Each builder fills
// every field with a neutral value (nothing enabled, no expiry, empty system
// info, times at the epoch) and takes the fields its caller cares about, so a
// new field in a domain type is added here once instead of in every test.
// Ids are fixed ("acc", "k"...) unless given: pure tests want stable names; the
// store conformance suite gives random ones.

const EPOCH = new Date(0);

/** An account "acc" of 100.64.0.0/16 in starling.internal, login expiration off. */
export function accountFixture(over: Partial<Account> = {}): Account {
	return {
		id: "acc",
		network: "100.64.0.0/16",
		dnsDomain: "starling.internal",
		createdAt: EPOCH,
		settings: { peerLoginExpirationEnabled: false, peerLoginExpirationSeconds: 86_400 },
		...over,
	};
}

/**
 * A peer named `name` (also its DNS label and hostname), not connected,
 * with no setup key, user or system details. `system` fields given are
 * merged over the empty ones.
 */
export function peerFixture(
	fields: Pick<Peer, "id" | "accountId" | "name" | "ip" | "wgPublicKey"> &
		Omit<Partial<Peer>, "system"> & { system?: Partial<Peer["system"]> },
): Peer {
	const { system, ...rest } = fields;
	return {
		dnsLabel: fields.name,
		setupKeyId: null,
		userId: null,
		ephemeral: false,
		sshEnabled: false,
		loginExpirationEnabled: false,
		connected: false,
		createdAt: EPOCH,
		lastLogin: EPOCH,
		lastSeen: EPOCH,
		...rest,
		system: {
			hostname: fields.name,
			os: "linux",
			osVersion: "",
			kernelVersion: "",
			agentVersion: "",
			connectionIp: "",
			...system,
		},
	};
}

/** A valid reusable setup key "k" of account "acc": never used, never expires, no groups. */
export function setupKeyFixture(over: Partial<SetupKey> = {}): SetupKey {
	return {
		id: "k",
		accountId: "acc",
		name: "key",
		hashedKey: "h",
		keyPrefix: "ABCDE",
		type: "reusable",
		createdAt: EPOCH,
		updatedAt: EPOCH,
		expiresAt: null,
		revoked: false,
		usedTimes: 0,
		lastUsed: null,
		usageLimit: 0,
		autoGroups: [],
		ephemeral: false,
		...over,
	};
}

/** An enabled one-way accept rule "r" from `sources` to `destinations`, every protocol and port. */
export function ruleFixture(
	fields: Pick<PolicyRule, "sources" | "destinations"> & Partial<PolicyRule>,
): PolicyRule {
	return {
		id: "r",
		name: "r",
		description: "",
		enabled: true,
		action: "accept",
		bidirectional: false,
		protocol: "all",
		ports: [],
		portRanges: [],
		...fields,
	};
}

/** An enabled policy of account "acc" named after its id. */
export function policyFixture(fields: Pick<Policy, "id" | "rules"> & Partial<Policy>): Policy {
	return {
		accountId: "acc",
		name: fields.id,
		description: "",
		enabled: true,
		createdAt: EPOCH,
		...fields,
	};
}

/**
 * A route "route" of account "acc" to 198.18.10.0/24 ("lan"), enabled, metric
 * 100, masquerading, with no router, receivers or access control groups yet.
 */
export function routeFixture(over: Partial<Route> = {}): Route {
	return {
		id: "route",
		accountId: "acc",
		description: "",
		networkId: "lan",
		enabled: true,
		peerId: null,
		peerGroups: [],
		network: "198.18.10.0/24",
		metric: 100,
		masquerade: true,
		groups: [],
		keepRoute: false,
		accessControlGroups: [],
		skipAutoApply: false,
		...over,
	};
}
