import type { NetcheckReport } from "@starling/proto";

/**
 * The stable JSON form of `starling netcheck --json` (documented in
 * apps/agent/README.md): snake_case, only ever added to; tri-state facts
 * are true, false or null (not known).
 */
export function netcheckToJson(r: NetcheckReport): Record<string, unknown> {
	return {
		source: r.source,
		udp_reachable: r.udpReachable ?? null,
		mapped_address: r.mappedAddress,
		local_port: r.localPort,
		behind_nat: r.behindNat ?? null,
		mapping: r.mapping,
		mapping_detail: r.mappingDetail,
		port_preserved: r.portPreserved ?? null,
		stun: r.stun.map((s) => ({
			server: s.server,
			address: s.address,
			origin: s.origin,
			answered: s.answered,
			latency_ms: s.latencyMs,
			mapped_address: s.mappedAddress,
			error: s.error,
		})),
		relays: r.relays.map((x) => ({
			url: x.url,
			reachable: x.reachable,
			connect_ms: x.connectMs,
			latency_ms: x.latencyMs,
			error: x.error,
			admitted: x.admitted ?? null,
			admission_error: x.admissionError,
		})),
		peers: r.peers.map((p) => ({
			name: p.name,
			fqdn: p.fqdn,
			overlay_ip: p.overlayIp,
			connection_state: p.connectionState,
			path_type: p.pathType,
			reason: p.reason,
		})),
		duration_ms: r.durationMs,
	};
}

const yesNo = (v: boolean | undefined) => (v === undefined ? "unknown" : v ? "yes" : "no");
const ms = (v: number) => `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`;

/** The human-readable `starling netcheck`. */
export function netcheckToText(r: NetcheckReport): string {
	const lines: string[] = [];
	lines.push(
		`Source: ${r.source === "daemon" ? "daemon (STUN servers and relays from the network map)" : "this command (servers from flags)"}`,
		`UDP: ${
			r.udpReachable === undefined
				? "unknown (no STUN server to ask)"
				: r.udpReachable
					? "reachable (a STUN server answered)"
					: "not reachable (no STUN server answered)"
		}`,
		`Mapped address: ${r.mappedAddress || "-"}${r.localPort ? ` (from local port ${r.localPort})` : ""}`,
		`Behind NAT: ${yesNo(r.behindNat)}`,
		`Mapping: ${r.mapping}${r.mappingDetail ? ` (${r.mappingDetail})` : ""}`,
		`Port preserved: ${yesNo(r.portPreserved)}`,
	);
	lines.push("STUN:");
	if (r.stun.length === 0) lines.push("  (none)");
	for (const s of r.stun) {
		const where = s.address && !s.server.endsWith(s.address) ? ` (${s.address})` : "";
		lines.push(
			`  ${s.server}${where}: ${s.answered ? `saw ${s.mappedAddress}, ${ms(s.latencyMs)}` : s.error || "no answer"}`,
		);
	}
	lines.push("Relays:");
	if (r.relays.length === 0) lines.push("  (none)");
	for (const x of r.relays) {
		const reach = x.reachable
			? `reachable, connect ${ms(x.connectMs)}${x.latencyMs > 0 ? `, round trip ${ms(x.latencyMs)}` : ""}`
			: `not reachable${x.error ? `: ${x.error}` : ""}`;
		const admitted =
			x.admitted === undefined
				? ""
				: x.admitted
					? "; admitted with this peer's token"
					: `; not admitted${x.admissionError ? `: ${x.admissionError}` : ""}`;
		lines.push(`  ${x.url}: ${reach}${admitted}`);
	}
	if (r.source === "daemon") {
		lines.push("Peers without a direct path:");
		if (r.peers.length === 0) lines.push("  (none)");
		for (const p of r.peers) {
			const state = p.pathType === "relayed" ? "relayed" : p.connectionState;
			// The engine's reasons for relayed peers start with "relayed: " already.
			const reason = p.reason.replace(/^relayed: /, "");
			lines.push(`  ${p.fqdn || p.name} (${p.overlayIp}): ${state}${reason ? `: ${reason}` : ""}`);
		}
	}
	return lines.join("\n");
}
