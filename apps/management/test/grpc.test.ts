import * as grpc from "@grpc/grpc-js";
import { EnvelopeChannel, generateKeyPair } from "@starling/crypto";
import { ManagementCallError } from "@starling/management-client";
import { LoginRequest, ManagementServiceClient, type NetworkMap } from "@starling/proto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { deletePeer, updatePeer } from "../src/app/peers.js";
import type { RunningManagement } from "../src/server.js";
import {
	accountIdOf,
	makeSetupKey,
	meta,
	newAgent,
	startSync,
	startTestManagement,
	type TestAgent,
	tempDir,
} from "./helpers.js";

let dir: ReturnType<typeof tempDir>;
let m: RunningManagement;
const agents: TestAgent[] = [];

function agent(): TestAgent {
	const a = newAgent(m.port);
	agents.push(a);
	return a;
}

beforeEach(async () => {
	dir = tempDir();
	m = await startTestManagement(dir.path);
});

afterEach(async () => {
	for (const a of agents.splice(0)) a.close();
	await m.close();
	dir.remove();
});

const names = (map: NetworkMap) => map.peers.map((p) => p.name).sort();

async function expectCode(p: Promise<unknown>, code: grpc.status, message?: RegExp) {
	const err = await p.then(
		() => undefined,
		(e: unknown) => e,
	);
	expect(err).toBeInstanceOf(ManagementCallError);
	expect((err as ManagementCallError).code).toBe(code);
	if (message) expect((err as ManagementCallError).message).toMatch(message);
}

