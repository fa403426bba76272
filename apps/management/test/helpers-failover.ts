// The scale-out deployment as real processes for the failover tests: one
// PostgreSQL database, a nats-server, two management processes (the built
// binary), optionally two signal processes, and Debian's HAProxy in front of
// them, as the `ha` compose deployment runs them; agents are real gRPC Sync
// clients through the proxy (or real agents, in apps/agent's lab test),
// each on its own HTTP/2 connection. Every server is stopped by PID after the
// test; one that cannot start fails the test.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { encodeKey, generateKeyPair, type KeyPair } from "@starling/crypto";
import {
	freeLoopbackPort,
	type HaproxyBackend,
	type NatsServer,
	type PostgresCluster,
	type RunningHaproxy,
	startHaproxy,
	startNatsServer,
} from "@starling/lab";
import { ManagementClient, type SyncStream } from "@starling/management-client";
import type { NetworkMap } from "@starling/proto";
import {
	type SignalInstance,
	signalHaproxyBackend,
	startSignalInstance,
} from "../../signal/test/instances.js";
import { computeNetworkMap } from "../src/core/network-map.js";
import { AccessIndex } from "../src/core/policy.js";
import { PostgresStore } from "../src/store/postgres/postgres-store.js";
import { meta, tempDir } from "./helpers.js";
import { type ManagementProcess, startInstanceProcess } from "./helpers-cluster.js";

export const INSTANCE_NAMES = ["a", "b"] as const;
export type InstanceName = (typeof INSTANCE_NAMES)[number];
/** The signal instances, named as in the `ha` compose deployment. */
export const SIGNAL_NAMES = ["signal-1", "signal-2"] as const;
export type SignalName = (typeof SIGNAL_NAMES)[number];

/**
 * HAProxy's backends as docker/haproxy/render.mjs writes them, in its order:
 * management's gRPC and REST over the same servers, and signal's gRPC when
 * signal instances are given.
 */
export function haproxyBackends(
	management: readonly { name: string; address: string }[],
	signal: readonly { name: string; instance: SignalInstance }[] = [],
): HaproxyBackend[] {
	const servers = [...management];
	// Management answers HTTP/1.1 (REST, /readyz) and gRPC (HTTP/2) on one port.
	const health = { path: "/readyz", protocol: "h1" } as const;
	return [
		{
			name: "management_grpc",
			protocol: "grpc",
			pathPrefixes: ["/starling.v1.ManagementService/"],
			servers,
			health,
		},
		...(signal.length > 0 ? [signalHaproxyBackend(signal)] : []),
		{ name: "management_rest", protocol: "http", pathPrefixes: [], servers, health },
	];
}

export interface HaStack {
	/** HAProxy's URL, for agents and REST. */
	readonly url: string;
	readonly proxy: RunningHaproxy;
	readonly nats: NatsServer;
	readonly dsn: string;
	readonly token: string;
	readonly accountId: string;
	/** The running process of each instance (undefined while killed). */
	process(name: InstanceName): ManagementProcess | undefined;
	/** A direct URL of one instance (not through the proxy). */
	directUrl(name: InstanceName): string;
	/** SIGKILL, resolving once the process is gone. */
	kill(name: InstanceName): Promise<void>;
	/** Starts the instance again on its port, with its id; resolves once HAProxy has it UP. */
	restart(name: InstanceName): Promise<void>;
	rest(method: string, path: string, body?: unknown, base?: string): Promise<RestAnswer>;
	/** A running signal instance (with `signal: true`; undefined while killed). */
	signal(name: SignalName): SignalInstance | undefined;
	/** SIGKILL of a signal instance, resolving once the process is gone. */
	killSignal(name: SignalName): Promise<void>;
	/** A store on the same database, for reading what the instances committed. */
	store(): Promise<PostgresStore>;
	stop(): Promise<void>;
}

export interface RestAnswer {
	status: number;
	json: unknown;
}

/**
 * Starts NATS, two instances (A first: it bootstraps the account) on a fresh
 * database of `cluster`, and HAProxy; resolves once both servers are UP in
 * both of HAProxy's backends.
 */
export interface HaStackOptions {
	/** Where HAProxy listens (default 127.0.0.1): a root uplink's address for lab agents. */
	proxyAddress?: string;
	/** More settings for both instances (e.g. STARLING_SIGNAL_URL). */
	env?: Record<string, string>;
	/**
	 * Also run two signal instances on the NATS, behind the same HAProxy
	 * (path prefix `/starling.v1.SignalService/`, as the compose deployment);
	 * management hands agents the proxy's URL as STARLING_SIGNAL_URL.
	 */
	signal?: boolean;
}

