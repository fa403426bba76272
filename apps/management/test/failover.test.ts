// Failover of the scale-out deployment, all real: PostgreSQL 15, nats-server,
// two management processes (the built binary) behind Debian's HAProxy, and
// simulated agents as real gRPC Sync clients through the proxy, each on its
// own HTTP/2 connection, spread over both instances by the proxy.
// - A change through REST on A reaches agents held by B within 1 s; a peer
//   registering through B appears on agents held by A.
// - `kill -9` of one instance while changes go on through the proxy: its
//   agents reconnect through the proxy to the other, and every agent ends with
//   the map management's own map computation gives from the store's contents
//   (equal digests), no address twice, every acknowledged change in it.
// - The same with nats-server killed: pushes fall back to the periodic check.
// A server that cannot start fails the test.
import { generateKeyPair } from "@starling/crypto";
import { waitFor } from "@starling/lab";
import { ManagementClient } from "@starling/management-client";
import type { NetworkMap } from "@starling/proto";
import { afterEach, describe, expect, it } from "vitest";
import { meta } from "./helpers.js";
import {
	type HaStack,
	type InstanceName,
	isUnavailable,
	mapDigest,
	mapsFromStore,
	type RestAnswer,
	SyncAgent,
	startHaStack,
} from "./helpers-failover.js";
import { postgresForFile } from "./helpers-process.js";

const AGENTS = 6;
const CHANGES = 20;

const cluster = postgresForFile();

let stack: HaStack | undefined;
const agents: SyncAgent[] = [];
afterEach(async () => {
	for (const a of agents.splice(0)) a.close();
	await stack?.stop();
	stack = undefined;
});

const names = (m: NetworkMap) => m.peers.map((p) => p.name);

async function reusableSetupKey(s: HaStack): Promise<string> {
	const res = await s.rest("POST", "/api/setup-keys", {
		name: "failover",
		type: "reusable",
		expires_in: 3600,
		auto_groups: [],
		usage_limit: 0,
	});
	expect(res.status).toBe(200);
	return (res.json as { key: string }).key;
}

/** Starts the stack and `AGENTS` agents through the proxy, one after the other. */
async function stackWithAgents(): Promise<{ s: HaStack; key: string }> {
	const s = await startHaStack(cluster());
	stack = s;
	const key = await reusableSetupKey(s);
	for (let i = 0; i < AGENTS; i++) {
		const a = new SyncAgent(s.url, `agent-${i}`);
		agents.push(a);
		await a.start(key);
	}
	return { s, key };
}

/** Which instance holds each agent's Sync session, from the store's session rows. */
async function placement(s: HaStack): Promise<Map<SyncAgent, InstanceName[]>> {
	const store = await s.store();
	const byPeer = new Map<string, InstanceName[]>();
	for (const instance of ["a", "b"] as const) {
		for (const session of await store.listSyncSessionsOfInstance(instance)) {
			byPeer.set(session.peerId, [...(byPeer.get(session.peerId) ?? []), instance]);
		}
	}
	const out = new Map<SyncAgent, InstanceName[]>();
	for (const a of agents) {
		const peer = await store.getPeerByPublicKey(a.publicKey);
		out.set(a, (peer && byPeer.get(peer.id)) ?? []);
	}
	return out;
}

/** Waits until every agent holds exactly one session and both instances hold some; the agents of each. */
async function spreadOverBoth(s: HaStack): Promise<Record<InstanceName, SyncAgent[]>> {
	return waitFor(
		"every agent on one instance, both instances holding agents",
		async () => {
			const where = await placement(s);
			const on: Record<InstanceName, SyncAgent[]> = { a: [], b: [] };
			for (const [agent, instances] of where) {
				if (instances.length !== 1) return undefined;
				on[instances[0]!].push(agent);
			}
			return on.a.length > 0 && on.b.length > 0 ? on : undefined;
		},
		10_000,
		100,
	);
}

/** Transient failures while an instance or NATS is going away: 502/503/504 or no connection. */
const TRANSIENT_STATUS = new Set([502, 503, 504]);

/**
 * Runs `op` until it succeeds, through failures a dying instance causes
 * (counted in `retries`); any other failure, or 100 attempts, fails the test.
 */