describe("management over real gRPC", () => {
	it("two peers register, get distinct addresses in the account network, and see each other", async () => {
		const key = await makeSetupKey(m);
		const a = agent();
		const b = agent();
		const la = await a.client.login(key, meta("alpha"));
		const lb = await b.client.login(key, meta("beta"));
		expect(la.registered).toBe(true);
		expect(la.self?.address).toMatch(/^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+\.\d+\/16$/);
		expect(la.self?.address).not.toBe(lb.self?.address);
		expect(la.self?.fqdn).toBe("alpha.starling.internal");
		expect(la.signal?.url).toBe("http://127.0.0.1:10000");

		await startSync(a);
		await startSync(b);
		const mapA = await a.waitForMap((x) => x.peers.some((p) => p.name === "beta" && p.connected));
		const mapB = await b.waitForMap((x) => x.peers.some((p) => p.name === "alpha" && p.connected));
		expect(mapA.self?.address).toBe(la.self?.address);
		const beta = mapA.peers.find((p) => p.name === "beta")!;
		expect(beta.wgPublicKey).toBe(b.publicKey);
		expect(beta.allowedIps).toEqual([lb.self!.address.replace(/\/16$/, "/32")]);
		expect(beta.dnsLabel).toBe("beta");
		expect(mapB.peers.map((p) => p.wgPublicKey)).toEqual([a.publicKey]);
		// The address each login came from is recorded (NetBird's connection_ip).
		const stored = await m.store.getPeerByPublicKey(a.publicKey);
		expect(stored?.system.connectionIp).toBe("127.0.0.1");
	});

	it("a third peer joins and both others receive it as a delta within 1 s", async () => {
		const key = await makeSetupKey(m);
		const [a, b, c] = [agent(), agent(), agent()];
		await a.client.login(key, meta("a"));
		await b.client.login(key, meta("b"));
		await startSync(a);
		await startSync(b);
		await a.waitForMap((x) => x.peers.some((p) => p.name === "b" && p.connected));
		await b.waitForMap((x) => x.peers.some((p) => p.name === "a" && p.connected));
		const fullsBefore = m.hub.stats().fullMapsSent;

		const t0 = Date.now();
		await c.client.login(key, meta("c"));
		await Promise.all([
			a.waitForMap((x) => names(x).includes("c"), 1000),
			b.waitForMap((x) => names(x).includes("c"), 1000),
		]);
		expect(Date.now() - t0).toBeLessThan(1000);
		// Existing peers got deltas, not new full maps.
		expect(m.hub.stats().fullMapsSent).toBe(fullsBefore);

		await startSync(c);
		const mapC = await c.waitForMap((x) => x.peers.length === 2);
		expect(names(mapC)).toEqual(["a", "b"]);
		await a.waitForMap((x) => x.peers.some((p) => p.name === "c" && p.connected), 1000);
	});

	it("connection status follows the Sync stream, with last_seen", async () => {
		const key = await makeSetupKey(m);
		const [a, b] = [agent(), agent()];
		await a.client.login(key, meta("a"));
		await b.client.login(key, meta("b"));
		await startSync(a);
		const { stream } = await startSync(b);
		await a.waitForMap((x) => x.peers[0]?.connected === true);
		const before = Date.now();
		stream.close();
		const map = await a.waitForMap((x) => x.peers[0]?.connected === false, 1000);
		expect(map.peers[0]!.lastSeenUnixMs).toBeGreaterThanOrEqual(before - 5);
		const stored = await m.store.getPeerByPublicKey(b.publicKey);
		expect(stored?.connected).toBe(false);
	});

	it("a renamed peer's new name and DNS label reach the others and itself", async () => {
		const key = await makeSetupKey(m);
		const [a, b] = [agent(), agent()];
		await a.client.login(key, meta("a"));
		await b.client.login(key, meta("b"));
		await startSync(a);
		await startSync(b);
		await a.waitForMap((x) => x.peers.length === 1);
		const peerB = (await m.store.getPeerByPublicKey(b.publicKey))!;
		await updatePeer(m.store, m.hub, peerB.accountId, peerB.id, { name: "Database 1" });
		const map = await a.waitForMap((x) => x.peers[0]?.dnsLabel === "database-1", 1000);
		expect(map.peers[0]?.fqdn).toBe("database-1.starling.internal");
		await b.waitForMap((x) => x.self?.fqdn === "database-1.starling.internal", 1000);
	});

	it("a deleted peer disappears from the others' maps, its stream ends, and its address is freed", async () => {
		const key = await makeSetupKey(m);
		const [a, b] = [agent(), agent()];
		await a.client.login(key, meta("a"));
		const lb = await b.client.login(key, meta("b"));
		await startSync(a);
		const syncB = await startSync(b);
		await a.waitForMap((x) => x.peers.length === 1);
		const peerB = (await m.store.getPeerByPublicKey(b.publicKey))!;
		await deletePeer(m.store, m.hub, peerB.accountId, peerB.id);
		await a.waitForMap((x) => x.peers.length === 0, 1000);
		await expect.poll(() => syncB.ended.done).toBe(true);
		expect(syncB.ended.error?.code).toBe(grpc.status.PERMISSION_DENIED);
		// Logging back in without a key is refused; the IP is free for reuse.
		await expectCode(
			b.client.login("", meta("b")),
			grpc.status.PERMISSION_DENIED,
			/setup key is required/,
		);
		const ips = (await m.store.listPeers(await accountIdOf(m))).map((p) => p.ip);
		expect(ips).not.toContain(lb.self!.address.split("/")[0]);
	});

	it("a peer that logs out is deregistered and leaves the others' maps", async () => {
		const key = await makeSetupKey(m);
		const [a, b] = [agent(), agent()];
		await a.client.login(key, meta("a"));
		await b.client.login(key, meta("b"));
		await startSync(a);
		await a.waitForMap((x) => x.peers.length === 1);
		await b.client.logout();
		await a.waitForMap((x) => x.peers.length === 0, 1000);
		expect(await m.store.getPeerByPublicKey(b.publicKey)).toBeUndefined();
		await expectCode(b.client.logout(), grpc.status.NOT_FOUND);
	});

	it("a restart keeps peers, addresses and the server key; agents log back in without a key", async () => {
		const key = await makeSetupKey(m);
		const a = agent();
		const first = await a.client.login(key, meta("a"));
		const serverKey = Buffer.from(m.serverKey.publicKey).toString("hex");
		await m.close();
		m = await startTestManagement(dir.path);
		expect(Buffer.from(m.serverKey.publicKey).toString("hex")).toBe(serverKey);
		const again = newAgent(m.port, a.keyPair);
		agents.push(again);
		const second = await again.client.login("", meta("a"));
		expect(second.registered).toBe(false);
		expect(second.self?.address).toBe(first.self?.address);
		expect(m.bootstrap).toBeUndefined();
	});

	it("setup keys: unknown, revoked, expired and used-up keys are refused with a reason", async () => {
		const a = agent();
		await expectCode(
			a.client.login("00000000-0000-0000-0000-000000000000", meta("x")),
			grpc.status.PERMISSION_DENIED,
			/not valid/,
		);
		const expired = await makeSetupKey(m, { expiresInSeconds: 1 });
		await new Promise((r) => setTimeout(r, 1100));
		await expectCode(
			agent().client.login(expired, meta("x")),
			grpc.status.PERMISSION_DENIED,
			/expired/,
		);
		const limited = await makeSetupKey(m, { usageLimit: 1 });
		await agent().client.login(limited, meta("x"));
		await expectCode(
			agent().client.login(limited, meta("y")),
			grpc.status.PERMISSION_DENIED,
			/usage limit/,
		);
		const revoked = await makeSetupKey(m);
		const accountId = await accountIdOf(m);
		const keys = await m.store.listSetupKeys(accountId);
		await m.store.write((tx) => tx.updateSetupKey({ ...keys.at(-1)!, revoked: true }));
		await expectCode(
			agent().client.login(revoked, meta("x")),
			grpc.status.PERMISSION_DENIED,
			/revoked/,
		);
		await expectCode(
			agent().client.login("", meta("x")),
			grpc.status.PERMISSION_DENIED,
			/setup key is required/,
		);
	});

	it("concurrent logins with one one-off key register exactly one peer", async () => {
		const key = await makeSetupKey(m, { type: "one-off" });
		const results = await Promise.allSettled(
			Array.from({ length: 20 }, (_, i) => agent().client.login(key, meta(`p${i}`))),
		);
		expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
		for (const r of results) {
			if (r.status === "rejected")
				expect((r.reason as ManagementCallError).code).toBe(grpc.status.PERMISSION_DENIED);
		}
		expect(await m.store.listPeers(await accountIdOf(m))).toHaveLength(1);
	});

	it("concurrent registrations with a reusable key get unique addresses and labels", async () => {
		const key = await makeSetupKey(m);
		const results = await Promise.all(
			Array.from({ length: 40 }, () => agent().client.login(key, meta("same-host"))),
		);
		const addresses = new Set(results.map((r) => r.self?.address));
		const labels = new Set(results.map((r) => r.self?.dnsLabel));
		expect(addresses.size).toBe(40);
		expect(labels.size).toBe(40);
	});
});

