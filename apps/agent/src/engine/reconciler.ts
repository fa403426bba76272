import type { PortRewriter } from "../netfilter/port-rewrite.js";
import type { WireGuardDevice } from "../wireguard/device.js";
import type { DesiredPeer } from "../wireguard/plan.js";
import type { DirectPath, PeerState } from "./peer-state.js";
import { endpointText } from "./status.js";

/** WireGuard keepalive on direct paths: below the 30 s a NAT keeps an idle UDP mapping. */
export const PERSISTENT_KEEPALIVE_S = 25;

/** What the reconciler reads of a peer. */
export type ReconcilePeer = Pick<
	PeerState,
	"key" | "remote" | "path" | "keepalive" | "wireguardSessionStale" | "handshakeRetryDue"
>;

/** Handshake retries after a new endpoint, and the time between them. */
export const HANDSHAKE_RETRIES = 3;
export const HANDSHAKE_RETRY_MS = 1_000;

/**
 * For the side that sends the first handshake (the controlling one), after
 * its peer got a new endpoint (relay bridge or direct path). WireGuard's
 * first attempt gets lost when the peer does not have us yet, or when both
 * sides initiate at once (both add each other at about the same moment; each
 * answers the other's initiation, which voids its own, so neither completes),
 * and WireGuard then waits 5 s before the next. So: one pass now and then one
 * every second, three times, that replaces the peer if no handshake has
 * completed, which sends a new initiation at once; the other side only
 * answers it. Once a handshake completed, those passes change nothing.
 * Arming again restarts the count.
 */
export function armHandshakeRetries(
	state: Pick<PeerState, "timers" | "handshakeRetryDue">,
	request: () => void,
	left = HANDSHAKE_RETRIES,
	now = true,
): void {
	if (now) {
		state.handshakeRetryDue = true;
		request();
	}
	state.timers.set("handshake-retry", HANDSHAKE_RETRY_MS, () => {
		state.handshakeRetryDue = true;
		request();
		if (left > 1) armHandshakeRetries(state, request, left - 1, false);
	});
}

/**
 * The WireGuard peer set the engine wants, sans-IO. A peer joins WireGuard
 * only with somewhere to send: without an endpoint a packet makes
 * wireguard-go fail a handshake and hold off the next one for 5 s, which
 * delayed the first ping after `up` by that much. Its endpoint is direct
 * when ICE found a path, else the relay bridge. Returns the direct paths
 * whose endpoint this pass gives to WireGuard (to be marked applied once it
 * succeeded); notes `lastDirectEndpoint` on the others. A peer whose
 * WireGuard session is stale (it restarted) gets its session replaced; one
 * that is left out is removed from WireGuard, which drops the session too:
 * both are in `sessionsReplaced`, marked fresh when the pass starts (again stale if it fails).
 * A peer with a handshake retry due (`retriesDone`, cleared likewise)
 * is replaced if no handshake has completed with it yet.
 */
export function desiredPeers(
	peers: Iterable<ReconcilePeer>,
	wgEndpointOf: (key: string) => string | undefined,
	relayEndpointOf: (key: string) => string | undefined,
	/** Networks a routing peer carries for us, added to its allowed IPs (engine/client-routes.ts). */
	extraAllowedIpsOf: (key: string) => readonly string[] = () => [],
): {
	desired: DesiredPeer[];
	endpointsSet: DirectPath[];
	sessionsReplaced: ReconcilePeer[];
	retriesDone: ReconcilePeer[];
} {
	const endpointsSet: DirectPath[] = [];
	const desired: DesiredPeer[] = [];
	const sessionsReplaced: ReconcilePeer[] = [];
	const retriesDone: ReconcilePeer[] = [];
	for (const p of peers) {
		if (p.wireguardSessionStale) sessionsReplaced.push(p);
		const relayEndpoint = relayEndpointOf(p.key);
		if (p.path === undefined && relayEndpoint === undefined) continue;
		if (p.handshakeRetryDue) retriesDone.push(p);
		desired.push({
			...(p.wireguardSessionStale
				? { replaceSession: true }
				: p.handshakeRetryDue
					? { replaceSession: "if-no-handshake" as const }
					: {}),
			publicKey: p.remote.wgPublicKey,
			allowedIps: [...p.remote.allowedIps, ...extraAllowedIpsOf(p.key)],
			endpoint: p.path
				? directEndpoint(p.path, wgEndpointOf(p.key), relayEndpoint, endpointsSet)
				: relayEndpoint,
			persistentKeepalive: p.path
				? p.keepalive
					? PERSISTENT_KEEPALIVE_S
					: undefined
				: PERSISTENT_KEEPALIVE_S,
		});
	}
	return { desired, endpointsSet, sessionsReplaced, retriesDone };
}