export async function startHaStack(
	cluster: PostgresCluster,
	options: HaStackOptions = {},
): Promise<HaStack> {
	const cleanups: (() => Promise<void>)[] = [];
	const stopAll = async () => {
		for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
	};
	try {
		const dsn = await cluster.createDatabase();
		const nats = await startNatsServer();
		cleanups.push(() => nats.stop());
		const data = tempDir("starling-failover-");
		cleanups.push(async () => data.remove());
		const tokenFile = join(data.path, "admin-token");
		const ports = { a: await freeLoopbackPort(), b: await freeLoopbackPort() };
		// Chosen before management starts: with signal behind it, the proxy's URL is management's STARLING_SIGNAL_URL.
		const proxyPort = await freeLoopbackPort();
		const proxyAddress = options.proxyAddress ?? "127.0.0.1";
		const signals = new Map<SignalName, SignalInstance>();
		cleanups.push(async () => {
			for (const s of signals.values()) await s.kill("SIGKILL");
		});
		if (options.signal) {
			for (const n of SIGNAL_NAMES) signals.set(n, await startSignalInstance(nats.url));
		}
		const envOf = (name: InstanceName) => ({
			STARLING_STORE: "postgres",
			STARLING_POSTGRES_DSN: dsn,
			STARLING_NATS_URL: nats.url,
			STARLING_INSTANCE_ID: name,
			STARLING_ADMIN_TOKEN_FILE: tokenFile,
			...(options.signal ? { STARLING_SIGNAL_URL: `http://${proxyAddress}:${proxyPort}` } : {}),
			...options.env,
		});
		const running = new Map<InstanceName, ManagementProcess>();
		const kill = async (name: InstanceName) => {
			const p = running.get(name);
			running.delete(name);
			if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
			const exited = new Promise((r) => p.child.once("exit", r));
			p.child.kill("SIGKILL");
			await exited;
		};
		cleanups.push(async () => {
			for (const n of INSTANCE_NAMES) await kill(n);
		});
		for (const n of INSTANCE_NAMES) running.set(n, await startInstanceProcess(envOf(n), ports[n]));
		const token = readFileSync(tokenFile, "utf8").trim();
		const proxy = await startHaproxy({
			backends: haproxyBackends(
				INSTANCE_NAMES.map((n) => ({ name: n, address: `127.0.0.1:${ports[n]}` })),
				[...signals].map(([name, instance]) => ({ name, instance })),
			),
			checkIntervalMs: 200,
			address: proxyAddress,
			port: proxyPort,
		});
		cleanups.push(() => proxy.stop());
		for (const n of signals.keys()) await proxy.waitForServer("signal_grpc", n, "UP", 15_000);
		const waitUp = async (name: InstanceName) => {
			for (const backend of ["management_grpc", "management_rest"]) {
				await proxy.waitForServer(backend, name, "UP", 15_000);
			}
		};
		for (const n of INSTANCE_NAMES) await waitUp(n);

		const rest = async (
			method: string,
			path: string,
			body?: unknown,
			base = proxy.url,
		): Promise<RestAnswer> => {
			const res = await fetch(`${base}${path}`, {
				method,
				headers: {
					authorization: `Token ${token}`,
					...(body === undefined ? {} : { "content-type": "application/json" }),
				},
				body: body === undefined ? undefined : JSON.stringify(body),
				signal: AbortSignal.timeout(5_000),
			});
			const text = await res.text();
			return { status: res.status, json: text ? (JSON.parse(text) as unknown) : undefined };
		};
		const accounts = await rest("GET", "/api/accounts");
		const accountId = (accounts.json as { id: string }[])[0]?.id;
		if (accounts.status !== 200 || !accountId) {
			throw new Error(`GET /api/accounts answered ${accounts.status}`);
		}
		const stores: PostgresStore[] = [];
		cleanups.push(async () => {
			for (const s of stores) await s.close();
		});
		return {
			url: proxy.url,
			proxy,
			nats,
			dsn,
			token,
			accountId,
			process: (name) => running.get(name),
			directUrl: (name) => `http://127.0.0.1:${ports[name]}`,
			kill,
			async restart(name) {
				await kill(name);
				running.set(name, await startInstanceProcess(envOf(name), ports[name]));
				await waitUp(name);
			},
			rest,
			signal: (name) => signals.get(name),
			async killSignal(name) {
				const s = signals.get(name);
				signals.delete(name);
				await s?.kill("SIGKILL");
			},
			async store() {
				const s = await PostgresStore.open(dsn, { poolSize: 2 });
				stores.push(s);
				return s;
			},
			stop: stopAll,
		};
	} catch (err) {
		await stopAll();
		throw err;
	}
}

