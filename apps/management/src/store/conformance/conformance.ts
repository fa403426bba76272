import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bootstrapIfEmpty, createAccount, getOrCreateServerKey } from "../../app/accounts.js";
import { AppError } from "../../app/errors.js";
import { deleteGroup } from "../../app/groups.js";
import { registerPeer } from "../../app/peers.js";
import { createPolicy } from "../../app/policies.js";
import {
	closeSyncSession,
	deregisterInstance,
	heartbeat,
	openSyncSession,
	registerInstance,
} from "../../app/sessions.js";
import { ipToInt, parseCidr } from "../../core/ipam.js";
import type { Account } from "../../domain/types.js";
import { type Store, StoreConflictError, StoreReferenceError } from "../store.js";
import * as f from "./fixtures.js";
import { describeRoutingConformance } from "./routing.js";

/** A fresh, empty database behind a store, and the means to open more instances on it. */
export interface FreshStore {
	store: Store;
	/** Another instance on the same database, as a second management process would open it. */
	openAnother(): Promise<Store>;
	/** Closes every instance opened and removes the database. */
	destroy(): Promise<void>;
}

const DEFAULTS = { networkPool: "100.64.0.0/10", accountPrefixLength: 16, dnsDomain: "s.internal" };
const OWNER = { name: "owner", email: "owner@example.test" };
const nobody = { peerChanged() {}, peerRemoved() {}, accessChanged() {} };
const initiator = { id: "u", name: "n", email: "e@example.test" };

/** Settles every promise; the fulfilled values and the rejection reasons, in order. */
async function settle<T>(work: Promise<T>[]) {
	const results = await Promise.allSettled(work);
	return {
		values: results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : [])),
		errors: results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : [])),
	};
}

const newPeerInput = (hostname: string) => ({
	wgPublicKey: randomBytes(32).toString("base64"),
	name: hostname,
	system: {
		hostname,
		os: "linux",
		osVersion: "12",
		kernelVersion: "6.1",
		agentVersion: "t",
		connectionIp: "",
	},
	now: new Date(),
});

/**
 * The contract of `Store` (store.ts, store/README.md) as tests: every method,
 * transactions, and the concurrency cases a control plane depends on. A
 * backend's test file calls this with a factory of empty databases.
 */
