import type { Logger } from "@starling/log";
import type { PeerMessage } from "@starling/proto";
import type { ConnCommand, ConnInput, PeerEndpoint } from "../conn/peer-connection.js";
import type { IceSessions } from "./ice-sessions.js";
import type { PeerState } from "./peer-state.js";
import { armHandshakeRetries, HANDSHAKE_RETRIES } from "./reconciler.js";
import { endpointText } from "./status.js";

/** What carrying out the commands takes; each is one of the engine's other parts. */
export interface CommandExecutorOptions {
	ice: Pick<
		IceSessions,
		| "start"
		| "setRemoteDescription"
		| "addRemoteCandidate"
		| "close"
		| "hasConnected"
		| "takeConnected"
	>;
	/** The signal link: seals, sends or holds. */
	sendSignal(state: PeerState, message: PeerMessage): void;
	/** The reconciler: port rewrite and WireGuard peer set. */
	reconciler: {
		request(): void;
		routeDirect(state: PeerState, path: NonNullable<PeerState["path"]>): void;
		unrouteDirect(state: PeerState, reconcile: boolean): void;
	};
	/** The path monitor's probes. */
	probes: {
		startProbe(state: PeerState, port: number): void;
		closeProbe(state: PeerState): void;
	};
	/** The map's STUN servers, for a new ICE session. */
	stunServers(): string[];
	/** Feeds a fired timer back to the peer's state machine. */
	feed(state: PeerState, input: ConnInput): void;
	logger: Logger;
}

/**
 * Carries out the commands of a peer's connection state machine
 * (conn/peer-connection.ts) with the engine's parts: ICE sessions, the
 * signal link, the reconciler, path probes and the peer's timers.
 */
export class CommandExecutor {
	constructor(private readonly options: CommandExecutorOptions) {}

	execute(state: PeerState, command: ConnCommand): void {
		const o = this.options;
		switch (command.type) {
			case "send-signal":
				o.sendSignal(state, command.message);
				return;
			case "ice-start":
				o.ice.start(state.key, command.sessionId, command.role, o.stunServers());
				return;
			case "ice-remote-description":
				o.ice.setRemoteDescription(state.key, command.sessionId, command.sdp, command.kind);
				return;
			case "ice-remote-candidate":
				o.ice.addRemoteCandidate(state.key, command.sessionId, command.candidate, command.mid);
				return;
			case "ice-close":
				o.ice.close(
					state.key,
					command.sessionId,
					o.ice.hasConnected(state.key, command.sessionId) || state.path !== undefined,
				);
				return;
			case "path-up": {
				const ice = o.ice.takeConnected(state.key, command.sessionId);
				state.health = { rx: undefined, lastTxBytes: state.health.lastTxBytes };
				const path = {
					local: command.local,
					remote: command.remote,
					rttMs: ice?.rttMs,
					socketPort: ice?.socketPort ?? command.local.port,
				};
				state.path = path;
				o.probes.startProbe(state, path.socketPort);
				// The controlling side sends the first handshake; the other waits a
				// moment so both don't initiate in the same instant (which can cost 5 s).
				state.keepalive = command.sendHandshakeFirst;
				if (!command.sendHandshakeFirst) {
					state.timers.set("engine-keepalive", 1_000, () => {
						state.keepalive = true;
						o.reconciler.request();
					});
				}
				o.logger.info(
					{ peer: state.remote.name, local: fmt(command.local), remote: fmt(command.remote) },
					"direct path up",
				);
				// The pass that gives WireGuard the new path (once the port rewrite is in)
				// also replaces the peer if no handshake completed yet (e.g. the one over
				// the relay was lost), so it needs no 5 s wait; then retries follow.
				if (command.sendHandshakeFirst) {
					state.handshakeRetryDue = true;
					armHandshakeRetries(state, () => o.reconciler.request(), HANDSHAKE_RETRIES, false);
				}
				o.reconciler.routeDirect(state, path);
				return;
			}
			case "path-down":
				o.logger.info({ peer: state.remote.name, reason: command.reason }, "path down");
				state.path = undefined;
				state.health = { rx: undefined, lastTxBytes: state.health.lastTxBytes };
				state.keepalive = false;
				o.probes.closeProbe(state);
				o.reconciler.unrouteDirect(state, true);
				return;
			case "wireguard-session-stale":
				// Without this, our WireGuard keeps sending under keys the restarted peer
				// no longer has, and neither side starts a handshake until the peer's
				// first one is retried (5 s) or ours times out.
				o.logger.info(
					{ peer: state.remote.name },
					"peer restarted: replacing its WireGuard session",
				);
				state.wireguardSessionStale = true;
				o.reconciler.request();
				return;
			case "set-timer":
				state.timers.set(command.name, command.delayMs, () =>
					o.feed(state, { type: "timer", name: command.name }),
				);
				return;
			case "cancel-timer":
				state.timers.cancel(command.name);
				return;
		}
	}
}

function fmt(e: PeerEndpoint): string {
	return `${endpointText(e)} (${e.type})`;
}
