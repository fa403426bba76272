import type { RemotePeer } from "@starling/proto";
import { describe, expect, it, vi } from "vitest";
import type { DesiredPeer } from "../wireguard/plan.js";
import { type DirectPath, PeerTimers } from "./peer-state.js";
import {
	armHandshakeRetries,
	desiredPeers,
	HANDSHAKE_RETRIES,
	HANDSHAKE_RETRY_MS,
	PERSISTENT_KEEPALIVE_S,
	type ReconcilePeer,
	Reconciler,
} from "./reconciler.js";

function peer(key: string, path?: DirectPath, keepalive = true): ReconcilePeer {
	return {
		key,
		remote: { wgPublicKey: key, allowedIps: [`100.64.0.${key.length}/32`] } as RemotePeer,
		path,
		keepalive,
		wireguardSessionStale: false,
		handshakeRetryDue: false,
	};
}

function direct(): DirectPath {
	return {
		local: { address: "192.168.1.2", port: 40001, type: "host" },
		remote: { address: "203.0.113.9", port: 41000, type: "srflx" },
		rttMs: 5,
		socketPort: 40001,
	};
}

describe("desiredPeers", () => {
	it("replaces the WireGuard session of a peer that restarted, and reports it (also when it is left out)", () => {
		const relay = new Map([["b", "127.0.0.1:50002"]]);
		const onRelay = { ...peer("b"), wireguardSessionStale: true };
		const nowhere = { ...peer("c"), wireguardSessionStale: true };
		const untouched = peer("dd", direct());
		const { desired, sessionsReplaced } = desiredPeers(
			[onRelay, nowhere, untouched],
			() => undefined,
			(k) => relay.get(k),
		);
		expect(desired.map((d) => [d.publicKey, d.replaceSession])).toEqual([
			["b", true],
			["dd", undefined],
		]);
		expect(sessionsReplaced).toEqual([onRelay, nowhere]);
	});

	it("a due handshake retry replaces the peer if no handshake completed, on the relay too, and is reported", () => {
		const due = { ...peer("b"), handshakeRetryDue: true };
		const { desired, retriesDone } = desiredPeers(
			[due, peer("c")],
			() => undefined,
			() => "127.0.0.1:50001",
		);
		expect(desired.map((d) => d.replaceSession)).toEqual(["if-no-handshake", undefined]);
		expect(retriesDone).toEqual([due]);
	});

	it("leaves out peers with nowhere to send, relays the others until ICE finds a path", () => {
		const relay = new Map([["b", "127.0.0.1:50002"]]);
		const { desired } = desiredPeers(
			[peer("a"), peer("b")],
			() => undefined,
			(k) => relay.get(k),
		);
		expect(desired).toEqual([
			{
				publicKey: "b",
				allowedIps: ["100.64.0.1/32"],
				endpoint: "127.0.0.1:50002",
				persistentKeepalive: PERSISTENT_KEEPALIVE_S,
			},
		]);
	});

	it("gives a direct path's endpoint once, then follows WireGuard's roaming, and puts it back off the bridge", () => {
		const path = direct();
		const p = peer("a", path, false);
		const bridge = () => "127.0.0.1:50001";
		const first = desiredPeers([p], () => undefined, bridge);
		expect(first.desired[0]).toMatchObject({
			endpoint: "203.0.113.9:41000",
			persistentKeepalive: undefined,
		});
		expect(first.endpointsSet).toEqual([path]);
		path.endpointApplied = true;
		const roamed = desiredPeers([p], () => "203.0.113.9:42000", bridge);
		expect(roamed.desired[0]?.endpoint).toBeUndefined();
		expect(roamed.endpointsSet).toEqual([]);
		expect(path.lastDirectEndpoint).toBe("203.0.113.9:42000");
		const onBridge = desiredPeers([p], () => "127.0.0.1:50001", bridge);
		expect(onBridge.desired[0]?.endpoint).toBe("203.0.113.9:42000");
	});
});