async function acknowledged<T>(
	what: string,
	op: () => Promise<T>,
	retries: { n: number },
): Promise<T> {
	for (let attempt = 1; ; attempt++) {
		try {
			return await op();
		} catch (err) {
			if (!isUnavailable(err) || attempt >= 100) {
				throw new Error(`${what}: ${(err as Error).message} (attempt ${attempt})`);
			}
			retries.n += 1;
			await new Promise((r) => setTimeout(r, 100));
		}
	}
}

class TransientHttpError extends TypeError {}

async function restOk(
	s: HaStack,
	method: string,
	path: string,
	body?: unknown,
): Promise<RestAnswer> {
	const res = await s.rest(method, path, body);
	if (TRANSIENT_STATUS.has(res.status)) throw new TransientHttpError(`HTTP ${res.status}`);
	if (res.status !== 200)
		throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(res.json)}`);
	return res;
}

/**
 * The changes made during a failure, through the proxy: change i registers a
 * peer `chg-i` (gRPC Login) and renames it `chg-i-r` (REST). Each is done
 * once acknowledged; the names of those acknowledged are returned.
 */
async function makeChanges(
	s: HaStack,
	key: string,
	progress: { done: number; retries: { n: number } },
): Promise<string[]> {
	const made: string[] = [];
	for (let i = 0; i < CHANGES; i++) {
		const hostname = `chg-${i}`;
		const client = new ManagementClient({
			url: s.url,
			keyPair: generateKeyPair(),
			timeoutMs: 5_000,
			channelOptions: { "grpc.use_local_subchannel_pool": 1 },
		});
		try {
			// A Login repeated with the same key is the same peer: safe to redo.
			await acknowledged(
				`login ${hostname}`,
				() => client.login(key, meta(hostname)),
				progress.retries,
			);
		} finally {
			client.close();
		}
		const found = await acknowledged(
			`find ${hostname}`,
			() => restOk(s, "GET", `/api/peers?name=${hostname}`),
			progress.retries,
		);
		const peer = (found.json as { id: string }[])[0];
		if (!peer) throw new Error(`${hostname} is not listed after its login`);
		await acknowledged(
			`rename ${hostname}`,
			() => restOk(s, "PUT", `/api/peers/${peer.id}`, { name: `${hostname}-r` }),
			progress.retries,
		);
		made.push(`${hostname}-r`);
		progress.done += 1;
	}
	return made;
}

/**
 * Waits until every agent's map has the digest of the map computed from the
 * store's contents; fails naming the agents that differ.
 */
async function convergedOnStore(s: HaStack, timeoutMs: number): Promise<Map<string, NetworkMap>> {
	const store = await s.store();
	const keys = agents.map((a) => a.publicKey);
	let differing: string[] = [];
	try {
		return await waitFor(
			"every agent's map equal to the store's",
			async () => {
				const expected = await mapsFromStore(store, s.accountId, keys);
				differing = agents
					.filter((a) => !a.map || mapDigest(a.map) !== mapDigest(expected.get(a.publicKey)!))
					.map((a) => a.hostname);
				return differing.length === 0 ? expected : undefined;
			},
			timeoutMs,
			200,
		);
	} catch (err) {
		throw new Error(`${(err as Error).message}; differing: ${differing.join(", ")}`);
	}
}

/** No overlay address twice in a map (the peer's own included). */
function addressesOf(m: NetworkMap): string[] {
	return [m.self?.address ?? "", ...m.peers.flatMap((p) => p.allowedIps)];
}

function expectFinalMaps(expected: Map<string, NetworkMap>, made: string[]): void {
	for (const a of agents) {
		const m = a.map!;
		const addresses = addressesOf(m);
		expect(new Set(addresses).size, `${a.hostname}: an address twice`).toBe(addresses.length);
		// Every acknowledged change is in it (and in the store's map, which it equals).
		expect(names(m)).toEqual(expect.arrayContaining(made));
		expect(mapDigest(m)).toBe(mapDigest(expected.get(a.publicKey)!));
	}
}

describe("two management instances on PostgreSQL and NATS behind HAProxy", () => {
	it("a change through REST on A reaches agents on B within 1 s; a peer registering through B appears on agents on A", async () => {
		const { s, key } = await stackWithAgents();
		const on = await spreadOverBoth(s);
		for (const a of agents) {
			await a.waitFor(
				(m) => m.peers.filter((p) => p.connected).length === AGENTS - 1,
				10_000,
				"map with every other agent connected",
			);
		}

		const target = await s.rest("GET", "/api/peers?name=agent-0", undefined, s.directUrl("a"));
		const peerId = (target.json as { id: string }[])[0]!.id;
		const t0 = Date.now();
		const renamed = await s.rest(
			"PUT",
			`/api/peers/${peerId}`,
			{ name: "renamed-on-a" },
			s.directUrl("a"),
		);
		expect(renamed.status).toBe(200);
		await Promise.all(
			on.b.map((a) => a.waitFor((m) => names(m).includes("renamed-on-a"), 1000, "rename from A")),
		);
		const renameMs = Date.now() - t0;

		const joiner = new ManagementClient({ url: s.directUrl("b"), keyPair: generateKeyPair() });
		const t1 = Date.now();
		try {
			await joiner.login(key, meta("joined-via-b"));
		} finally {
			joiner.close();
		}
		await Promise.all(
			on.a.map((a) => a.waitFor((m) => names(m).includes("joined-via-b"), 1000, "join via B")),
		);
		const joinMs = Date.now() - t1;
		console.log(
			`failover: ${on.a.length} agents on A, ${on.b.length} on B; REST change on A reached all of B's in ${renameMs} ms; a join through B reached all of A's in ${joinMs} ms`,
		);
	});

	it("kill -9 of an instance while changes are made: its agents move to the other, every map equals the store's, nothing lost", async () => {
		const { s, key } = await stackWithAgents();
		const on = await spreadOverBoth(s);
		const progress = { done: 0, retries: { n: 0 } };
		const changes = makeChanges(s, key, progress);
		changes.catch(() => undefined); // awaited below; a failure there is the test's
		await waitFor(
			"a few changes made",
			async () => (progress.done >= 4 ? true : undefined),
			20_000,
			20,
		);
		const killedAt = Date.now();
		await s.kill("a");
		const made = await changes;
		expect(made).toHaveLength(CHANGES);

		const expected = await convergedOnStore(s, 20_000);
		const convergedMs = Date.now() - killedAt;
		expectFinalMaps(expected, made);
		// A's agents now hold their sessions on B, through the proxy.
		const where = await waitFor(
			"A's agents on B, A's sessions expired",
			async () => {
				const w = await placement(s);
				return [...w.values()].every((i) => i.length === 1 && i[0] === "b") ? w : undefined;
			},
			10_000,
			100,
		);
		expect(where.size).toBe(AGENTS);
		for (const a of on.a) expect(a.reconnects).toBeGreaterThan(0);
		console.log(
			`failover: kill -9 of A (${on.a.length} agents) during ${CHANGES} changes (${progress.retries.n} retried requests); every map equal to the store's ${convergedMs} ms after the kill`,
		);
	});

	it("nats-server killed while changes are made: pushes fall back to the periodic check, every map equals the store's", async () => {
		const { s, key } = await stackWithAgents();
		await spreadOverBoth(s);
		const progress = { done: 0, retries: { n: 0 } };
		const changes = makeChanges(s, key, progress);
		changes.catch(() => undefined);
		await waitFor(
			"a few changes made",
			async () => (progress.done >= 4 ? true : undefined),
			20_000,
			20,
		);
		const killedAt = Date.now();
		await s.nats.kill("SIGKILL");
		const made = await changes;
		expect(made).toHaveLength(CHANGES);

		const expected = await convergedOnStore(s, 20_000);
		const convergedMs = Date.now() - killedAt;
		expectFinalMaps(expected, made);
		// Both instances still serve their agents: nobody had to move.
		const where = await placement(s);
		expect(new Set([...where.values()].flat())).toEqual(new Set(["a", "b"]));
		console.log(
			`failover: nats-server killed during ${CHANGES} changes (${progress.retries.n} retried requests); every map equal to the store's ${convergedMs} ms after the kill`,
		);
	});
});
