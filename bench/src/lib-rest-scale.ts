// Shared by the REST listing benchmarks (rest-scale, and policy-maps' REST
// part): a seeded SQLite file, the REST server with its bare twin routes in
// a child process (lib-rest-scale-server.ts), and the same-run comparison of
// a listing with its bare twin.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bootstrapIfEmpty, type Peer, peerFixture, SqliteStore } from "@starling/management";
import autocannon from "autocannon";
import { bareRouteOf, type Listing } from "./lib-rest-scale-server.js";
import { syntheticAccess } from "./lib-synthetic-access.js";

export { bareRouteOf, LISTINGS, type Listing } from "./lib-rest-scale-server.js";

const here = dirname(fileURLToPath(import.meta.url));

/** Deterministic PRNG (mulberry32), so every run lists the same account. */
function prng(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

export interface SeededAccount {
	databasePath: string;
	adminToken: string;
}

/**
 * A fresh store at `databasePath` with one account (as the first start
 * makes it) holding `peers` peers (half connected), `groups` groups of 1 to
 * 3 groups per peer, and `policies` policies of 1 or 2 rules between 1 or 2
 * groups each side, instead of the Default policy. Written row by row in
 * one transaction: registering 5,000 peers through the use case would take
 * minutes and is not what is measured.
 */
export async function seedAccount(
	databasePath: string,
	counts: { peers: number; groups: number; policies: number },
): Promise<SeededAccount> {
	const store = SqliteStore.open(databasePath);
	try {
		const boot = await bootstrapIfEmpty(
			store,
			{ networkPool: "100.64.0.0/10", accountPrefixLength: 16, dnsDomain: "starling.internal" },
			new Date(),
		);
		if (!boot) throw new Error("store was not empty");
		const accountId = boot.account.id;
		const [a, b] = boot.account.network.split(".").map(Number);
		const random = prng(11);
		const peers: Peer[] = Array.from({ length: counts.peers }, (_, i) =>
			peerFixture({
				id: `peer${i}`,
				accountId,
				wgPublicKey: randomBytes(32).toString("base64"),
				name: `host-${i}`,
				ip: `${a}.${b}.${(i + 1) >> 8}.${(i + 1) & 255}`,
				connected: i % 2 === 0,
				createdAt: new Date(1_700_000_000_000 + i * 1000),
				system: { os: "linux", osVersion: "12", kernelVersion: "6.1", agentVersion: "bench" },
			}),
		);
		const { groups, policies } = syntheticAccess(
			accountId,
			peers.map((p) => p.id),
			counts,
			random,
		);
		await store.write(async (tx) => {
			for (const p of await tx.listPolicies(accountId)) await tx.deletePolicy(accountId, p.id);
			for (const p of peers) await tx.insertPeer(p);
			for (const g of groups) await tx.insertGroup(g);
			for (const p of policies) await tx.insertPolicy(p);
		});
		return { databasePath, adminToken: boot.plainToken };
	} finally {
		await store.close();
	}
}

export interface RestScaleServer {
	url: string;
	stop(): Promise<void>;
}

/** Starts lib-rest-scale-server.js on the seeded file; resolves once it listens. */
export async function startRestScaleServer(seeded: SeededAccount): Promise<RestScaleServer> {
	const child: ChildProcess = spawn(
		process.execPath,
		[join(here, "lib-rest-scale-server.js"), seeded.databasePath, seeded.adminToken],
		{ stdio: ["ignore", "pipe", "inherit"] },
	);
	const port = await new Promise<number>((resolvePort, reject) => {
		let out = "";
		child.stdout?.on("data", (d: Buffer) => {
			out += d.toString();
			const line = out.split("\n")[0];
			if (out.includes("\n") && line) resolvePort((JSON.parse(line) as { port: number }).port);
		});
		child.once("exit", (code) => reject(new Error(`rest-scale server exited with ${code}`)));
	});
	return {
		url: `http://127.0.0.1:${port}`,
		async stop() {
			if (child.exitCode === null) {
				child.kill("SIGTERM");
				await new Promise((r) => child.once("exit", r));
			}
		},
	};
}

/** Requests sent to each route before it is measured. */
const WARM_UP_REQUESTS = 40;

export interface ListingFigures {
	/** Requests/s of the API route (token check, store, cache, schema serializer). */
	rps: number;
	p50_ms: number;
	p99_ms: number;
	/** Requests/s of the bare route on the same server sending the same bytes. */
	bare_rps: number;
	/** rps / bare_rps: the target is at least 0.5. */
	ratio_to_bare: number;
	body_bytes: number;
}

/**
 * GET `listing` against its bare twin on the same server, one after the
 * other for `seconds` each, `connections` at a time. Fails unless both
 * answer the same bytes and every request succeeds.
 */
export async function compareWithBare(
	server: RestScaleServer,
	adminToken: string,
	listing: Listing,
	opts: { seconds: number; connections: number; log: (m: string) => void },
): Promise<ListingFigures> {
	const headers = { authorization: `Token ${adminToken}` };
	const api = await fetch(`${server.url}${listing}`, { headers });
	const apiBody = await api.text();
	const bare = await (await fetch(`${server.url}${bareRouteOf(listing)}`)).text();
	if (!api.ok) throw new Error(`${listing}: ${api.status} ${apiBody}`);
	if (apiBody !== bare) throw new Error(`${listing} and its bare twin answer different bytes`);
	const run = async (path: string, withToken: boolean) => {
		opts.log(`GET ${path} for ${opts.seconds} s`);
		const r = await autocannon({
			url: `${server.url}${path}`,
			connections: opts.connections,
			duration: opts.seconds,
			...(withToken ? { headers } : {}),
		});
		if (r.non2xx > 0 || r.errors > 0) {
			throw new Error(`GET ${path}: ${r.non2xx} non-2xx, ${r.errors} errors`);
		}
		return r;
	};
	// Both serializers are JavaScript that V8 compiles as it runs (fast-json-
	// stringify's generated function, fastify's reply path): measured warm.
	for (const [path, withToken] of [
		[bareRouteOf(listing), false],
		[listing, true],
	] as const) {
		opts.log(`warming up GET ${path} (${WARM_UP_REQUESTS} requests)`);
		await autocannon({
			url: `${server.url}${path}`,
			connections: opts.connections,
			amount: WARM_UP_REQUESTS,
			...(withToken ? { headers } : {}),
		});
	}
	const baseline = await run(bareRouteOf(listing), false);
	const measured = await run(listing, true);
	return {
		rps: round(measured.requests.average, 1),
		p50_ms: measured.latency.p50,
		p99_ms: measured.latency.p99,
		bare_rps: round(baseline.requests.average, 1),
		ratio_to_bare: round(measured.requests.average / baseline.requests.average, 3),
		body_bytes: Buffer.byteLength(apiBody),
	};
}

/** /proc/loadavg's three averages. */
export function loadAverage(): number[] {
	return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number);
}

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;
