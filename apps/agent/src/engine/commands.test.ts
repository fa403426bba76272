import { createLogger } from "@starling/log";
import type { PeerMessage, RemotePeer } from "@starling/proto";
import { describe, expect, it, vi } from "vitest";
import type { ConnInput, PeerConnection } from "../conn/peer-connection.js";
import { CommandExecutor } from "./commands.js";
import { type PeerState, PeerTimers } from "./peer-state.js";

function peerState(): PeerState {
	const key = "k";
	return {
		key,
		publicKey: new Uint8Array(32),
		remote: {
			wgPublicKey: key,
			name: "db",
			allowedIps: [],
			connected: true,
		} as unknown as RemotePeer,
		conn: {} as PeerConnection,
		timers: new PeerTimers(() => true),
		path: undefined,
		keepalive: false,
		wireguardSessionStale: false,
		handshakeRetryDue: false,
		health: { rx: { bytes: 1, at: 1 }, lastTxBytes: 9 },
		probe: undefined,
	};
}

function setup() {
	const log: string[] = [];
	const fed: ConnInput[] = [];
	const executor = new CommandExecutor({
		ice: {
			start: (key, id, role, stun) => log.push(`ice start ${key}#${id} ${role} ${stun.join(",")}`),
			setRemoteDescription: (key, id, _sdp, kind) => log.push(`ice remote ${kind} ${key}#${id}`),
			addRemoteCandidate: (key, id, c) => log.push(`ice candidate ${key}#${id} ${c}`),
			close: (key, id, linger) => log.push(`ice close ${key}#${id} linger=${linger}`),
			hasConnected: (_key, id) => id === 2,
			takeConnected: (_key, id) => (id === 2 ? { rttMs: 8, socketPort: 40001 } : undefined),
		},
		sendSignal: (_state, message: PeerMessage) => log.push(`signal ${message.sessionId}`),
		reconciler: {
			request: () => log.push("reconcile"),
			routeDirect: (_s, path) => log.push(`route ${path.socketPort}`),
			unrouteDirect: (_s, reconcile) => log.push(`unroute reconcile=${reconcile}`),
		},
		probes: {
			startProbe: (_s, port) => log.push(`probe ${port}`),
			closeProbe: () => log.push("probe close"),
		},
		stunServers: () => ["stun:a:3478"],
		feed: (_s, input) => fed.push(input),
		logger: createLogger("commands-test", { level: "silent" }),
	});
	return { executor, log, fed };
}

const endpoint = { address: "203.0.113.9", port: 41000, type: "srflx" as const };

describe("CommandExecutor", () => {
	it("marks a restarted peer's WireGuard session stale and asks for a pass that replaces it", () => {
		const { executor, log } = setup();
		const state = peerState();
		executor.execute(state, { type: "wireguard-session-stale", peerInstance: 5 });
		expect(state.wireguardSessionStale).toBe(true);
		expect(log).toEqual(["reconcile"]);
	});

	it("hands ICE and signal commands to their parts", () => {
		const { executor, log } = setup();
		const state = peerState();
		executor.execute(state, { type: "ice-start", sessionId: 1, role: "controlling" });
		executor.execute(state, {
			type: "ice-remote-description",
			sessionId: 1,
			sdp: "v=0",
			kind: "answer",
		});
		executor.execute(state, {
			type: "ice-remote-candidate",
			sessionId: 1,
			candidate: "c",
			mid: "0",
		});
		executor.execute(state, {
			type: "send-signal",
			message: { sessionId: 1, kind: undefined, senderInstance: 7 },
		});
		executor.execute(state, { type: "ice-close", sessionId: 1 });
		executor.execute(state, { type: "ice-close", sessionId: 2 });
		expect(log).toEqual([
			"ice start k#1 controlling stun:a:3478",
			"ice remote answer k#1",
			"ice candidate k#1 c",
			"signal 1",
			"ice close k#1 linger=false",
			"ice close k#2 linger=true",
		]);
	});

	it("puts a path up from the ICE socket's port and takes it down again", async () => {
		vi.useFakeTimers();
		try {
			const { executor, log } = setup();
			const state = peerState();
			executor.execute(state, {
				type: "path-up",
				sessionId: 2,
				local: { address: "198.51.100.1", port: 5000, type: "srflx" },
				remote: endpoint,
				remoteWireguardPort: 51820,
				sendHandshakeFirst: false,
			});
			expect(state.path).toMatchObject({ remote: endpoint, rttMs: 8, socketPort: 40001 });
			expect(state.health).toEqual({ rx: undefined, lastTxBytes: 9 });
			expect(state.keepalive).toBe(false);
			expect(log).toEqual(["probe 40001", "route 40001"]);
			// Not the side that sends the first handshake: no handshake retries.
			expect(state.handshakeRetryDue).toBe(false);
			// The side that does not send the first handshake turns keepalives on a moment later.
			await vi.advanceTimersByTimeAsync(1_000);
			expect(state.keepalive).toBe(true);
			expect(log.at(-1)).toBe("reconcile");
			expect(state.handshakeRetryDue).toBe(false);
			executor.execute(state, { type: "path-down", reason: "lost" });
			expect(state.path).toBeUndefined();
			expect(state.keepalive).toBe(false);
			expect(log.slice(-2)).toEqual(["probe close", "unroute reconcile=true"]);
		} finally {
			vi.useRealTimers();
		}
	});

	it("the side that sends the first handshake retries one that never completed, with the path's first pass", async () => {
		vi.useFakeTimers();
		try {
			const { executor, log } = setup();
			const state = peerState();
			executor.execute(state, {
				type: "path-up",
				sessionId: 2,
				local: { address: "198.51.100.1", port: 5000, type: "srflx" },
				remote: endpoint,
				remoteWireguardPort: 51820,
				sendHandshakeFirst: true,
			});
			// Due for the pass the route asks for once the port rewrite is in; no pass before it.
			expect(state.handshakeRetryDue).toBe(true);
			expect(log).toEqual(["probe 40001", "route 40001"]);
			state.handshakeRetryDue = false;
			await vi.advanceTimersByTimeAsync(1_000);
			expect(state.handshakeRetryDue).toBe(true);
			expect(log.at(-1)).toBe("reconcile");
		} finally {
			vi.useRealTimers();
		}
	});

	it("runs the state machine's timers and feeds them back; a cancelled one never fires", async () => {
		vi.useFakeTimers();
		try {
			const { executor, fed } = setup();
			const state = peerState();
			executor.execute(state, { type: "set-timer", name: "retry", delayMs: 100 });
			executor.execute(state, { type: "set-timer", name: "offer-timeout", delayMs: 100 });
			executor.execute(state, { type: "cancel-timer", name: "offer-timeout" });
			await vi.advanceTimersByTimeAsync(100);
			expect(fed).toEqual([{ type: "timer", name: "retry" }]);
		} finally {
			vi.useRealTimers();
		}
	});
});
