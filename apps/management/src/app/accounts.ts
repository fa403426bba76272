import { allocateSubnet, formatCidr, parseCidr } from "../core/ipam.js";
import { cryptoRandomInt, newId } from "../core/random.js";
import type { Account, User } from "../domain/types.js";
import type { Store } from "../store/store.js";
import { createPersonalAccessToken } from "./tokens.js";

export interface AccountDefaults {
	/** Pool that account networks are carved from, e.g. "100.64.0.0/10". */
	networkPool: string;
	/** Prefix length of each account network, e.g. 16. */
	accountPrefixLength: number;
	dnsDomain: string;
}

export async function createAccount(
	store: Store,
	defaults: AccountDefaults,
	owner: { name: string; email: string },
	now: Date,
): Promise<{ account: Account; owner: User }> {
	const pool = parseCidr(defaults.networkPool);
	const taken = (await store.listAccountNetworks()).map(parseCidr);
	const network = allocateSubnet(pool, defaults.accountPrefixLength, taken, cryptoRandomInt);
	const account: Account = {
		id: newId(),
		network: formatCidr(network),
		dnsDomain: defaults.dnsDomain,
		createdAt: now,
		settings: { peerLoginExpirationEnabled: false, peerLoginExpirationSeconds: 86400 * 30 },
	};
	const user: User = {
		id: newId(),
		accountId: account.id,
		name: owner.name,
		email: owner.email,
		role: "owner",
		isServiceUser: false,
		blocked: false,
		createdAt: now,
	};
	await store.createAccount(account, user);
	return { account, owner: user };
}

export interface BootstrapResult {
	account: Account;
	owner: User;
	/** Shown once; only its hash is stored. */
	plainToken: string;
}

/**
 * First start: when the store has no users at all, creates the first
 * account, its owner and a personal access token for the owner. Returns
 * undefined when the installation is already bootstrapped.
 */
export async function bootstrapIfEmpty(
	store: Store,
	defaults: AccountDefaults,
	now: Date,
): Promise<BootstrapResult | undefined> {
	if ((await store.countUsers()) > 0) return undefined;
	const { account, owner } = await createAccount(
		store,
		defaults,
		{ name: "admin", email: "admin@localhost" },
		now,
	);
	const { plainToken } = await createPersonalAccessToken(
		store,
		owner,
		owner.id,
		"bootstrap",
		365,
		now,
	);
	return { account, owner, plainToken };
}
