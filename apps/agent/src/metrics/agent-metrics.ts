import type { PeerStatus } from "@starling/proto";
import { Gauge, Registry } from "prom-client";

/** What the metrics read at each scrape: the daemon's state and its peers (no pings). */
export interface MetricsSource {
	readonly state: "down" | "connecting" | "up";
	peers(): Promise<PeerStatus[]>;
}

const PATH_TYPES = ["p2p", "relayed", "none"] as const;

/**
 * The agent's Prometheus registry: gauges filled from the source at each
 * scrape (nothing is kept between scrapes, so a peer that left the map
 * disappears from the output). Labels: `peer` (its name) and `public_key`.
 */
export function agentMetrics(source: MetricsSource): Registry {
	const registry = new Registry();
	let scrape: Promise<PeerStatus[]> | undefined;
	// One read of the peers per scrape, shared by every gauge's collect().
	const peers = () => {
		scrape ??= source.peers().finally(() => {
			setImmediate(() => {
				scrape = undefined;
			});
		});
		return scrape;
	};
	const peerLabels = ["peer", "public_key"] as const;
	const perPeer = (
		name: string,
		help: string,
		value: (p: PeerStatus) => number | undefined,
	): Gauge<(typeof peerLabels)[number]> =>
		new Gauge({
			name,
			help,
			labelNames: peerLabels,
			registers: [registry],
			async collect() {
				this.reset();
				for (const p of await peers()) {
					const v = value(p);
					if (v !== undefined) this.set({ peer: p.name, public_key: p.wgPublicKey }, v);
				}
			},
		});

	new Gauge({
		name: "starling_agent_up",
		help: "1 while the interface is up, 0 while down or connecting",
		registers: [registry],
		collect() {
			this.set(source.state === "up" ? 1 : 0);
		},
	});
	new Gauge({
		name: "starling_peer_path",
		help: "1 for the path a peer's traffic takes now (p2p, relayed, or none while not connected)",
		labelNames: [...peerLabels, "path_type"],
		registers: [registry],
		async collect() {
			this.reset();
			for (const p of await peers()) {
				const current = p.pathType === "" ? "none" : p.pathType;
				for (const type of PATH_TYPES)
					this.set(
						{ peer: p.name, public_key: p.wgPublicKey, path_type: type },
						type === current ? 1 : 0,
					);
			}
		},
	});
	perPeer(
		"starling_peer_received_bytes",
		"bytes WireGuard received from the peer since the interface came up",
		(p) => p.bytesReceived,
	);
	perPeer(
		"starling_peer_sent_bytes",
		"bytes WireGuard sent to the peer since the interface came up",
		(p) => p.bytesSent,
	);
	perPeer(
		"starling_peer_handshake_age_seconds",
		"seconds since the last WireGuard handshake with the peer (absent when there was none)",
		(p) =>
			p.lastHandshakeUnixMs > 0
				? Math.max(0, (Date.now() - p.lastHandshakeUnixMs) / 1000)
				: undefined,
	);
	perPeer(
		"starling_peer_ice_attempts",
		"ICE sessions started for the peer since it joined the map",
		(p) => p.iceAttempts,
	);
	perPeer(
		"starling_peer_ice_successes",
		"ICE sessions that gave a direct path to the peer",
		(p) => p.iceSuccesses,
	);
	perPeer(
		"starling_peer_ice_failures",
		"ICE sessions for the peer closed without a direct path",
		(p) => p.iceFailures,
	);
	return registry;
}
