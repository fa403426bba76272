import { defaultPolicy, overlappingNetwork } from "../core/account-rules.js";
import { auditEvent, type Initiator } from "../core/audit.js";
import { allocateSubnet, cidrContains, formatCidr, IpamError, parseCidr } from "../core/ipam.js";
import { cryptoRandomInt, newId } from "../core/random.js";
import type { Account, AccountSettings, NewAuditEvent, User } from "../domain/types.js";
import type { Store, StoredKeyPair, StoreWriter } from "../store/store.js";
import { AppError, notFound, stored } from "./errors.js";
import type { NetworkChangeSink } from "./events.js";
import { newToken } from "./tokens.js";

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
	return stored(store.write((tx) => insertAccount(tx, defaults, owner, now)));
}

/**
 * Creates an account inside `tx`: a network no other account overlaps, the
 * All group, the Default policy (All to All) and the owner.
 */
async function insertAccount(
	tx: StoreWriter,
	defaults: AccountDefaults,
	owner: { name: string; email: string },
	now: Date,
): Promise<{ account: Account; owner: User }> {
	const pool = parseCidr(defaults.networkPool);
	const taken = (await tx.listAccountNetworks()).map(parseCidr);
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
	const allGroupId = newId();
	await tx.insertAccount(account);
	await tx.insertGroup({
		id: allGroupId,
		accountId: account.id,
		name: "All",
		issued: "all",
		peerIds: [],
	});
	await tx.insertPolicy(
		defaultPolicy({ accountId: account.id, allGroupId, policyId: newId(), ruleId: newId() }, now),
	);
	await tx.insertUser(user);
	return { account, owner: user };
}

/** The server's key pair, made with `generate` on the first start and kept in the store. */
export async function getOrCreateServerKey(
	store: Store,
	generate: () => StoredKeyPair,
	now: Date,
): Promise<StoredKeyPair> {
	return store.write(async (tx) => {
		const existing = await tx.getServerKey();
		if (existing) return existing;
		const pair = generate();
		await tx.insertServerKey(pair, now);
		return pair;
	});
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
	// Checked again inside the transaction: two first starts make one account.
	return stored(
		store.write(async (tx) => {
			if ((await tx.countUsers()) > 0) return undefined;
			const { account, owner } = await insertAccount(
				tx,
				defaults,
				{ name: "admin", email: "admin@localhost" },
				now,
			);
			const { plainToken, token } = newToken(owner, owner.id, "bootstrap", 365, now);
			await tx.insertToken(token);
			return { account, owner, plainToken };
		}),
	);
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
		store.write(async (tx) => {
			const before = await tx.getAccount(account.id);
			if (!before) return undefined;
			const after: Account = {
				...before,
				settings: change.settings,
				network: network ?? before.network,
			};
			if (after.network !== before.network) {
				if ((await tx.listPeers(account.id)).length > 0) {
					throw new AppError(
						422,
						"the network range can only be changed while the account has no peers",
					);
				}
				const others = (await tx.listAccountNetworks()).filter((n) => n !== before.network);
				if (overlappingNetwork(after.network, others) !== undefined) {
					throw new AppError(409, `network range ${after.network} overlaps another account's`);
				}
			}
			await tx.updateAccount(after);
			await tx.appendEvents(accountChangeEvents(initiator, before, after, now));
			return after;
		}),
	);
	if (!updated) throw notFound("account");
	if (updated.network !== account.network) sink.accessChanged(account.id);
	return updated;
}

function accountChangeEvents(
	initiator: Initiator,
	before: Account,
	after: Account,
	now: Date,
): NewAuditEvent[] {
	const out: NewAuditEvent[] = [];
	const ev = (code: NewAuditEvent["activityCode"], meta: Record<string, string>) =>
		out.push(auditEvent(after.id, initiator, code, after.id, now, meta));
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
}
