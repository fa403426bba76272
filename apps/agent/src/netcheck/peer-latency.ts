/**
 * Peer latency for `starling status --detail`: one ICMP echo to the peer's
 * overlay address, so it measures the real round trip through WireGuard on
 * whatever path the peer is on (direct or relayed). Measured only when
 * someone asks for status, at most once per `ttlMs` per peer, in parallel;
 * a status call waits at most `waitMs` for fresh figures and otherwise
 * shows the previous ones. A peer whose firewall drops ICMP shows none.
 */
import { isIPv4 } from "node:net";
import type { PeerStatus } from "@starling/proto";
import type { Runner } from "../system/exec.js";

export interface PeerLatencyOptions {
	ttlMs?: number;
	waitMs?: number;
	now?: () => number;
}

/** The round trip in a `ping` output (iputils or busybox), in ms. */
export function parsePingRtt(output: string): number | undefined {
	const reply = /time[=<]([\d.]+) ?ms/.exec(output);
	if (reply) return Number(reply[1]);
	const summary = /= [\d.]+\/([\d.]+)\//.exec(output);
	return summary ? Number(summary[1]) : undefined;
}

export class PeerLatency {
	private readonly cache = new Map<string, { at: number; ms: number | undefined }>();
	private inflight: Promise<unknown> | undefined;
	private readonly ttlMs: number;
	private readonly waitMs: number;
	private readonly now: () => number;

	constructor(
		private readonly runner: Runner,
		options: PeerLatencyOptions = {},
	) {
		this.ttlMs = options.ttlMs ?? 10_000;
		this.waitMs = options.waitMs ?? 1_200;
		this.now = options.now ?? Date.now;
	}

	/** Fills latencyMs of connected peers (keeps the engine's figure where there is no echo). */
	async fill(peers: PeerStatus[]): Promise<PeerStatus[]> {
		const ips = peers
			.filter((p) => p.connectionState === "connected" && isIPv4(p.overlayIp))
			.map((p) => p.overlayIp);
		const wanted = new Set(ips);
		for (const ip of this.cache.keys()) if (!wanted.has(ip)) this.cache.delete(ip);
		const now = this.now();
		const stale = ips.filter((ip) => {
			const c = this.cache.get(ip);
			return !c || now - c.at > this.ttlMs;
		});
		if (stale.length > 0 && !this.inflight) {
			this.inflight = Promise.all(stale.map((ip) => this.measure(ip))).finally(() => {
				this.inflight = undefined;
			});
		}
		if (this.inflight) {
			let timer: NodeJS.Timeout | undefined;
			await Promise.race([
				this.inflight,
				new Promise((r) => {
					timer = setTimeout(r, this.waitMs);
				}),
			]);
			clearTimeout(timer);
		}
		return peers.map((p) => {
			const measured = this.cache.get(p.overlayIp)?.ms;
			return p.connectionState === "connected" && measured !== undefined
				? { ...p, latencyMs: measured }
				: p;
		});
	}

	private async measure(ip: string): Promise<void> {
		try {
			const r = await this.runner("ping", ["-n", "-c", "1", "-W", "1", ip], {
				allowFailure: true,
				timeoutMs: 3_000,
			});
			this.cache.set(ip, {
				at: this.now(),
				ms: r.exitCode === 0 ? parsePingRtt(r.stdout) : undefined,
			});
		} catch {
			this.cache.set(ip, { at: this.now(), ms: undefined });
		}
	}
}
