import { createLogger } from "@starling/log";
import type { ClientRoute, NetworkMap, RemotePeer } from "@starling/proto";
import { describe, expect, it } from "vitest";
import type { WantedKernelState } from "../routing/kernel-routes.js";
import type { ExitNodeChoice } from "../routing/selection.js";
import { ClientRoutes, routerHealthOf } from "./client-routes.js";
import type { PeerState } from "./peer-state.js";

describe("routerHealthOf", () => {
	const base = {
		online: true,
		direct: false,
		relayed: true,
		rttMs: undefined,
		rxBytes: 100,
		lostRx: undefined,
		name: "r1",
	};
	it("a direct path or a relay not known dead is reachable; offline in management is not", () => {
		expect(routerHealthOf({ ...base, direct: true }).reachable).toBe(true);
		expect(routerHealthOf(base).reachable).toBe(true);
		expect(routerHealthOf({ ...base, online: false, direct: true }).reachable).toBe(false);
		expect(routerHealthOf({ ...base, relayed: false }).reachable).toBe(false);
	});
	it("after a lost direct path, the relay counts only once something was received through it", () => {
		expect(routerHealthOf({ ...base, lostRx: 100 }).reachable).toBe(false);
		expect(routerHealthOf({ ...base, lostRx: 100, rxBytes: 148 }).reachable).toBe(true);
		expect(routerHealthOf({ ...base, lostRx: 100, direct: true }).reachable).toBe(true);
	});
});

const KEY1 = "r1";
const KEY2 = "r2";

function fakePeer(key: string, name: string): PeerState {
	return {
		key,
		remote: { name, wgPublicKey: key, connected: true } as RemotePeer,
		path: { remote: { address: `198.18.5.${name === "r1" ? 1 : 2}`, port: 5000 } },
		probe: undefined,
	} as unknown as PeerState;
}

function mapWith(routes: Partial<ClientRoute>[]): NetworkMap {
	return {
		routes: routes.map((r, i) => ({
			id: `x${i}`,
			networkId: "lan",
			network: "198.18.10.0/24",
			routerKey: KEY1,
			metric: 10,
			keepRoute: false,
			skipAutoApply: false,
			description: "",
			routeId: "x",
			...r,
		})),
		stunServers: [{ uri: "stun:198.18.0.3:3478" }],
		signal: { url: "http://198.18.0.2:10000" },
		relay: { urls: ["ws://198.18.0.4:33080"] },
	} as unknown as NetworkMap;
}

function setUp(kernelApply?: (w: WantedKernelState) => Promise<void>) {
	const peers = new Map([
		[KEY1, fakePeer(KEY1, "r1")],
		[KEY2, fakePeer(KEY2, "r2")],
	]);
	const rx = new Map([
		[KEY1, 1000],
		[KEY2, 1000],
	]);
	const applied: WantedKernelState[] = [];
	let reconciles = 0;
	let saved: ExitNodeChoice | undefined;
	let now = 0;
	const routes = new ClientRoutes({
		host: {
			kernel: {
				apply: async (w) => {
					applied.push(w);
					await kernelApply?.(w);
				},
			},
			localNetworks: async () => ["198.18.1.0/24"],
			exitNode: { load: () => ({ mode: "auto" }), save: (c) => (saved = c) },
			controlPlaneHosts: ["198.18.0.1"],
			resolve: async () => [],
		},
		peer: (k) => peers.get(k),
		peers: () => peers.values(),
		relayEndpointOf: () => "127.0.0.1:40000",
		wgOf: (k) => ({ rxBytes: rx.get(k) ?? 0 }),
		reconcile: () => reconciles++,
		logger: createLogger("test", { level: "silent" }),
		now: () => now,
		holdMs: 3_000,
	});
	return {
		routes,
		peers,
		rx,
		applied,
		reconciles: () => reconciles,
		saved: () => saved,
		at: (t: number) => {
			now = t;
		},
	};
}