describe("sealed envelopes and bad input", () => {
	function rawClient(): ManagementServiceClient {
		return new ManagementServiceClient(`127.0.0.1:${m.port}`, grpc.credentials.createInsecure());
	}

	function rawLogin(
		client: ManagementServiceClient,
		envelope: Parameters<ManagementServiceClient["login"]>[0],
	) {
		return new Promise<grpc.ServiceError | undefined>((resolve) => {
			client.login(envelope, (err) => resolve(err ?? undefined));
		});
	}

	it("a tampered body, or one replayed under another peer's key, is refused as UNAUTHENTICATED", async () => {
		const key = await makeSetupKey(m);
		const a = generateKeyPair();
		const b = generateKeyPair();
		const channel = new EnvelopeChannel(a.publicKey, a.privateKey, m.serverKey.publicKey);
		const envelope = channel.seal(LoginRequest, { setupKey: key, meta: meta("a") });
		const client = rawClient();
		const tampered = { ...envelope, ciphertext: Uint8Array.from(envelope.ciphertext) };
		tampered.ciphertext[5]! ^= 1;
		expect((await rawLogin(client, tampered))?.code).toBe(grpc.status.UNAUTHENTICATED);
		const replayed = { ...envelope, senderPublicKey: b.publicKey };
		const err = await rawLogin(client, replayed);
		expect(err?.code).toBe(grpc.status.UNAUTHENTICATED);
		expect(err?.details).toMatch(/cannot open sealed body/);
		// Nothing was registered by either attempt; the genuine envelope still works.
		expect(await m.store.listPeers(await accountIdOf(m))).toHaveLength(0);
		expect(await rawLogin(client, envelope)).toBeUndefined();
		client.close();
	});

	it("a plaintext observer sees no setup key, address or name on the wire", async () => {
		const key = await makeSetupKey(m);
		const a = generateKeyPair();
		const channel = new EnvelopeChannel(a.publicKey, a.privateKey, m.serverKey.publicKey);
		const envelope = channel.seal(LoginRequest, { setupKey: key, meta: meta("secret-host") });
		const wire = Buffer.from(envelope.ciphertext).toString("latin1");
		expect(wire).not.toContain(key);
		expect(wire).not.toContain("secret-host");
	});

	it("garbage, missing fields and oversize requests get clear statuses, and the server keeps serving", async () => {
		const client = rawClient();
		const garbage = new grpc.Client(`127.0.0.1:${m.port}`, grpc.credentials.createInsecure());
		const sendRaw = (path: string, bytes: Buffer) =>
			new Promise<grpc.ServiceError | undefined>((resolve) => {
				garbage.makeUnaryRequest(
					path,
					(b: Buffer) => b,
					(b: Buffer) => b,
					bytes,
					(err) => resolve(err ?? undefined),
				);
			});
		const bad = await sendRaw(
			"/starling.v1.ManagementService/Login",
			Buffer.from([0xff, 0xff, 0xff, 0x0f, 0x01]),
		);
		expect(bad?.code).toBe(grpc.status.INVALID_ARGUMENT);
		const empty = await rawLogin(client, {
			senderPublicKey: new Uint8Array(),
			nonce: new Uint8Array(),
			ciphertext: new Uint8Array(),
		});
		expect(empty?.code).toBe(grpc.status.INVALID_ARGUMENT);
		const shortNonce = await rawLogin(client, {
			senderPublicKey: generateKeyPair().publicKey,
			nonce: new Uint8Array(3),
			ciphertext: new Uint8Array(40),
		});
		expect(shortNonce?.code).toBe(grpc.status.UNAUTHENTICATED);
		const huge = await sendRaw("/starling.v1.ManagementService/Login", Buffer.alloc(200 * 1024, 1));
		expect(huge?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
		const unknownMethod = await sendRaw("/starling.v1.ManagementService/Nope", Buffer.alloc(1));
		expect(unknownMethod?.code).toBe(grpc.status.UNIMPLEMENTED);

		const syncErr = await new Promise<grpc.ServiceError>((resolve) => {
			const call = garbage.makeServerStreamRequest(
				"/starling.v1.ManagementService/Sync",
				(b: Buffer) => b,
				(b: Buffer) => b,
				Buffer.from([0x0a, 0x50]),
			);
			call.on("error", resolve);
			call.on("data", () => {});
		});
		expect(syncErr.code).toBe(grpc.status.INVALID_ARGUMENT);

		// An unregistered peer cannot open a Sync stream.
		const stranger = agent();
		const s = await startSync(stranger);
		await expect.poll(() => s.ended.done).toBe(true);
		expect(s.ended.error?.code).toBe(grpc.status.PERMISSION_DENIED);

		// Still serving.
		const key = await makeSetupKey(m);
		expect((await agent().client.login(key, meta("after"))).registered).toBe(true);
		client.close();
		garbage.close();
	});
});

describe("relay tokens", () => {
	it("are issued in the map and refreshed before they expire", async () => {
		const relayDir = tempDir();
		const rm = await startTestManagement(relayDir.path, {
			STARLING_RELAY_URLS: "ws://127.0.0.1:33080",
			STARLING_RELAY_SECRET: "test-relay-secret-0123456789abcdef",
			STARLING_RELAY_TOKEN_TTL_S: "2",
			STARLING_SYNC_HEARTBEAT_MS: "100",
		});
		try {
			const { createSetupKey } = await import("../src/app/setup-keys.js");
			const row = { id: await accountIdOf(rm) };
			const { plainKey } = await createSetupKey(
				rm.store,
				row.id,
				{
					name: "k",
					type: "reusable",
					expiresInSeconds: 0,
					autoGroups: [],
					usageLimit: 0,
					ephemeral: false,
				},
				new Date(),
			);
			const a = newAgent(rm.port);
			const login = await a.client.login(plainKey, meta("a"));
			expect(login.relay?.urls).toEqual(["ws://127.0.0.1:33080"]);
			expect(login.relay?.token.length).toBeGreaterThan(20);
			await startSync(a);
			const first = await a.waitForMap((m) => m.relay !== undefined);
			const refreshed = await a.waitForMap(
				(m) => (m.relay?.tokenExpiresUnixMs ?? 0) > (first.relay?.tokenExpiresUnixMs ?? 0),
				3000,
			);
			expect(refreshed.relay?.token).not.toBe(first.relay?.token);
			a.close();
		} finally {
			await rm.close();
			relayDir.remove();
		}
	});
});
