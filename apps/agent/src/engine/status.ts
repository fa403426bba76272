import type { PeerStatus, RemotePeer } from "@starling/proto";
import type { ConnSnapshot, PeerEndpoint } from "../conn/peer-connection.js";
import type { IceStats } from "./ice-sessions.js";
import { pathTypeOf, type WireGuardPeerCounters } from "./path-health.js";

/** Everything `starling status` shows about one peer, gathered by the engine. */
export interface PeerStatusInput {
	now: number;
	remote: RemotePeer;
	conn: Pick<ConnSnapshot, "state" | "lastFailure">;
	/** The installed direct path, if any. */
	path: { local: PeerEndpoint; remote: PeerEndpoint; rttMs: number | undefined } | undefined;
	relayEndpoint: string | undefined;
	/** The relay's URL, shown as the remote end of a relayed path. */
	relayUrl: string;
	wg: WireGuardPeerCounters | undefined;
	/** Round trip of the last answered path probe. */
	probeRttMs: number | undefined;
	ice: IceStats;
}

/** One peer's line of `starling status`, derived (sans-IO) from what the engine knows. */
export function peerStatusOf(i: PeerStatusInput): PeerStatus {
	const snap = i.conn;
	const direct = snap.state === "connected" && i.path !== undefined;
	const pathType = pathTypeOf({
		now: i.now,
		directUp: direct,
		peerOnline: i.remote.connected,
		relayEndpoint: i.relayEndpoint,
		wg: i.wg,
	});
	const relayed = pathType === "relayed";
	const wg = i.wg;
	return {
		name: i.remote.name,
		wgPublicKey: i.remote.wgPublicKey,
		overlayIp: i.remote.allowedIps[0]?.replace(/\/32$/, "") ?? "",
		fqdn: i.remote.fqdn,
		connectionState:
			pathType !== ""
				? "connected"
				: snap.state === "idle" || snap.state === "closed"
					? "idle"
					: (snap.state === "backoff" || snap.state === "waiting-for-peer") && snap.lastFailure
						? "failed"
						: "connecting",
		pathType,
		localEndpoint: i.path ? endpointText(i.path.local) : "",
		// Where WireGuard sends now: the peer's packets may come from
		// another address than ICE reported (see the port rewrite).
		remoteEndpoint: i.path
			? wg?.endpoint && wg.endpoint !== i.relayEndpoint
				? wg.endpoint
				: endpointText(i.path.remote)
			: relayed
				? i.relayUrl
				: "",
		localCandidateType: i.path?.local.type ?? "",
		remoteCandidateType: i.path?.remote.type ?? (relayed ? "relay" : ""),
		lastHandshakeUnixMs: (wg?.latestHandshakeUnixSeconds ?? 0) * 1000,
		bytesReceived: wg?.rxBytes ?? 0,
		bytesSent: wg?.txBytes ?? 0,
		latencyMs: i.probeRttMs ?? i.path?.rttMs ?? 0,
		peerOnline: i.remote.connected,
		reason: direct
			? ""
			: relayed
				? `relayed: ${snap.lastFailure ?? "no direct path found yet"}`
				: (snap.lastFailure ?? (i.remote.connected ? "" : "peer is offline")),
		iceAttempts: i.ice.attempts,
		iceSuccesses: i.ice.successes,
		iceFailures: i.ice.failures,
		iceLastFailure: i.ice.lastFailure,
	};
}

/** The firewall line of `starling status`. */
export function firewallStatusOf(
	firewall: { ruleCount: number } | undefined,
	enforced: boolean | undefined,
	lastError: string,
): string {
	if (!firewall) return "disabled by operator";
	const state =
		enforced === false
			? "open (management sends no access policies)"
			: `enforcing (${firewall.ruleCount} rule${firewall.ruleCount === 1 ? "" : "s"})`;
	return lastError ? `${state}; last update failed: ${lastError}` : state;
}

export function endpointText(e: { address: string; port: number }): string {
	return e.address.includes(":") ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}
