import { auditEvent, type Initiator } from "../core/audit.js";
import { allocateSubnet, cidrContains, formatCidr, IpamError, parseCidr } from "../core/ipam.js";
import { cryptoRandomInt, newId } from "../core/random.js";
import type { Account, AccountSettings, NewAuditEvent, User } from "../domain/types.js";
import type { Store } from "../store/store.js";
import { AppError, notFound, stored } from "./errors.js";
import type { NetworkChangeSink } from "./events.js";
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
		autoGroups: [],
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

/** Shortest and longest peer login expiration (NetBird's bounds): one hour to 180 days. */
export const MIN_LOGIN_EXPIRATION_SECONDS = 3600;
export const MAX_LOGIN_EXPIRATION_SECONDS = 180 * 86_400;

export interface AccountChange {
	settings: AccountSettings;
	/** A new account network (CIDR), or undefined to keep it. */
	network?: string | undefined;
}

/**
 * Changes account settings. The network range can change only while the
 * account has no peers (every address would change otherwise), must lie in
 * `pool` (the installation's STARLING_NETWORK_RANGE) and must not overlap
 * another account's.
 */
export async function updateAccount(
	store: Store,
	sink: NetworkChangeSink,
	account: Account,
	change: AccountChange,
	pool: string,
	now: Date,
	initiator: Initiator,
): Promise<Account> {
	let network: string | undefined;
	if (change.network !== undefined && change.network !== account.network) {
		try {
			const wanted = parseCidr(change.network);
			if (!cidrContains(parseCidr(pool), wanted)) {
				throw new AppError(422, `network range must lie inside ${pool}`);
			}
			if (wanted.prefix > 30) throw new AppError(422, "network range must be /30 or larger");
			network = formatCidr(wanted);
		} catch (err) {
			if (err instanceof IpamError) throw new AppError(422, err.message);
			throw err;
		}
	}
	const updated = await stored(
		store.updateAccount(account.id, { settings: change.settings, network }, (before, after) => {
			const out: NewAuditEvent[] = [];
			const ev = (code: NewAuditEvent["activityCode"], meta: Record<string, string>) =>
				out.push(auditEvent(account.id, initiator, code, account.id, now, meta));
			const a = before.settings;
			const b = after.settings;
			if (a.peerLoginExpirationEnabled !== b.peerLoginExpirationEnabled)
				ev(
					b.peerLoginExpirationEnabled
						? "account.setting.peer.login.expiration.enable"
						: "account.setting.peer.login.expiration.disable",
					{},
				);
			if (a.peerLoginExpirationSeconds !== b.peerLoginExpirationSeconds)
				ev("account.setting.peer.login.expiration.update", {
					old_seconds: String(a.peerLoginExpirationSeconds),
					seconds: String(b.peerLoginExpirationSeconds),
				});
			if (before.network !== after.network)
				ev("account.network.range.update", {
					old_network_range: before.network,
					network_range: after.network,
				});
			return out;
		}),
	);
	if (!updated) throw notFound("account");
	if (updated.network !== account.network) sink.accessChanged(account.id);
	return updated;
}