describe("Reconciler", () => {
	it("collapses a burst of requests into one pass and marks direct endpoints applied after it", async () => {
		const passes: DesiredPeer[][] = [];
		const path = direct();
		const r = new Reconciler({
			device: {
				applyPeers: async (d) => {
					passes.push([...d]);
					return [];
				},
			},
			portRewriter: { set: () => undefined, remove: () => undefined, apply: async () => undefined },
			peers: () => [peer("a", path)],
			wgEndpointOf: () => undefined,
			relayEndpointOf: () => undefined,
			logError: (what, err) => {
				throw new Error(`${what}: ${String(err)}`);
			},
		});
		r.request();
		r.request();
		r.request();
		await r.settled();
		expect(passes).toHaveLength(1);
		expect(path.endpointApplied).toBe(true);
		await r.stop();
		r.request();
		await r.settled();
		expect(passes).toHaveLength(1);
	});

	it("does nothing before the first map, and logs a failed pass without marking endpoints", async () => {
		const errors: string[] = [];
		const path = direct();
		let ready = false;
		const r = new Reconciler({
			device: {
				applyPeers: async () => {
					throw new Error("wg set failed");
				},
			},
			portRewriter: { set: () => undefined, remove: () => undefined, apply: async () => undefined },
			peers: () => (ready ? [peer("a", path)] : undefined),
			wgEndpointOf: () => undefined,
			relayEndpointOf: () => undefined,
			logError: (what) => errors.push(what),
		});
		r.request();
		await r.settled();
		expect(errors).toEqual([]);
		ready = true;
		r.request();
		await r.settled();
		expect(errors).toEqual(["wireguard reconcile"]);
		expect(path.endpointApplied).toBeUndefined();
	});

	it("marks a replaced session fresh only once the pass succeeded, so a failed one is retried", async () => {
		let fail = true;
		const passes: DesiredPeer[][] = [];
		const stale = { ...peer("a", direct()), wireguardSessionStale: true };
		const r = new Reconciler({
			device: {
				applyPeers: async (d) => {
					passes.push([...d]);
					if (fail) throw new Error("wg set failed");
					return [];
				},
			},
			portRewriter: { set: () => undefined, remove: () => undefined, apply: async () => undefined },
			peers: () => [stale],
			wgEndpointOf: () => undefined,
			relayEndpointOf: () => undefined,
			logError: () => undefined,
		});
		r.request();
		await r.settled();
		expect(stale.wireguardSessionStale).toBe(true);
		fail = false;
		r.request();
		await r.settled();
		expect(stale.wireguardSessionStale).toBe(false);
		r.request();
		await r.settled();
		expect(passes.map((p) => p[0]?.replaceSession)).toEqual([true, true, undefined]);
	});

	it("keeps a restart or a retry noted while a pass runs for the next pass", async () => {
		const passes: DesiredPeer[][] = [];
		const restarted = { ...peer("a", direct()), wireguardSessionStale: true };
		const retried = { ...peer("bb", direct()), handshakeRetryDue: true };
		const r: Reconciler = new Reconciler({
			device: {
				applyPeers: async (d) => {
					passes.push([...d]);
					if (passes.length === 1) {
						// The peer restarts again and a retry comes due while WireGuard is being set.
						restarted.wireguardSessionStale = true;
						retried.handshakeRetryDue = true;
						r.request();
					}
					return [];
				},
			},
			portRewriter: { set: () => undefined, remove: () => undefined, apply: async () => undefined },
			peers: () => [restarted, retried],
			wgEndpointOf: () => undefined,
			relayEndpointOf: () => undefined,
			logError: () => undefined,
		});
		r.request();
		await r.settled();
		await r.settled();
		expect(passes.map((p) => p.map((d) => d.replaceSession))).toEqual([
			[true, "if-no-handshake"],
			[true, "if-no-handshake"],
		]);
		expect(restarted.wireguardSessionStale).toBe(false);
		expect(retried.handshakeRetryDue).toBe(false);
	});

	it("installs the port rewrite for a direct path before reconciling, and drops it", async () => {
		const log: string[] = [];
		const r = new Reconciler({
			device: {
				applyPeers: async () => {
					log.push("wg");
					return [];
				},
			},
			portRewriter: {
				set: (key, e) => log.push(`set ${key} ${e.localPort}->${e.remoteAddress}:${e.remotePort}`),
				remove: (key) => log.push(`remove ${key}`),
				apply: async () => {
					log.push("nft");
				},
			},
			peers: () => [],
			wgEndpointOf: () => undefined,
			relayEndpointOf: () => undefined,
			logError: () => undefined,
		});
		r.routeDirect({ key: "a" }, direct());
		await new Promise((resolve) => setImmediate(resolve));
		await r.settled();
		r.unrouteDirect({ key: "a" }, false);
		await r.settled();
		expect(log).toEqual(["set a 40001->203.0.113.9:41000", "nft", "wg", "remove a", "nft"]);
	});
});

describe("armHandshakeRetries", () => {
	it("marks a retry due and asks for a pass at once, then every second three times; arming again restarts the count", () => {
		vi.useFakeTimers();
		try {
			const state = { timers: new PeerTimers(() => true), handshakeRetryDue: false };
			let passes = 0;
			armHandshakeRetries(state, () => passes++);
			// One pass at once...
			expect([passes, state.handshakeRetryDue]).toEqual([1, true]);
			state.handshakeRetryDue = false;
			vi.advanceTimersByTime(HANDSHAKE_RETRY_MS - 1);
			expect(passes).toBe(1);
			// ...then one a second later.
			vi.advanceTimersByTime(1);
			expect([passes, state.handshakeRetryDue]).toEqual([2, true]);
			// Arming again restarts the count; without `now` it only arms the timer.
			armHandshakeRetries(state, () => passes++, HANDSHAKE_RETRIES, false);
			expect(passes).toBe(2);
			vi.advanceTimersByTime(HANDSHAKE_RETRY_MS * 10);
			expect(passes).toBe(2 + HANDSHAKE_RETRIES);
		} finally {
			vi.useRealTimers();
		}
	});

	it("stops with the peer (its timers only fire while it is in the map)", () => {
		vi.useFakeTimers();
		try {
			let inMap = true;
			const state = { timers: new PeerTimers(() => inMap), handshakeRetryDue: false };
			let passes = 0;
			armHandshakeRetries(state, () => passes++);
			inMap = false;
			vi.advanceTimersByTime(HANDSHAKE_RETRY_MS * 10);
			expect(passes).toBe(1);
		} finally {
			vi.useRealTimers();
		}
	});
});