describe("ClientRoutes", () => {
	it("gives the network to the best router, moves it on a lost path and back once after the hold", async () => {
		const t = setUp();
		t.routes.applyMap(
			mapWith([
				{ routerKey: KEY1, metric: 10 },
				{ routerKey: KEY2, metric: 20 },
			]),
		);
		await t.routes.settled();
		expect(t.routes.allowedIpsOf(KEY1)).toEqual(["198.18.10.0/24"]);
		expect(t.applied.at(-1)).toEqual({ routes: ["198.18.10.0/24"], bypass: [] });
		const before = t.reconciles();

		// path-probe gave up on R1: its direct path is gone, the relay unproven.
		t.peers.get(KEY1)!.path = undefined;
		t.at(1_000);
		t.routes.noteLost(KEY1);
		expect(t.routes.allowedIpsOf(KEY1)).toEqual([]);
		expect(t.routes.allowedIpsOf(KEY2)).toEqual(["198.18.10.0/24"]);
		expect(t.reconciles()).toBe(before + 1);
		expect(t.routes.status()[0]?.reason).toMatch(/failover: r1 unreachable/);
		// The kernel route does not change: same prefix, same interface.
		const kernelCalls = t.applied.length;

		// R1's keepalive comes through the relay: reachable again, but relayed
		// at metric 10 still beats R2's 20, after the hold.
		t.rx.set(KEY1, 1032);
		t.at(2_000);
		t.routes.evaluate();
		expect(t.routes.allowedIpsOf(KEY2)).toEqual(["198.18.10.0/24"]);
		t.at(5_000);
		t.routes.evaluate();
		expect(t.routes.allowedIpsOf(KEY1)).toEqual(["198.18.10.0/24"]);
		await t.routes.settled();
		expect(t.applied.length).toBe(kernelCalls);
		await t.routes.stop();
	});

	it("exit node: bypass rules for the control plane and peer endpoints; unknown names refused", async () => {
		const t = setUp();
		t.routes.applyMap(
			mapWith([{ routerKey: KEY2, network: "0.0.0.0/0", networkId: "exit", skipAutoApply: true }]),
		);
		await t.routes.settled();
		expect(t.applied.at(-1)?.routes ?? []).toEqual([]);
		expect(() => t.routes.selectExitNode({ mode: "use", name: "nope" })).toThrow(
			"no exit node named 'nope' (offered: r2)",
		);
		t.routes.selectExitNode({ mode: "use", name: "r2" });
		expect(t.saved()).toEqual({ mode: "use", name: "r2" });
		await t.routes.settled();
		expect(t.applied.at(-1)).toEqual({
			routes: ["0.0.0.0/0"],
			bypass: ["198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4", "198.18.5.1", "198.18.5.2"],
		});
		expect(t.routes.allowedIpsOf(KEY2)).toEqual(["0.0.0.0/0"]);
		await t.routes.stop();
	});

	it("a failed kernel update is kept for status and tried again after a pause, not on every tick", async () => {
		let fail = true;
		const t = setUp(async () => {
			if (fail) throw new Error("ip: RTNETLINK answers: Operation not permitted");
		});
		t.routes.applyMap(mapWith([{ routerKey: KEY1, metric: 10 }]));
		await t.routes.settled();
		expect(t.routes.lastError()).toBe("ip: RTNETLINK answers: Operation not permitted");
		expect(t.routes.status()[0]?.installed).toBe(false);
		t.at(1_000);
		t.routes.evaluate();
		await t.routes.settled();
		expect(t.applied).toHaveLength(1);
		fail = false;
		t.at(2_000);
		t.routes.evaluate();
		await t.routes.settled();
		expect(t.applied).toHaveLength(2);
		expect(t.routes.lastError()).toBe("");
		expect(t.routes.status()[0]?.installed).toBe(true);
		await t.routes.stop();
	});
});