/**
 * A simulated agent: a real ManagementClient with its own HTTP/2 connection
 * (its own subchannel pool), logged in once, keeping a Sync stream open and
 * opening a new one when it ends, as the daemon does.
 */
export class SyncAgent {
	readonly keyPair: KeyPair = generateKeyPair();
	readonly publicKey = encodeKey(this.keyPair.publicKey);
	readonly client: ManagementClient;
	/** The map as last received on any stream. */
	map: NetworkMap | undefined;
	/** How many times a stream ended and was opened again. */
	reconnects = 0;
	private stream: SyncStream | undefined;
	private closed = false;
	private readonly listeners = new Set<() => void>();

	constructor(
		url: string,
		readonly hostname: string,
	) {
		this.client = new ManagementClient({
			url,
			keyPair: this.keyPair,
			timeoutMs: 5_000,
			channelOptions: { "grpc.use_local_subchannel_pool": 1 },
		});
	}

	/** Logs in (registering the peer) and opens the first Sync stream; resolves at its first map. */
	async start(setupKey: string): Promise<void> {
		await this.client.login(setupKey, meta(this.hostname));
		await this.openStream();
		await this.waitFor(() => true, 10_000);
	}

	private async openStream(): Promise<void> {
		if (this.closed) return;
		try {
			this.stream = await this.client.sync(meta(this.hostname), {
				onMap: (m) => {
					this.map = m;
					for (const l of this.listeners) l();
				},
				onEnd: () => this.reopen(),
			});
		} catch {
			this.reopen();
		}
	}

	private reopen(): void {
		if (this.closed) return;
		this.reconnects += 1;
		setTimeout(() => void this.openStream(), 100 + Math.random() * 200);
	}

	/** Resolves once the current map satisfies `pred`; rejects after `timeoutMs` naming `what`. */
	waitFor(
		pred: (m: NetworkMap) => boolean,
		timeoutMs: number,
		what = "a map",
	): Promise<NetworkMap> {
		return new Promise((resolve, reject) => {
			const check = () => {
				if (this.map && pred(this.map)) {
					this.listeners.delete(check);
					clearTimeout(timer);
					resolve(this.map);
				}
			};
			const timer = setTimeout(() => {
				this.listeners.delete(check);
				reject(new Error(`${this.hostname}: no ${what} within ${timeoutMs} ms`));
			}, timeoutMs);
			this.listeners.add(check);
			check();
		});
	}

	close(): void {
		this.closed = true;
		this.stream?.close();
		this.client.close();
	}
}

/** Whether a gRPC or fetch failure is the kind a dead or unreachable instance causes. */
export function isUnavailable(err: unknown): boolean {
	const code = (err as { code?: unknown }).code;
	return (
		code === grpc.status.UNAVAILABLE ||
		code === grpc.status.DEADLINE_EXCEEDED ||
		err instanceof TypeError
	);
}

/**
 * What of a map the store decides: the peer itself, every visible peer (by
 * key, without its last-seen time, which moves without a push) and the
 * firewall rules; not the service endpoints or the serial.
 */
export function mapDigest(m: NetworkMap): string {
	return JSON.stringify({
		self: m.self,
		network: m.network,
		dnsDomain: m.dnsDomain,
		peers: [...m.peers]
			.sort((x, y) => x.wgPublicKey.localeCompare(y.wgPublicKey))
			.map(({ lastSeenUnixMs: _, ...p }) => p),
		firewallRules: m.firewallRules.map((r) => JSON.stringify(r)).sort(),
	});
}

/** Each agent's map as the store says it should be (management's own map computation), by public key. */
export async function mapsFromStore(
	store: PostgresStore,
	accountId: string,
	publicKeys: readonly string[],
): Promise<Map<string, NetworkMap>> {
	const { account, peers, groups, policies } = await store.read(async (tx) => ({
		account: await tx.getAccount(accountId),
		peers: await tx.listPeers(accountId),
		groups: await tx.listGroups(accountId),
		policies: await tx.listPolicies(accountId),
	}));
	if (!account) throw new Error(`no account ${accountId} in the store`);
	const index = AccessIndex.build(account, peers, { groups, policies });
	const out = new Map<string, NetworkMap>();
	for (const key of publicKeys) {
		const viewer = index.indexOfKey(key);
		if (viewer === undefined) throw new Error(`peer ${key} is not in the store`);
		out.set(key, computeNetworkMap(index, viewer, { signal: { url: "" }, stunServers: [] }, 0));
	}
	return out;
}
