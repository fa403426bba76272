/**
 * Minimal diffs between what the interface has and what it should have. Pure: the device turns
 * the changes into `wg set` / `ip` commands. A peer whose configuration already matches gets no
 * change at all, so its session, handshake and counters are never disturbed.
 */

import { isValidKey } from "@starling/crypto";
import { canonicalEndpoint, canonicalInterfaceAddress, canonicalPrefix } from "./cidr.js";
import type { CurrentRoute } from "./ip-state.js";
import type { PeerDump } from "./wg-dump.js";

export interface DesiredPeer {
	publicKey: string;
	allowedIps: string[];
	/** undefined: keep whatever endpoint WireGuard has (configured before or learned from packets). */
	endpoint?: string;
	/** Seconds; undefined or 0 means off. */
	persistentKeepalive?: number;
	/**
	 * Drop the peer's WireGuard session: an existing peer is removed and added again in
	 * the same change, which clears its keys and handshake rate limit (its next packet
	 * starts a handshake at once). "if-no-handshake": only while no handshake has ever
	 * completed with it (an attempt that got lost holds the next one off for 5 s).
	 * For a peer that is not there yet it changes nothing.
	 */
	replaceSession?: boolean | "if-no-handshake";
}

export type PeerChange =
	| { kind: "remove"; publicKey: string }
	| {
			kind: "add";
			publicKey: string;
			allowedIps: string[];
			endpoint?: string;
			/** Absent means off (WireGuard's default for a new peer). */
			persistentKeepalive?: number;
	  }
	| {
			kind: "update";
			publicKey: string;
			/** Present only when the set differs; replaces the whole set. */
			allowedIps?: string[];
			/** Present only when it differs. */
			endpoint?: string;
			/** Present only when it differs; 0 turns keepalive off. */
			persistentKeepalive?: number;
	  };

export class InvalidPeerConfigError extends Error {
	override name = "InvalidPeerConfigError";
}

interface NormalizedPeer {
	allowedIps: string[];
	endpoint: string | undefined;
	/** 0 = off. */
	persistentKeepalive: number;
	replaceSession?: boolean | "if-no-handshake";
	/** Current peers only: 0 until a handshake completed. */
	latestHandshakeUnixSeconds?: number;
}

function normalizedPrefixes(prefixes: readonly string[]): string[] {
	return [...new Set(prefixes.map(canonicalPrefix))].sort();
}

function sameList(left: readonly string[], right: readonly string[]): boolean {
	return left.length === right.length && left.every((item, index) => item === right[index]);
}

function normalizeDesired(desired: readonly DesiredPeer[]): Map<string, NormalizedPeer> {
	const peers = new Map<string, NormalizedPeer>();
	const ownerOfPrefix = new Map<string, string>();
	for (const peer of desired) {
		const { publicKey } = peer;
		if (!isValidKey(publicKey)) {
			throw new InvalidPeerConfigError(
				`peer public key ${JSON.stringify(publicKey)} is not a WireGuard key`,
			);
		}
		if (peers.has(publicKey)) throw new InvalidPeerConfigError(`peer ${publicKey} is listed twice`);
		const keepalive = peer.persistentKeepalive ?? 0;
		if (!Number.isInteger(keepalive) || keepalive < 0 || keepalive > 65535) {
			throw new InvalidPeerConfigError(
				`peer ${publicKey}: persistent keepalive ${keepalive} must be 0..65535 seconds`,
			);
		}
		let normalized: NormalizedPeer;
		try {
			normalized = {
				allowedIps: normalizedPrefixes(peer.allowedIps),
				endpoint: peer.endpoint === undefined ? undefined : canonicalEndpoint(peer.endpoint),
				persistentKeepalive: keepalive,
				replaceSession: peer.replaceSession,
			};
		} catch (error) {
			throw new InvalidPeerConfigError(`peer ${publicKey}: ${(error as Error).message}`);
		}
		// WireGuard maps each prefix to one peer; two owners would flip on every apply.
		for (const prefix of normalized.allowedIps) {
			const owner = ownerOfPrefix.get(prefix);
			if (owner !== undefined) {
				throw new InvalidPeerConfigError(
					`allowed IP ${prefix} is given to both peer ${owner} and peer ${publicKey}`,
				);
			}
			ownerOfPrefix.set(prefix, publicKey);
		}
		peers.set(publicKey, normalized);
	}
	return peers;
}

/** Canonical spelling, or the text as it is: what WireGuard reports must never stop a plan. */
function canonicalOrAsIs(text: string, canonical: (text: string) => string): string {
	try {
		return canonical(text);
	} catch {
		// e.g. a link-local endpoint with a zone ("[fe80::1%eth0]:51820"), which we never set.
		return text;
	}
}

