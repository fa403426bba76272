import type { DaemonStatus, PeerStatus } from "@starling/proto";

/**
 * The stable JSON form of `starling status --json` (documented in
 * apps/agent/README.md). Field names are snake_case and only ever added to.
 */
export function statusToJson(
	s: DaemonStatus,
	detail: boolean,
	now = Date.now(),
): Record<string, unknown> {
	const out: Record<string, unknown> = {
		agent_version: s.agentVersion,
		state: s.state,
		management: {
			url: s.management?.url ?? "",
			connected: s.management?.connected ?? false,
			error: s.management?.error ?? "",
		},
		signal: {
			url: s.signal?.url ?? "",
			connected: s.signal?.connected ?? false,
			error: s.signal?.error ?? "",
		},
		wg_public_key: s.wgPublicKey,
		overlay_address: s.overlayAddress,
		fqdn: s.fqdn,
		interface_name: s.interfaceName,
		interface_type: s.interfaceType,
		wireguard_port: s.wireguardPort,
		peers_connected: s.peersConnected,
		peers_total: s.peersTotal,
		firewall: s.firewall,
		relay: {
			url: s.relay?.url ?? "",
			connected: s.relay?.connected ?? false,
			error: s.relay?.error ?? "",
		},
		served_routes: (s.servedRoutes ?? []).map((r) => ({
			route_id: r.routeId,
			network: r.network,
			masquerade: r.masquerade,
			filtered: r.filtered,
			rule_count: r.ruleCount,
			error: r.error,
		})),
	};
	if (detail) out.peers = s.peers.map((p) => peerToJson(p, now));
	return out;
}

function peerToJson(p: PeerStatus, now: number): Record<string, unknown> {
	return {
		name: p.name,
		wg_public_key: p.wgPublicKey,
		overlay_ip: p.overlayIp,
		fqdn: p.fqdn,
		connection_state: p.connectionState,
		path_type: p.pathType,
		local_endpoint: p.localEndpoint,
		remote_endpoint: p.remoteEndpoint,
		local_candidate_type: p.localCandidateType,
		remote_candidate_type: p.remoteCandidateType,
		last_handshake:
			p.lastHandshakeUnixMs > 0 ? new Date(p.lastHandshakeUnixMs).toISOString() : null,
		bytes_received: p.bytesReceived,
		bytes_sent: p.bytesSent,
		latency_ms: p.latencyMs,
		peer_online: p.peerOnline,
		reason: p.reason,
		relay_url: p.relayUrl ?? "",
		handshake_age_s:
			p.lastHandshakeUnixMs > 0
				? Math.max(0, Math.round((now - p.lastHandshakeUnixMs) / 1000))
				: null,
		ice: {
			attempts: p.iceAttempts,
			successes: p.iceSuccesses,
			failures: p.iceFailures,
			last_failure: p.iceLastFailure,
		},
	};
}

const conn = (c: { connected: boolean; url: string; error: string } | undefined) =>
	!c?.url
		? "-"
		: c.connected
			? `Connected (${c.url})`
			: `Disconnected (${c.url})${c.error ? `: ${c.error}` : ""}`;

function ago(ms: number, now: number): string {
	if (ms <= 0) return "never";
	const s = Math.max(0, Math.round((now - ms) / 1000));
	return s < 60
		? `${s}s ago`
		: s < 3600
			? `${Math.round(s / 60)}m ago`
			: `${Math.round(s / 3600)}h ago`;
}

function bytes(n: number): string {
	if (n < 1024) return `${n} B`;
	if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
	if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
	return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** The human-readable `starling status`. */
export function statusToText(s: DaemonStatus, detail: boolean, now = Date.now()): string {
	const lines: string[] = [];
	if (detail && s.peers.length > 0) {
		lines.push("Peers detail:");
		for (const p of s.peers) {
			lines.push(
				` ${p.fqdn || p.name}:`,
				`  Name: ${p.name}`,
				`  Overlay IP: ${p.overlayIp}`,
				`  Public key: ${p.wgPublicKey}`,
				`  Status: ${cap(p.connectionState)}${p.reason ? ` (${p.reason})` : ""}`,
				`  Peer online in management: ${p.peerOnline ? "yes" : "no"}`,
				`  Connection type: ${p.pathType === "p2p" ? "P2P" : p.pathType === "relayed" ? "Relayed" : "-"}`,
				`  Relay: ${p.relayUrl ? `${p.relayUrl}${p.pathType === "relayed" ? " (in use)" : " (fallback)"}` : "-"}`,
				`  Local endpoint: ${p.localEndpoint || "-"}${p.localCandidateType ? ` (${p.localCandidateType})` : ""}`,
				`  Remote endpoint: ${p.remoteEndpoint || "-"}${p.remoteCandidateType ? ` (${p.remoteCandidateType})` : ""}`,
				`  Last WireGuard handshake: ${ago(p.lastHandshakeUnixMs, now)}`,
				`  Transfer: ${bytes(p.bytesReceived)} received, ${bytes(p.bytesSent)} sent`,
				`  Latency: ${p.latencyMs > 0 ? `${p.latencyMs.toFixed(p.latencyMs < 10 ? 2 : 1)} ms` : "-"}`,
				"",
			);
		}
	}
	lines.push(
		`Daemon version: ${s.agentVersion}`,
		`State: ${cap(s.state)}`,
		`Management: ${conn(s.management)}`,
		`Signal: ${conn(s.signal)}`,
		`Relay: ${conn(s.relay)}`,
		`FQDN: ${s.fqdn || "-"}`,
		`Overlay IP: ${s.overlayAddress || "-"}`,
		`Interface type: ${s.interfaceType ? `${cap(s.interfaceType)} (${s.interfaceName}, port ${s.wireguardPort})` : "-"}`,
		`Public key: ${s.wgPublicKey}`,
		`Peers count: ${s.peersConnected}/${s.peersTotal} Connected`,
		`Firewall: ${s.firewall ? cap(s.firewall) : "-"}`,
		`Serving routes: ${servedRoutesText(s)}`,
	);
	return lines.join("\n");
}

function cap(s: string): string {
	return s ? s[0]!.toUpperCase() + s.slice(1) : s;
}

/** "-", or each served route: "198.18.10.0/24 (masquerade, filtered: 2 rules)". */
function servedRoutesText(s: DaemonStatus): string {
	const routes = s.servedRoutes ?? [];
	if (routes.length === 0) return "-";
	return routes
		.map((r) =>
			r.error
				? `${r.network || r.routeId} (not forwarded: ${r.error})`
				: `${r.network} (${[r.masquerade ? "masquerade" : "no masquerade", r.filtered ? `filtered: ${r.ruleCount} rules` : `open to ${r.ruleCount} sources`].join(", ")})`,
		)
		.join(", ");
}