export function runStoreConformance(name: string, openFreshStore: () => Promise<FreshStore>): void {
	describe(`Store conformance: ${name}`, () => {
		let fresh: FreshStore;
		let store: Store;
		beforeEach(async () => {
			fresh = await openFreshStore();
			store = fresh.store;
		});
		afterEach(async () => {
			await fresh.destroy();
		});

		/** An account with an owner, inserted directly. */
		async function seedAccount(over: Partial<Account> = {}) {
			const acc = f.account(over);
			const owner = f.user(acc.id, { role: "owner" });
			await store.write(async (tx) => {
				await tx.insertAccount(acc);
				await tx.insertUser(owner);
			});
			return { acc, owner };
		}

		describe("server key", () => {
			it("is absent, then stored once; a second insert conflicts", async () => {
				expect(await store.getServerKey()).toBeUndefined();
				const pair = { privateKey: randomBytes(32), publicKey: randomBytes(32) };
				await store.write((tx) => tx.insertServerKey(pair, f.at()));
				const got = await store.getServerKey();
				expect(Buffer.from(got!.privateKey)).toEqual(Buffer.from(pair.privateKey));
				expect(Buffer.from(got!.publicKey)).toEqual(Buffer.from(pair.publicKey));
				await expect(store.write((tx) => tx.insertServerKey(pair, f.at()))).rejects.toBeInstanceOf(
					StoreConflictError,
				);
			});
		});

		describe("accounts", () => {
			it("round-trip, update settings and network, refuse a duplicate network", async () => {
				const { acc } = await seedAccount();
				expect(await store.getAccount(acc.id)).toEqual(acc);
				expect(await store.getAccount("nope")).toBeUndefined();
				expect(await store.listAccountNetworks()).toEqual([acc.network]);
				const changed = {
					...acc,
					network: "10.200.0.0/16",
					settings: { peerLoginExpirationEnabled: true, peerLoginExpirationSeconds: 3600 },
				};
				expect(await store.write((tx) => tx.updateAccount(changed))).toBe(true);
				expect(await store.getAccount(acc.id)).toEqual(changed);
				expect(await store.write((tx) => tx.updateAccount(f.account()))).toBe(false);
				await expect(
					store.write((tx) => tx.insertAccount(f.account({ network: changed.network }))),
				).rejects.toBeInstanceOf(StoreConflictError);
			});
		});

		describe("users", () => {
			it("round-trip, list oldest first per account, count, first owner, update, delete with tokens", async () => {
				const { acc, owner } = await seedAccount({ createdAt: f.at(0) });
				const other = await seedAccount();
				const later = f.user(acc.id, {
					createdAt: f.at(10),
					autoGroups: ["g1"],
					isServiceUser: true,
				});
				const earlier = f.user(acc.id, { createdAt: f.at(5), role: "admin" });
				await store.write(async (tx) => {
					await tx.insertUser(later);
					await tx.insertUser(earlier);
				});
				expect(await store.getUser(later.id)).toEqual(later);
				expect((await store.listUsers(acc.id)).map((u) => u.id)).toEqual([
					owner.id,
					earlier.id,
					later.id,
				]);
				expect(await store.countUsers()).toBe(4);
				expect((await store.getFirstOwner())?.accountId).toBeDefined();
				expect([owner.id, other.owner.id]).toContain((await store.getFirstOwner())?.id);

				const updated = { ...later, role: "admin" as const, autoGroups: [], blocked: true };
				expect(await store.write((tx) => tx.updateUser(updated))).toBe(true);
				expect(await store.getUser(later.id)).toEqual(updated);
				// Scoped by account: another account cannot change or delete it.
				expect(
					await store.write((tx) => tx.updateUser({ ...updated, accountId: other.acc.id })),
				).toBe(false);
				expect(await store.write((tx) => tx.deleteUser(other.acc.id, later.id))).toBe(false);

				const t = f.token(later.id);
				await store.write((tx) => tx.insertToken(t));
				expect(await store.write((tx) => tx.deleteUser(acc.id, later.id))).toBe(true);
				expect(await store.getUser(later.id)).toBeUndefined();
				expect(await store.getTokenByHash(t.hashedToken)).toBeUndefined();
			});

			it("an empty store has no users and no owner", async () => {
				expect(await store.countUsers()).toBe(0);
				expect(await store.getFirstOwner()).toBeUndefined();
			});
		});

		describe("tokens", () => {
			it("round-trip by hash and id, list oldest first, touch, delete; hashes are unique", async () => {
				const { owner } = await seedAccount();
				const a = f.token(owner.id, { createdAt: f.at(2) });
				const b = f.token(owner.id, { createdAt: f.at(1) });
				await store.write(async (tx) => {
					await tx.insertToken(a);
					await tx.insertToken(b);
				});
				expect(await store.getTokenByHash(a.hashedToken)).toEqual(a);
				expect(await store.getToken(owner.id, b.id)).toEqual(b);
				expect(await store.getToken("someone-else", b.id)).toBeUndefined();
				expect((await store.listTokens(owner.id)).map((t) => t.id)).toEqual([b.id, a.id]);
				await store.write((tx) => tx.touchToken(a.id, f.at(99)));
				expect((await store.getToken(owner.id, a.id))?.lastUsed).toEqual(f.at(99));
				await expect(
					store.write((tx) => tx.insertToken(f.token(owner.id, { hashedToken: a.hashedToken }))),
				).rejects.toBeInstanceOf(StoreConflictError);
				expect(await store.write((tx) => tx.deleteToken("someone-else", a.id))).toBe(false);
				expect(await store.write((tx) => tx.deleteToken(owner.id, a.id))).toBe(true);
				expect(await store.getTokenByHash(a.hashedToken)).toBeUndefined();
			});
		});

		describe("setup keys", () => {
			it("round-trip by id and hash, list oldest first, update, delete; scoped by account", async () => {
				const { acc } = await seedAccount();
				const other = await seedAccount();
				const k1 = f.setupKey(acc.id, { createdAt: f.at(3), expiresAt: f.at(100) });
				const k2 = f.setupKey(acc.id, { createdAt: f.at(1), type: "one-off", usageLimit: 1 });
				await store.write(async (tx) => {
					await tx.insertSetupKey(k1);
					await tx.insertSetupKey(k2);
				});
				expect(await store.getSetupKey(acc.id, k1.id)).toEqual(k1);
				expect(await store.getSetupKey(other.acc.id, k1.id)).toBeUndefined();
				expect(await store.getSetupKeyByHash(k2.hashedKey)).toEqual(k2);
				expect((await store.listSetupKeys(acc.id)).map((k) => k.id)).toEqual([k2.id, k1.id]);
				expect(await store.listSetupKeys(other.acc.id)).toEqual([]);
				const changed = {
					...k1,
					name: "renamed",
					revoked: true,
					autoGroups: ["x"],
					usedTimes: 7,
					lastUsed: f.at(50),
					updatedAt: f.at(50),
				};
				expect(await store.write((tx) => tx.updateSetupKey(changed))).toBe(true);
				expect(await store.getSetupKey(acc.id, k1.id)).toEqual(changed);
				await expect(
					store.write((tx) => tx.insertSetupKey(f.setupKey(acc.id, { hashedKey: k1.hashedKey }))),
				).rejects.toBeInstanceOf(StoreConflictError);
				expect(await store.write((tx) => tx.deleteSetupKey(other.acc.id, k1.id))).toBe(false);
				expect(await store.write((tx) => tx.deleteSetupKey(acc.id, k1.id))).toBe(true);
				expect(await store.getSetupKeyByHash(k1.hashedKey)).toBeUndefined();
			});
		});

		describe("groups and peers", () => {
			it("peers round-trip, list oldest first, update, disconnect all, delete; keys, addresses and labels are unique", async () => {
				const { acc } = await seedAccount();
				const other = await seedAccount();
				const p2 = f.peer(acc, 2);
				const p1 = f.peer(acc, 1, { connected: true, setupKeyId: "k", ephemeral: true });
				await store.write(async (tx) => {
					await tx.insertPeer(p2);
					await tx.insertPeer(p1);
				});
				expect(await store.getPeer(acc.id, p1.id)).toEqual(p1);
				expect(await store.getPeer(other.acc.id, p1.id)).toBeUndefined();
				expect(await store.getPeerByPublicKey(p2.wgPublicKey)).toEqual(p2);
				expect((await store.listPeers(acc.id)).map((p) => p.id)).toEqual([p1.id, p2.id]);
				const byIp = (a: { ip: string }, b: { ip: string }) => a.ip.localeCompare(b.ip);
				expect((await store.listPeerAddresses(acc.id)).sort(byIp)).toEqual(
					[p1, p2].map((p) => ({ ip: p.ip, dnsLabel: p.dnsLabel })).sort(byIp),
				);
				expect(await store.listPeerAddresses("no-such-account")).toEqual([]);

				const renamed = {
					...p2,
					name: "web",
					dnsLabel: "web",
					sshEnabled: true,
					loginExpirationEnabled: true,
					connected: true,
					system: { ...p2.system, hostname: "web", agentVersion: "2", connectionIp: "" },
					lastLogin: f.at(70),
					lastSeen: f.at(71),
				};
				expect(await store.write((tx) => tx.updatePeer(renamed))).toBe(true);
				expect(await store.getPeer(acc.id, p2.id)).toEqual(renamed);

				await store.write((tx) => tx.markAllPeersDisconnected(f.at(80)));
				for (const p of await store.listPeers(acc.id)) {
					expect(p.connected).toBe(false);
					expect(p.lastSeen).toEqual(f.at(80));
				}

				const conflicts = [
					f.peer(acc, 3, { wgPublicKey: p1.wgPublicKey }),
					f.peer(acc, 3, { ip: p1.ip }),
					f.peer(acc, 3, { dnsLabel: p1.dnsLabel }),
				];
				for (const c of conflicts) {
					await expect(store.write((tx) => tx.insertPeer(c))).rejects.toBeInstanceOf(
						StoreConflictError,
					);
				}
				// Addresses and labels are unique per account only.
				const elsewhere = f.peer(other.acc, 1, { ip: p1.ip, dnsLabel: p1.dnsLabel });
				await store.write((tx) => tx.insertPeer(elsewhere));

				expect(await store.write((tx) => tx.deletePeer(other.acc.id, p1.id))).toBe(false);
				expect(await store.write((tx) => tx.deletePeer(acc.id, p1.id))).toBe(true);
				expect(await store.getPeerByPublicKey(p1.wgPublicKey)).toBeUndefined();
			});

			it("groups round-trip with sorted members, list by name, update membership, add peers, delete; names are unique", async () => {
				const { acc } = await seedAccount();
				const other = await seedAccount();
				const peers = [f.peer(acc, 1), f.peer(acc, 2), f.peer(acc, 3)];
				const sortedIds = peers.map((p) => p.id).sort();
				const b = f.group(acc.id, { name: "b", peerIds: [sortedIds[2]!, sortedIds[0]!] });
				const a = f.group(acc.id, { name: "a", issued: "all" });
				await store.write(async (tx) => {
					for (const p of peers) await tx.insertPeer(p);
					await tx.insertGroup(b);
					await tx.insertGroup(a);
				});
				expect(await store.getGroup(acc.id, b.id)).toEqual({
					...b,
					peerIds: [sortedIds[0], sortedIds[2]],
				});
				expect(await store.getGroup(other.acc.id, b.id)).toBeUndefined();
				expect((await store.listGroups(acc.id)).map((g) => [g.name, g.peerIds])).toEqual([
					["a", []],
					["b", [sortedIds[0], sortedIds[2]]],
				]);

				const moved = { ...b, name: "bee", peerIds: [sortedIds[1]!] };
				expect(await store.write((tx) => tx.updateGroup(moved))).toBe(true);
				expect(await store.getGroup(acc.id, b.id)).toEqual(moved);
				expect(
					await store.write((tx) => tx.updateGroup({ ...moved, accountId: other.acc.id })),
				).toBe(false);

				await store.write(async (tx) => {
					await tx.addPeerToGroups(acc.id, sortedIds[0]!, [a.id, b.id]);
					await tx.addPeerToGroups(acc.id, sortedIds[0]!, [a.id]);
					// A group of another account is not joined.
					await tx.addPeerToGroups(other.acc.id, sortedIds[0]!, [a.id]);
				});
				expect((await store.getGroup(acc.id, a.id))?.peerIds).toEqual([sortedIds[0]]);
				expect(await store.listGroupSummaries(acc.id)).toEqual(
					(await store.listGroups(acc.id)).map(({ peerIds: _, ...summary }) => summary),
				);
				const byPeer = await store.listPeerGroupIds(acc.id);
				expect(byPeer.get(sortedIds[0]!)).toEqual([a.id, b.id].sort());
				expect(byPeer.get(sortedIds[1]!)).toEqual([b.id]);
				expect(byPeer.has(sortedIds[2]!)).toBe(false);

				await expect(
					store.write((tx) => tx.insertGroup(f.group(acc.id, { name: "a" }))),
				).rejects.toBeInstanceOf(StoreConflictError);
				await store.write((tx) => tx.insertGroup(f.group(other.acc.id, { name: "a" })));

				// Deleting a peer removes its memberships; deleting a group removes the group only.
				await store.write((tx) => tx.deletePeer(acc.id, sortedIds[0]!));
				expect((await store.getGroup(acc.id, a.id))?.peerIds).toEqual([]);
				expect(await store.write((tx) => tx.deleteGroup(other.acc.id, b.id))).toBe(false);
				expect(await store.write((tx) => tx.deleteGroup(acc.id, b.id))).toBe(true);
				expect(await store.getGroup(acc.id, b.id)).toBeUndefined();
				expect(await store.getPeer(acc.id, sortedIds[1]!)).toBeDefined();
			});
		});

		describe("policies", () => {
			it("round-trip, list in creation order, update, delete; scoped by account", async () => {
				const { acc } = await seedAccount();
				const other = await seedAccount();
				const g = f.group(acc.id);
				const first = f.policy(acc.id, [g.id], { name: "z", createdAt: f.at(1) });
				const second = f.policy(acc.id, [g.id], { name: "a", createdAt: f.at(2) });
				await store.write(async (tx) => {
					await tx.insertGroup(g);
					await tx.insertPolicy(second);
					await tx.insertPolicy(first);
				});
				expect(await store.getPolicy(acc.id, first.id)).toEqual(first);
				expect(await store.getPolicy(other.acc.id, first.id)).toBeUndefined();
				expect((await store.listPolicies(acc.id)).map((p) => p.id)).toEqual([first.id, second.id]);
				const changed = { ...first, name: "y", description: "d", enabled: false, rules: [] };
				expect(await store.write((tx) => tx.updatePolicy(changed))).toBe(true);
				expect(await store.getPolicy(acc.id, first.id)).toEqual(changed);
				expect(await store.write((tx) => tx.deletePolicy(other.acc.id, first.id))).toBe(false);
				expect(await store.write((tx) => tx.deletePolicy(acc.id, first.id))).toBe(true);
				expect((await store.listPolicies(acc.id)).map((p) => p.id)).toEqual([second.id]);
			});
		});

		describe("routes and networks", () => {
			describeRoutingConformance({ store: () => store, seedAccount });
		});

		describe("account revision", () => {
			it("grows with every change to peers, groups, memberships, policies and settings, and not with tokens", async () => {
				const { acc, owner } = await seedAccount();
				const other = await seedAccount();
				expect(await store.getAccountRevision("no-such-account")).toBeUndefined();
				let last = (await store.getAccountRevision(acc.id))!;
				expect(typeof last).toBe("number");
				/** Runs `change`; the revision must have grown (or stayed, `moves` false). */
				const expectMove = async (what: string, change: () => Promise<unknown>, moves = true) => {
					const otherBefore = await store.getAccountRevision(other.acc.id);
					await change();
					const now = (await store.getAccountRevision(acc.id))!;
					expect(now > last, what).toBe(moves);
					if (!moves) expect(now, what).toBe(last);
					// Another account's revision stays where it was.
					expect(await store.getAccountRevision(other.acc.id), what).toBe(otherBefore);
					last = now;
				};
				const p1 = f.peer(acc, 1);
				const p2 = f.peer(acc, 2);
				const g = f.group(acc.id, { peerIds: [] });
				const pol = f.policy(acc.id, [g.id]);
				const tok = f.token(owner.id);
				await expectMove("insert peers", () =>
					store.write(async (tx) => {
						await tx.insertPeer(p1);
						await tx.insertPeer(p2);
					}),
				);
				await expectMove("update a peer", () =>
					store.write((tx) => tx.updatePeer({ ...p1, connected: true })),
				);
				await expectMove("disconnect all", () =>
					store.write((tx) => tx.markAllPeersDisconnected(f.at(5))),
				);
				await expectMove("insert a group", () => store.write((tx) => tx.insertGroup(g)));
				await expectMove("add a member", () =>
					store.write((tx) => tx.addPeerToGroups(acc.id, p1.id, [g.id])),
				);
				await expectMove("replace members", () =>
					store.write((tx) => tx.updateGroup({ ...g, peerIds: [p2.id] })),
				);
				await expectMove("insert a policy", () => store.write((tx) => tx.insertPolicy(pol)));
				await expectMove("update a policy", () =>
					store.write((tx) => tx.updatePolicy({ ...pol, enabled: false })),
				);
				await expectMove("update settings", () =>
					store.write((tx) =>
						tx.updateAccount({
							...acc,
							settings: { ...acc.settings, peerLoginExpirationEnabled: true },
						}),
					),
				);
				await expectMove(
					"tokens do not move it",
					async () => {
						await store.write((tx) => tx.insertToken(tok));
						await store.write((tx) => tx.touchToken(tok.id, f.at(9)));
					},
					false,
				);
				await expectMove("delete a policy", () =>
					store.write((tx) => tx.deletePolicy(acc.id, pol.id)),
				);
				await expectMove("delete a peer", () => store.write((tx) => tx.deletePeer(acc.id, p2.id)));
				await expectMove("delete a group", () => store.write((tx) => tx.deleteGroup(acc.id, g.id)));
				const another = await fresh.openAnother();
				await expectMove("a change by another instance", () =>
					another.write((tx) => tx.insertPeer(f.peer(acc, 3))),
				);
			});

			it("read in one snapshot with the data, names that data", async () => {
				const { acc } = await seedAccount();
				const another = await fresh.openAnother();
				const seen = await store.read(async (tx) => {
					const before = await tx.getAccountRevision(acc.id);
					await another.write((w) => w.insertPeer(f.peer(acc, 1)));
					return {
						before,
						after: await tx.getAccountRevision(acc.id),
						peers: (await tx.listPeers(acc.id)).length,
					};
				});
				expect(seen.after).toBe(seen.before);
				expect(seen.peers).toBe(0);
				expect(await store.getAccountRevision(acc.id)).toBeGreaterThan(seen.before!);
			});
		});

		describe("instances and Sync sessions", () => {
			it("instances are stored, refreshed and removed with their sessions; sessions follow their peer", async () => {
				const { acc } = await seedAccount();
				const p1 = f.peer(acc, 1);
				const p2 = f.peer(acc, 2);
				await store.write(async (tx) => {
					await tx.insertPeer(p1);
					await tx.insertPeer(p2);
				});
				const a = { id: "inst-a", startedAt: f.at(1), heartbeatAt: f.at(1) };
				const b = { id: "inst-b", startedAt: f.at(2), heartbeatAt: f.at(2) };
				await store.write(async (tx) => {
					await tx.putInstance(b);
					await tx.putInstance(a);
				});
				expect(await store.listInstances()).toEqual([a, b]);
				expect(await store.write((tx) => tx.touchInstance("inst-a", f.at(5)))).toBe(true);
				expect(await store.write((tx) => tx.touchInstance("nope", f.at(5)))).toBe(false);
				// Putting a stored id replaces its times (a restart with the same id).
				await store.write((tx) =>
					tx.putInstance({ ...b, startedAt: f.at(9), heartbeatAt: f.at(9) }),
				);
				expect(await store.listInstances()).toEqual([
					{ ...a, heartbeatAt: f.at(5) },
					{ ...b, startedAt: f.at(9), heartbeatAt: f.at(9) },
				]);

				const s = (streamId: string, peerId: string, instanceId: string, sec: number) => ({
					streamId,
					accountId: acc.id,
					peerId,
					instanceId,
					since: f.at(sec),
				});
				await store.write(async (tx) => {
					await tx.insertSyncSession(s("s2", p1.id, "inst-a", 11));
					await tx.insertSyncSession(s("s1", p2.id, "inst-a", 10));
					await tx.insertSyncSession(s("s3", p1.id, "inst-b", 12));
				});
				expect(await store.listSyncSessionsOfInstance("inst-a")).toEqual([
					s("s1", p2.id, "inst-a", 10),
					s("s2", p1.id, "inst-a", 11),
				]);
				expect(await store.countSyncSessionsOfPeer(p1.id)).toBe(2);
				await expect(
					store.write((tx) => tx.insertSyncSession(s("s1", p1.id, "inst-b", 13))),
				).rejects.toBeInstanceOf(StoreConflictError);
				await expect(
					store.write((tx) => tx.insertSyncSession(s("s9", "no-peer", "inst-b", 13))),
				).rejects.toBeInstanceOf(StoreReferenceError);
				await expect(
					store.write((tx) => tx.insertSyncSession(s("s9", p1.id, "no-instance", 13))),
				).rejects.toBeInstanceOf(StoreReferenceError);

				// Removing one stream's session leaves the others.
				expect(await store.write((tx) => tx.deleteSyncSession("s2"))).toBe(true);
				expect(await store.write((tx) => tx.deleteSyncSession("s2"))).toBe(false);
				expect(await store.countSyncSessionsOfPeer(p1.id)).toBe(1);
				// Deleting a peer deletes its sessions.
				await store.write((tx) => tx.deletePeer(acc.id, p2.id));
				expect(await store.listSyncSessionsOfInstance("inst-a")).toEqual([]);
				// Clearing an instance's sessions keeps the instance; deleting it removes both.
				await store.write((tx) => tx.insertSyncSession(s("s4", p1.id, "inst-a", 14)));
				await store.write((tx) => tx.deleteSyncSessionsOfInstance("inst-a"));
				expect(await store.listSyncSessionsOfInstance("inst-a")).toEqual([]);
				expect((await store.listInstances()).map((i) => i.id)).toEqual(["inst-a", "inst-b"]);
				expect(await store.write((tx) => tx.deleteInstance("inst-b"))).toBe(true);
				expect(await store.write((tx) => tx.deleteInstance("inst-b"))).toBe(false);
				expect(await store.countSyncSessionsOfPeer(p1.id)).toBe(0);
				expect((await store.listInstances()).map((i) => i.id)).toEqual(["inst-a"]);
			});

			it("connected state per instance, across two instances on one database", async () => {
				const other = await fresh.openAnother();
				const { acc } = await seedAccount();
				const p1 = f.peer(acc, 1);
				const p2 = f.peer(acc, 2);
				await store.write(async (tx) => {
					await tx.insertPeer(p1);
					await tx.insertPeer(p2);
				});
				const session = (streamId: string, peerId: string, instanceId: string, sec: number) => ({
					streamId,
					accountId: acc.id,
					peerId,
					instanceId,
					since: f.at(sec),
				});
				await registerInstance(store, "a", f.at(0), false);
				await openSyncSession(store, p1, session("a1", p1.id, "a", 1));
				// B starts: A's peers stay connected.
				expect(await registerInstance(other, "b", f.at(2), false)).toEqual(new Set());
				expect((await other.getPeer(acc.id, p1.id))?.connected).toBe(true);
				await openSyncSession(other, p2, session("b1", p2.id, "b", 3));
				// p1 moves to B, then its stream on A closes: it stays connected (B's row).
				await openSyncSession(other, p1, session("b2", p1.id, "b", 4));
				const afterMove = await closeSyncSession(store, p1, "a1", f.at(5));
				expect(afterMove?.connected).toBe(true);
				expect((await store.listSyncSessionsOfInstance("b")).map((x) => x.streamId)).toEqual([
					"b1",
					"b2",
				]);
				// A restarts with the same id: only its own (none left) sessions go.
				await openSyncSession(store, p1, session("a2", p1.id, "a", 6));
				await registerInstance(store, "a", f.at(7), false);
				expect((await store.getPeer(acc.id, p1.id))?.connected).toBe(true);
				expect(await store.listSyncSessionsOfInstance("a")).toEqual([]);

				// B's heartbeat stops; A, beating later, expires B's sessions and disconnects its peers.
				const revision = await store.getAccountRevision(acc.id);
				const early = await heartbeat(store, "a", f.at(10), 15_000);
				expect(early.expired).toEqual([]);
				const late = await heartbeat(store, "a", f.at(20), 15_000);
				expect(late.expired.map((i) => i.id)).toEqual(["b"]);
				expect(late.accounts).toEqual(new Set([acc.id]));
				for (const p of [p1, p2]) {
					const got = await store.getPeer(acc.id, p.id);
					expect(got?.connected).toBe(false);
					expect(got?.lastSeen).toEqual(f.at(20));
				}
				expect(await store.getAccountRevision(acc.id)).toBeGreaterThan(revision!);
				expect((await store.listInstances()).map((i) => i.id)).toEqual(["a"]);
				// B comes back from a long pause: its heartbeat finds its row gone and stores it again.
				const back = await heartbeat(other, "b", f.at(21), 15_000);
				expect(back.reRegistered).toBe(true);
				expect((await store.listInstances()).map((i) => i.id)).toEqual(["a", "b"]);
				// A graceful stop removes the instance and disconnects its peers.
				await openSyncSession(store, p2, session("a3", p2.id, "a", 22));
				expect(await deregisterInstance(store, "a", f.at(23))).toEqual(new Set([acc.id]));
				expect((await store.getPeer(acc.id, p2.id))?.connected).toBe(false);
			});

			it("alone on the database (in-process bus), a start removes every other instance's sessions", async () => {
				const { acc } = await seedAccount();
				const p1 = f.peer(acc, 1);
				await store.write((tx) => tx.insertPeer(p1));
				await registerInstance(store, "old-run", f.at(0), true);
				await openSyncSession(store, p1, {
					streamId: "x",
					accountId: acc.id,
					peerId: p1.id,
					instanceId: "old-run",
					since: f.at(1),
				});
				expect(await registerInstance(store, "new-run", f.at(2), true)).toEqual(new Set([acc.id]));
				expect((await store.getPeer(acc.id, p1.id))?.connected).toBe(false);
				expect((await store.listInstances()).map((i) => i.id)).toEqual(["new-run"]);
			});
		});

		describe("audit events", () => {
			it("are listed newest first, per account, up to the limit", async () => {
				const { acc } = await seedAccount();
				const other = await seedAccount();
				await store.write((tx) =>
					tx.appendEvents([f.event(acc.id, 1), f.event(acc.id, 2), f.event(other.acc.id, 3)]),
				);
				await store.write((tx) => tx.appendEvents([f.event(acc.id, 4)]));
				const events = await store.listEvents(acc.id, 2);
				expect(events.map((e) => e.meta.n)).toEqual(["4", "2"]);
				expect(events[0]).toMatchObject({ ...f.event(acc.id, 4), id: expect.any(Number) });
				expect((await store.listEvents(acc.id, 10)).length).toBe(3);
			});
		});

		describe("transactions", () => {
			it("a write that throws leaves nothing behind and re-throws", async () => {
				const acc = f.account();
				const boom = new Error("boom");
				await expect(
					store.write(async (tx) => {
						await tx.insertAccount(acc);
						await tx.insertUser(f.user(acc.id));
						await tx.appendEvents([f.event(acc.id, 1)]);
						throw boom;
					}),
				).rejects.toBe(boom);
				expect(await store.getAccount(acc.id)).toBeUndefined();
				expect(await store.countUsers()).toBe(0);
				expect(await store.listEvents(acc.id, 10)).toEqual([]);
				// A refused row fails the whole transaction too.
				const { acc: kept } = await seedAccount();
				const extra = f.account();
				await expect(
					store.write(async (tx) => {
						await tx.insertAccount(extra);
						await tx.insertAccount(f.account({ network: kept.network }));
					}),
				).rejects.toBeInstanceOf(StoreConflictError);
				expect(await store.getAccount(extra.id)).toBeUndefined();
			});

			it("a write sees its own changes; a read is one snapshot while another instance commits", async () => {
				const { acc } = await seedAccount();
				await store.write(async (tx) => {
					await tx.insertPeer(f.peer(acc, 1));
					expect((await tx.listPeers(acc.id)).length).toBe(1);
				});
				const other = await fresh.openAnother();
				const seen = await store.read(async (tx) => {
					const before = (await tx.listPeers(acc.id)).length;
					await other.write((w) => w.insertPeer(f.peer(acc, 2)));
					const after = (await tx.listPeers(acc.id)).length;
					return { before, after };
				});
				expect(seen).toEqual({ before: 1, after: 1 });
				expect((await store.listPeers(acc.id)).length).toBe(2);
			});

			it("parallel read-modify-write transactions lose no update, on one instance and across two", async () => {
				const { acc } = await seedAccount();
				const key = f.setupKey(acc.id);
				await store.write((tx) => tx.insertSetupKey(key));
				const other = await fresh.openAnother();
				const increment = (s: Store) =>
					s.write(async (tx) => {
						const k = await tx.getSetupKey(acc.id, key.id);
						// Give other callers every chance to interleave.
						await new Promise((r) => setImmediate(r));
						await tx.updateSetupKey({ ...k!, usedTimes: k!.usedTimes + 1 });
					});
				await Promise.all(Array.from({ length: 40 }, (_, i) => increment(i % 2 ? store : other)));
				expect((await store.getSetupKey(acc.id, key.id))?.usedTimes).toBe(40);
			});
		});

		describe("concurrency through the use cases", () => {
			it("first starts racing on two instances make one account and one server key", async () => {
				const other = await fresh.openAnother();
				const boots = await Promise.all(
					Array.from({ length: 6 }, (_, i) =>
						bootstrapIfEmpty(i % 2 ? store : other, DEFAULTS, new Date()),
					),
				);
				expect(boots.filter((b) => b !== undefined)).toHaveLength(1);
				expect(await store.countUsers()).toBe(1);
				expect(await store.listAccountNetworks()).toHaveLength(1);

				const keys = await Promise.all(
					Array.from({ length: 6 }, (_, i) =>
						getOrCreateServerKey(
							i % 2 ? store : other,
							() => ({
								privateKey: randomBytes(32),
								publicKey: randomBytes(32),
							}),
							new Date(),
						),
					),
				);
				const publics = new Set(keys.map((k) => Buffer.from(k.publicKey).toString("hex")));
				expect(publics.size).toBe(1);
			});

			it("a one-off setup key registers exactly one peer under parallel logins on two instances", async () => {
				const { account } = await createAccount(store, DEFAULTS, OWNER, new Date());
				const key = f.setupKey(account.id, { type: "one-off", usageLimit: 1 });
				await store.write((tx) => tx.insertSetupKey(key));
				const other = await fresh.openAnother();
				const { values, errors } = await settle(
					Array.from({ length: 20 }, (_, i) =>
						registerPeer(i % 2 ? store : other, key.hashedKey, newPeerInput(`h${i}`)),
					),
				);
				expect(errors).toEqual([]);
				expect(values.filter((r) => r.ok)).toHaveLength(1);
				expect(values.filter((r) => !r.ok).map((r) => !r.ok && r.reason)).toEqual(
					Array(19).fill("one-off setup key has already been used"),
				);
				expect(await store.listPeers(account.id)).toHaveLength(1);
				expect((await store.getSetupKey(account.id, key.id))?.usedTimes).toBe(1);
			});

			it("50 parallel registrations on two instances get distinct addresses and DNS labels in the network", async () => {
				const { account } = await createAccount(store, DEFAULTS, OWNER, new Date());
				const key = f.setupKey(account.id);
				await store.write((tx) => tx.insertSetupKey(key));
				const other = await fresh.openAnother();
				const { values, errors } = await settle(
					Array.from({ length: 50 }, (_, i) =>
						registerPeer(i % 2 ? store : other, key.hashedKey, newPeerInput("same-host")),
					),
				);
				expect(errors).toEqual([]);
				expect(values.every((r) => r.ok)).toBe(true);
				const peers = await store.listPeers(account.id);
				expect(peers).toHaveLength(50);
				expect(new Set(peers.map((p) => p.ip)).size).toBe(50);
				expect(new Set(peers.map((p) => p.dnsLabel)).size).toBe(50);
				const net = parseCidr(account.network);
				for (const p of peers) {
					expect((ipToInt(p.ip) & ~(2 ** (32 - net.prefix) - 1)) >>> 0).toBe(net.base);
				}
				expect((await store.getSetupKey(account.id, key.id))?.usedTimes).toBe(50);
				// Every peer joined All.
				const all = (await store.listGroups(account.id)).find((g) => g.issued === "all");
				expect(all?.peerIds).toHaveLength(50);
			});

			it("parallel account creation on two instances gives non-overlapping networks until the pool is full", async () => {
				const small = { ...DEFAULTS, networkPool: "100.64.0.0/22", accountPrefixLength: 24 };
				const other = await fresh.openAnother();
				const { values, errors } = await settle(
					Array.from({ length: 6 }, (_, i) =>
						createAccount(i % 2 ? store : other, small, OWNER, new Date()),
					),
				);
				expect(values).toHaveLength(4);
				expect(errors).toHaveLength(2);
				const networks = values.map((v) => v.account.network).sort();
				expect(networks).toEqual([
					"100.64.0.0/24",
					"100.64.1.0/24",
					"100.64.2.0/24",
					"100.64.3.0/24",
				]);
				expect((await store.listAccountNetworks()).sort()).toEqual(networks);
			});

			it("a group in use is not deleted; racing a policy that names it never leaves a dangling reference", async () => {
				const { account } = await createAccount(store, DEFAULTS, OWNER, new Date());
				const used = f.group(account.id, { name: "used" });
				await store.write(async (tx) => {
					await tx.insertGroup(used);
					await tx.insertPolicy(f.policy(account.id, [used.id]));
				});
				await expect(
					deleteGroup(store, nobody, account.id, used.id, initiator, new Date()),
				).rejects.toMatchObject({ status: 422, message: expect.stringContaining('policy "p"') });
				expect(await store.getGroup(account.id, used.id)).toBeDefined();

				const other = await fresh.openAnother();
				for (let round = 0; round < 10; round++) {
					const g = f.group(account.id, { name: `race-${round}` });
					await store.write((tx) => tx.insertGroup(g));
					const input = {
						name: `uses ${g.name}`,
						description: "",
						enabled: true,
						rules: f.policy(account.id, [g.id]).rules,
					};
					const [created, deleted] = await Promise.allSettled([
						createPolicy(
							round % 2 ? store : other,
							nobody,
							account.id,
							input,
							initiator,
							new Date(),
						),
						deleteGroup(round % 2 ? other : store, nobody, account.id, g.id, initiator, new Date()),
					]);
					// Exactly one wins; the loser is refused with a 422, never both applied.
					expect([created.status, deleted.status].sort()).toEqual(["fulfilled", "rejected"]);
					const refusal =
						created.status === "rejected"
							? created.reason
							: (deleted as PromiseRejectedResult).reason;
					expect(refusal).toBeInstanceOf(AppError);
					expect((refusal as AppError).status).toBe(422);
					const groups = new Set((await store.listGroups(account.id)).map((x) => x.id));
					for (const p of await store.listPolicies(account.id)) {
						for (const r of p.rules)
							for (const id of [...r.sources, ...r.destinations]) {
								expect(groups.has(id)).toBe(true);
							}
					}
				}
			});
		});
	});
}