function normalizeCurrent(peer: PeerDump): NormalizedPeer {
	return {
		allowedIps: [
			...new Set(peer.allowedIps.map((prefix) => canonicalOrAsIs(prefix, canonicalPrefix))),
		].sort(),
		endpoint:
			peer.endpoint === undefined ? undefined : canonicalOrAsIs(peer.endpoint, canonicalEndpoint),
		persistentKeepalive: peer.persistentKeepalive ?? 0,
		latestHandshakeUnixSeconds: peer.latestHandshakeUnixSeconds,
	};
}

/**
 * Changes ordered removals, updates, adds: removing first frees allowed IPs that a changed or
 * new peer takes over, and a peer whose session is replaced is removed before it is added. Throws InvalidPeerConfigError (before anything is planned) when a desired
 * peer is malformed, so a bad entry never leaves the interface half configured.
 */
export function planPeerChanges(
	current: readonly PeerDump[],
	desired: readonly DesiredPeer[],
): PeerChange[] {
	const wanted = normalizeDesired(desired);
	const removals: PeerChange[] = [];
	const updates: PeerChange[] = [];
	const additions: PeerChange[] = [];
	const existing = new Map<string, NormalizedPeer>();
	for (const peer of current) {
		existing.set(peer.publicKey, normalizeCurrent(peer));
		if (!wanted.has(peer.publicKey)) removals.push({ kind: "remove", publicKey: peer.publicKey });
	}
	for (const [publicKey, target] of wanted) {
		const now = existing.get(publicKey);
		const replace =
			now !== undefined &&
			(target.replaceSession === true ||
				(target.replaceSession === "if-no-handshake" && !now.latestHandshakeUnixSeconds));
		if (replace) removals.push({ kind: "remove", publicKey });
		if (now === undefined || replace) {
			// A replaced peer has no endpoint of its own any more: keep the one it had.
			const endpoint = target.endpoint ?? now?.endpoint;
			additions.push({
				kind: "add",
				publicKey,
				allowedIps: target.allowedIps,
				...(endpoint === undefined ? {} : { endpoint }),
				...(target.persistentKeepalive === 0
					? {}
					: { persistentKeepalive: target.persistentKeepalive }),
			});
			continue;
		}
		const update: PeerChange & { kind: "update" } = { kind: "update", publicKey };
		if (!sameList(now.allowedIps, target.allowedIps)) update.allowedIps = target.allowedIps;
		if (target.endpoint !== undefined && target.endpoint !== now.endpoint) {
			update.endpoint = target.endpoint;
		}
		if (target.persistentKeepalive !== now.persistentKeepalive) {
			update.persistentKeepalive = target.persistentKeepalive;
		}
		const differs =
			update.allowedIps !== undefined ||
			update.endpoint !== undefined ||
			update.persistentKeepalive !== undefined;
		if (differs) updates.push(update);
	}
	return [...removals, ...updates, ...additions];
}

export interface AddressChange {
	kind: "add" | "remove";
	/** Canonical "address/prefix". */
	cidr: string;
}

/**
 * Removals come first: deleting an IPv4 primary address also deletes the secondaries of its
 * subnet (unless promote_secondaries is set), so a freshly added address could vanish with it.
 */
export function planAddressChanges(
	currentCidrs: readonly string[],
	desiredCidrs: readonly string[],
): AddressChange[] {
	const current = new Set(currentCidrs.map(canonicalInterfaceAddress));
	const desired = new Set(desiredCidrs.map(canonicalInterfaceAddress));
	const changes: AddressChange[] = [];
	for (const cidr of current) if (!desired.has(cidr)) changes.push({ kind: "remove", cidr });
	for (const cidr of desired) if (!current.has(cidr)) changes.push({ kind: "add", cidr });
	return changes;
}

export type RouteChange =
	| {
			kind: "add";
			/** Canonical prefix. */
			destination: string;
	  }
	| {
			kind: "remove";
			destination: string;
			/** Named in the delete so that only this route goes, not another one to the same place. */
			protocol: string | undefined;
	  };

/**
 * Routes through the interface. A route the kernel made for an address (protocol "kernel")
 * satisfies a desired route with the same destination and is never removed: it goes away with
 * its address. Adds come first so that replacing a route by others leaves no gap.
 */
export function planRouteChanges(
	currentRoutes: readonly CurrentRoute[],
	desiredRoutes: readonly string[],
): RouteChange[] {
	const desired = new Set(desiredRoutes.map(canonicalPrefix));
	const present = new Set(currentRoutes.map((route) => canonicalPrefix(route.destination)));
	const changes: RouteChange[] = [];
	for (const destination of desired) {
		if (!present.has(destination)) changes.push({ kind: "add", destination });
	}
	for (const route of currentRoutes) {
		const destination = canonicalPrefix(route.destination);
		if (route.protocol === "kernel" || desired.has(destination)) continue;
		changes.push({ kind: "remove", destination, protocol: route.protocol });
	}
	return changes;
}
