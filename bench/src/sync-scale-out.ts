// Scale-out: 10,000 simulated agents over real gRPC, one HTTP/2 connection
// each, from a load generator in its own process (lib-sync-agents.ts).
// Baseline: one management instance on SQLite holding all of them. Scale-out:
// two management instances on PostgreSQL and NATS, agents spread over both,
// every change made through the REST API of the first. Same agents, same
// accounts, same changes, same run. Figures: how long a change in an account
// of 100 peers takes to reach all its agents, a join into the account of
// 1,000 peers, RSS per instance, and (scale-out only) how long the agents of
// a `kill -9`ed instance take to be in sync again through the other.
// Usage: pnpm bench sync-scale-out [agents=10000]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeKey, generateKeyPair } from "@starling/crypto";
import { startNatsServer, startPostgres } from "@starling/lab";
import {
	bootstrapIfEmpty,
	createAccount,
	createPersonalAccessToken,
	createSetupKey,
	loadManagementConfig,
	openStore,
} from "@starling/management";
import { ManagementClient } from "@starling/management-client";
import {
	log,
	type ManagementProcess,
	numberArg,
	percentile,
	round,
	startManagementProcess,
} from "./lib-control-plane.js";
import { AgentGenerator } from "./lib-sync-agents-client.js";
import type { AgentSpec } from "./lib-sync-agents-protocol.js";

const agentCount = numberArg(1, "agents", 10_000);
const BIG = Math.min(1000, Math.floor(agentCount / 2));
const SMALL = 100;
const SMALL_CHANGES = 5;
const JOINS = 3;
/** Enough account networks for 100 accounts (the default /16 per account allows 64 in 100.64.0.0/10). */
const COMMON_ENV = { STARLING_ACCOUNT_PREFIX_LENGTH: "20" };

interface SeededAccount {
	label: string;
	size: number;
	setupKey: string;
	adminToken: string;
}

/** Creates the accounts, each with an owner token and a reusable setup key, before management starts. */
async function seed(env: Record<string, string>, tokenFile: string): Promise<SeededAccount[]> {
	const config = loadManagementConfig({ ...process.env, ...COMMON_ENV, ...env });
	const store = await openStore(config);
	const defaults = {
		networkPool: config.networkRange,
		accountPrefixLength: config.accountPrefixLength,
		dnsDomain: config.dnsDomain,
	};
	const now = new Date();
	const sizes = [
		BIG,
		...Array.from({ length: Math.floor((agentCount - BIG) / SMALL) }, () => SMALL),
	];
	const accounts: SeededAccount[] = [];
	try {
		const first = await bootstrapIfEmpty(store, defaults, now);
		if (!first) throw new Error("the store is not empty");
		writeFileSync(tokenFile, `${first.plainToken}\n`, { mode: 0o600 });
		for (const [i, size] of sizes.entries()) {
			const { account, owner } =
				i === 0
					? { account: first.account, owner: first.owner }
					: await createAccount(store, defaults, { name: `owner${i}`, email: `o${i}@bench` }, now);
			const { plainToken } = await createPersonalAccessToken(
				store,
				owner,
				owner.id,
				"bench",
				1,
				now,
			);
			const { plainKey } = await createSetupKey(
				store,
				account.id,
				{
					name: "bench",
					type: "reusable",
					expiresInSeconds: 0,
					autoGroups: [],
					usageLimit: 0,
					ephemeral: false,
				},
				now,
			);
			accounts.push({ label: `a${i}`, size, setupKey: plainKey, adminToken: plainToken });
		}
	} finally {
		await store.close();
	}
	return accounts;
}

function specs(accounts: SeededAccount[], urls: string[]): AgentSpec[] {
	const out: AgentSpec[] = [];
	for (const a of accounts) {
		for (let j = 0; j < a.size; j++) {
			const k = out.length % urls.length;
			out.push({
				account: a.label,
				setupKey: a.setupKey,
				urls: [...urls.slice(k), ...urls.slice(0, k)],
			});
		}
	}
	return out;
}