/**
 * WireGuard's endpoint for a direct path: ICE's remote address the first
 * time (noted in `applied`), then undefined, which keeps whatever WireGuard
 * has roamed to since — unless it roamed to the relay bridge (packets the
 * peer still sent through the relay while it switched): then back to the
 * last direct address it used.
 */
function directEndpoint(
	path: DirectPath,
	wgEndpoint: string | undefined,
	relayEndpoint: string | undefined,
	applied: DirectPath[],
): string | undefined {
	const onRelay = wgEndpoint !== undefined && wgEndpoint === relayEndpoint;
	if (path.endpointApplied && !onRelay) {
		if (wgEndpoint) path.lastDirectEndpoint = wgEndpoint;
		return undefined;
	}
	applied.push(path);
	return path.lastDirectEndpoint ?? endpointText(path.remote);
}

export interface ReconcilerOptions {
	device: Pick<WireGuardDevice, "applyPeers">;
	portRewriter: Pick<PortRewriter, "set" | "remove" | "apply">;
	/** The peers of the map, as they are now; undefined before the first map (nothing to do). */
	peers(): Iterable<ReconcilePeer> | undefined;
	/** Where WireGuard sends to the peer, from its last dump. */
	wgEndpointOf(key: string): string | undefined;
	relayEndpointOf(key: string): string | undefined;
	/** The routed networks a peer carries for us (none when absent). */
	extraAllowedIpsOf?(key: string): readonly string[];
	logError(what: string, err: unknown): void;
}

/**
 * Turns the engine's wanted state into wireguard/ and netfilter/ calls: the
 * WireGuard peer set (endpoints, keepalives) and the port rewrite that lets
 * WireGuard's packets leave from each direct path's ICE port. Passes are
 * serialised; bursts of requests collapse into one pass.
 */
export class Reconciler {
	private queued = false;
	private running: Promise<void> = Promise.resolve();
	private stopped = false;

	constructor(private readonly options: ReconcilerOptions) {}

	/** Asks for a WireGuard pass (soon, after the one running). */
	request(): void {
		if (this.queued || this.stopped) return;
		this.queued = true;
		this.running = this.running.then(async () => {
			this.queued = false;
			const peers = this.options.peers();
			if (this.stopped || !peers) return;
			try {
				const { desired, endpointsSet, sessionsReplaced, retriesDone } = desiredPeers(
					peers,
					this.options.wgEndpointOf,
					this.options.relayEndpointOf,
					this.options.extraAllowedIpsOf,
				);
				// Taken before the pass, not after it: a restart or a retry noted while
				// it runs must survive for the pass it asked for. Given back if it fails.
				for (const peer of sessionsReplaced) peer.wireguardSessionStale = false;
				for (const peer of retriesDone) peer.handshakeRetryDue = false;
				try {
					await this.options.device.applyPeers(desired);
				} catch (err) {
					for (const peer of sessionsReplaced) peer.wireguardSessionStale = true;
					for (const peer of retriesDone) peer.handshakeRetryDue = true;
					throw err;
				}
				for (const path of endpointsSet) path.endpointApplied = true;
			} catch (err) {
				this.options.logError("wireguard reconcile", err);
			}
		});
	}

	/** A direct path is up: rewrite WireGuard's packets to leave from its ICE port, then reconcile. */
	routeDirect(peer: Pick<PeerState, "key">, path: DirectPath): void {
		this.options.portRewriter.set(peer.key, {
			peerKey: peer.key,
			localPort: path.socketPort,
			remoteAddress: path.remote.address,
			remotePort: path.remote.port,
		});
		void this.options.portRewriter
			.apply()
			.then(() => this.request())
			.catch((err) => this.options.logError("port rewrite", err));
	}

	/** The direct path is gone (or the peer left): drop its rewrite; `reconcile` also asks for a pass. */
	unrouteDirect(peer: Pick<PeerState, "key">, reconcile: boolean): void {
		this.options.portRewriter.remove(peer.key);
		void this.options.portRewriter
			.apply()
			.catch((err) => this.options.logError("port rewrite", err));
		if (reconcile) this.request();
	}

	/** Resolves once the queued passes are done. */
	settled(): Promise<void> {
		return this.running;
	}

	async stop(): Promise<void> {
		this.stopped = true;
		await this.running;
	}
}
