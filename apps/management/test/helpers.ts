import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeKey, generateKeyPair, type KeyPair } from "@starling/crypto";
import { createLogger } from "@starling/log";
import { ManagementClient } from "@starling/management-client";
import type { NetworkMap, PeerSystemMeta } from "@starling/proto";
import { afterEach, beforeEach } from "vitest";
import { createSetupKey, type NewSetupKeyInput } from "../src/app/setup-keys.js";
import { loadManagementConfig } from "../src/config.js";
import { type RunningManagement, startManagement } from "../src/server.js";
import { testStoreEnv } from "./test-store.js";

export const silentLogger = createLogger("test", { level: "silent" });

export function tempDir(prefix = "starling-mgmt-"): { path: string; remove(): void } {
	const path = mkdtempSync(join(tmpdir(), prefix));
	return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export async function startTestManagement(
	dataDir: string,
	env: Record<string, string> = {},
): Promise<RunningManagement> {
	const config = loadManagementConfig({
		STARLING_DATA_DIR: dataDir,
		STARLING_MANAGEMENT_LISTEN: "127.0.0.1:0",
		STARLING_MANAGEMENT_METRICS_LISTEN: "127.0.0.1:0",
		STARLING_SYNC_FLUSH_MS: "20",
		...(await testStoreEnv(dataDir)),
		...env,
	});
	return startManagement(config, silentLogger);
}

export async function accountIdOf(m: RunningManagement): Promise<string> {
	const owner = await m.store.getFirstOwner();
	if (!owner) throw new Error("management has no account yet");
	return owner.accountId;
}

export async function makeSetupKey(
	m: RunningManagement,
	input: Partial<NewSetupKeyInput> = {},
): Promise<string> {
	const { plainKey } = await createSetupKey(
		m.store,
		await accountIdOf(m),
		{
			name: "test",
			type: "reusable",
			expiresInSeconds: 3600,
			autoGroups: [],
			usageLimit: 0,
			ephemeral: false,
			...input,
		},
		new Date(),
	);
	return plainKey;
}

export function meta(hostname: string): PeerSystemMeta {
	return {
		hostname,
		os: "linux",
		kernelVersion: "6.1",
		agentVersion: "test",
		osVersion: "debian 12",
	};
}

export interface TestAgent {
	keyPair: KeyPair;
	publicKey: string;
	client: ManagementClient;
	maps: NetworkMap[];
	/** Resolves when a received map satisfies `pred`. */
	waitForMap(pred: (m: NetworkMap) => boolean, timeoutMs?: number): Promise<NetworkMap>;
	close(): void;
}

export function newAgent(port: number, keyPair: KeyPair = generateKeyPair()): TestAgent {
	const client = new ManagementClient({ url: `http://127.0.0.1:${port}`, keyPair });
	const maps: NetworkMap[] = [];
	const waiters = new Set<{ pred: (m: NetworkMap) => boolean; resolve: (m: NetworkMap) => void }>();
	const agent: TestAgent = {
		keyPair,
		publicKey: encodeKey(keyPair.publicKey),
		client,
		maps,
		waitForMap(pred, timeoutMs = 3000) {
			const last = maps.at(-1);
			if (last && pred(last)) return Promise.resolve(last);
			return new Promise((resolve, reject) => {
				const w = { pred, resolve };
				waiters.add(w);
				setTimeout(() => {
					if (waiters.delete(w))
						reject(
							new Error(
								`no matching network map within ${timeoutMs} ms; last: ${JSON.stringify(maps.at(-1)?.peers.map((p) => [p.name, p.connected]))}`,
							),
						);
				}, timeoutMs);
			});
		},
		close() {
			client.close();
		},
	};
	(agent as TestAgent & { push(m: NetworkMap): void }).push = (m) => {
		maps.push(m);
		for (const w of waiters) {
			if (w.pred(m)) {
				waiters.delete(w);
				w.resolve(m);
			}
		}
	};
	return agent;
}

/** Opens a Sync stream that records every map into agent.maps. */
export async function startSync(agent: TestAgent, hostname?: string) {
	const push = (agent as TestAgent & { push(m: NetworkMap): void }).push;
	const ended: { error?: { code: number; message: string } | undefined; done: boolean } = {
		done: false,
	};
	const stream = await agent.client.sync(hostname ? meta(hostname) : undefined, {
		onMap: (m) => push(m),
		onEnd: (error) => {
			ended.done = true;
			ended.error = error;
		},
	});
	return { stream, ended };
}

/**
 * A fresh management (own data directory, ephemeral ports) for each test of
 * the describe block it is called in, with the agents made through it
 * closed after the test.
 */
export function managementPerTest(env: Record<string, string> = {}) {
	let running: RunningManagement | undefined;
	let dir: ReturnType<typeof tempDir> | undefined;
	const agents: TestAgent[] = [];
	beforeEach(async () => {
		dir = tempDir();
		running = await startTestManagement(dir.path, env);
	});
	afterEach(async () => {
		for (const a of agents.splice(0)) a.close();
		await running?.close();
		dir?.remove();
	});
	return {
		get m(): RunningManagement {
			if (!running) throw new Error("management is started in beforeEach");
			return running;
		},
		agent(keyPair: KeyPair = generateKeyPair()): TestAgent {
			const a = newAgent(this.m.port, keyPair);
			agents.push(a);
			return a;
		},
	};
}