async function waitSettled(gen: AgentGenerator, accounts: SeededAccount[]): Promise<void> {
	const deadline = Date.now() + 180_000;
	for (const a of accounts) {
		while (!(await gen.settled(a.label, a.size - 1))) {
			if (Date.now() > deadline) throw new Error(`account ${a.label} did not settle within 180 s`);
			await new Promise((r) => setTimeout(r, 250));
		}
	}
}

const now = () => performance.timeOrigin + performance.now();

async function api(url: string, token: string, method: string, path: string, body?: unknown) {
	const res = await fetch(`${url}${path}`, {
		method,
		headers: { authorization: `Token ${token}`, "content-type": "application/json" },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
	return res.json() as Promise<unknown>;
}

interface Figures {
	instances: number;
	connect_seconds: number;
	change_100_p50_ms: number;
	change_100_p99_ms: number;
	change_100_reached: string;
	join_1000_p50_ms: number;
	join_1000_p99_ms: number;
	join_1000_reached: string;
	rss_mb: number[];
}

/** Runs the same changes against `instances` (agents spread over them); changes go through the first. */
async function measure(
	label: string,
	instances: ManagementProcess[],
	accounts: SeededAccount[],
	gen: AgentGenerator,
): Promise<Figures> {
	const urls = instances.map((m) => m.url);
	log(`${label}: ${agentCount} agents connecting over ${instances.length} instance(s)`);
	const ready = await gen.start(specs(accounts, urls));
	await waitSettled(gen, accounts);
	log(`${label}: all in sync (${round(ready.seconds, 1)} s to log in and open streams)`);

	const changeLatencies: number[] = [];
	let changeReached = 0;
	let changeExpected = 0;
	for (let c = 0; c < Math.min(SMALL_CHANGES, accounts.length - 1); c++) {
		const account = accounts[1 + c] as SeededAccount;
		const peers = (await api(urls[0] as string, account.adminToken, "GET", "/api/peers")) as Array<{
			id: string;
			name: string;
		}>;
		const target = peers[c % peers.length] as { id: string; name: string };
		const name = `renamed-${c}`;
		const t0 = now();
		const arrivals = gen.watch(
			{ account: account.label, kind: "name", peerId: target.id, name, t0 },
			10_000,
		);
		await api(urls[0] as string, account.adminToken, "PUT", `/api/peers/${target.id}`, { name });
		const a = await arrivals;
		changeLatencies.push(...a.arrivalsMs);
		changeReached += a.arrivalsMs.length;
		changeExpected += a.expected;
	}

	const joinLatencies: number[] = [];
	let joinReached = 0;
	let joinExpected = 0;
	const big = accounts[0] as SeededAccount;
	for (let j = 0; j < JOINS; j++) {
		const keyPair = generateKeyPair();
		// Joins come in through the last instance, changes through the first.
		const client = new ManagementClient({ url: urls[urls.length - 1] as string, keyPair });
		await client.getServerKey();
		const t0 = now();
		const arrivals = gen.watch(
			{ account: big.label, kind: "present", peerKey: encodeKey(keyPair.publicKey), t0 },
			15_000,
		);
		await client.login(big.setupKey, {
			hostname: `joiner-${j}`,
			os: "linux",
			kernelVersion: "6.1",
			agentVersion: "bench",
			osVersion: "debian 12",
		});
		const a = await arrivals;
		joinLatencies.push(...a.arrivalsMs);
		joinReached += a.arrivalsMs.length;
		joinExpected += a.expected;
		client.close();
	}
	changeLatencies.sort((x, y) => x - y);
	joinLatencies.sort((x, y) => x - y);
	return {
		instances: instances.length,
		connect_seconds: round(ready.seconds, 1),
		change_100_p50_ms: round(percentile(changeLatencies, 50)),
		change_100_p99_ms: round(percentile(changeLatencies, 99)),
		change_100_reached: `${changeReached}/${changeExpected}`,
		join_1000_p50_ms: round(percentile(joinLatencies, 50)),
		join_1000_p99_ms: round(percentile(joinLatencies, 99)),
		join_1000_reached: `${joinReached}/${joinExpected}`,
		rss_mb: instances.map((m) => round(m.rssBytes() / 2 ** 20, 1)),
	};
}

async function main(): Promise<void> {
	const cleanups: Array<() => Promise<void>> = [];
	const cleanup = async () => {
		for (const c of cleanups.reverse()) await c().catch(() => undefined);
		cleanups.length = 0;
	};
	process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));
	try {
		// Baseline: one instance, SQLite.
		const dir = mkdtempSync(join(tmpdir(), "starling-bench-scale-"));
		cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
		const tokenFile = join(dir, "admin-token");
		const sqliteEnv = {
			...COMMON_ENV,
			STARLING_DATA_DIR: dir,
			STARLING_ADMIN_TOKEN_FILE: tokenFile,
		};
		const sqliteAccounts = await seed(sqliteEnv, tokenFile);
		const single = await startManagementProcess(sqliteEnv);
		cleanups.push(() => single.stop());
		let gen = await AgentGenerator.fork();
		cleanups.push(() => gen.stop());
		const baseline = await measure("baseline", [single], sqliteAccounts, gen);
		await gen.stop();
		await single.stop();

		// Scale-out: PostgreSQL + NATS + two instances.
		const pg = await startPostgres();
		cleanups.push(() => pg.destroy());
		const nats = await startNatsServer();
		cleanups.push(() => nats.stop());
		const dsn = await pg.createDatabase("bench");
		const tokenFile2 = join(dir, "admin-token-ha");
		const haEnv = {
			...COMMON_ENV,
			STARLING_STORE: "postgres",
			STARLING_POSTGRES_DSN: dsn,
			STARLING_NATS_URL: nats.url,
			STARLING_ADMIN_TOKEN_FILE: tokenFile2,
		};
		const haAccounts = await seed(haEnv, tokenFile2);
		const a = await startManagementProcess(haEnv);
		cleanups.push(() => a.stop());
		const b = await startManagementProcess(haEnv);
		cleanups.push(() => b.stop());
		gen = await AgentGenerator.fork();
		cleanups.push(() => gen.stop());
		const scaleOut = await measure("scale-out", [a, b], haAccounts, gen);

		log("scale-out: kill -9 of the first instance; its agents move to the second");
		const held = Math.ceil(specs(haAccounts, ["x", "y"]).length / 2);
		const since = now();
		a.child.kill("SIGKILL");
		const resync = await gen.resync(since, held, 60_000);

		const result = {
			bench: "sync-scale-out",
			agents: agentCount,
			accounts: haAccounts.length,
			baseline_sqlite_one_instance: baseline,
			postgres_nats_two_instances: scaleOut,
			change_100_p99_ratio: round(scaleOut.change_100_p99_ms / baseline.change_100_p99_ms, 2),
			join_1000_p99_ratio: round(scaleOut.join_1000_p99_ms / baseline.join_1000_p99_ms, 2),
			rss_per_instance_ratio: round(
				Math.max(...scaleOut.rss_mb) / (baseline.rss_mb[0] as number),
				2,
			),
			resync_after_kill: {
				agents_lost: resync.lost,
				resynced: resync.resynced,
				p50_ms: round(percentile(resync.resyncMs, 50)),
				p99_ms: round(percentile(resync.resyncMs, 99)),
				all_ms: round(resync.resyncMs[resync.resyncMs.length - 1] ?? Number.NaN),
				reconnect_errors: resync.errors,
				median_breakdown_ms: resync.breakdownMedianMs,
			},
			targets: {
				change_100_p99_le_1000_ms: scaleOut.change_100_p99_ms <= 1000,
				join_1000_p99_le_2000_ms: scaleOut.join_1000_p99_ms <= 2000,
				resync_all_le_20_s:
					resync.resynced === resync.lost && (resync.resyncMs.at(-1) ?? Infinity) <= 20_000,
			},
		};
		process.stdout.write(`${JSON.stringify(result)}\n`);
	} finally {
		await cleanup();
	}
}

main().catch((err) => {
	console.error(err);
	process.exit(1);
});
