import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalEndpoint, canonicalInterfaceAddress, canonicalPrefix } from "./cidr.js";
import type { CurrentRoute } from "./ip-state.js";
import {
	type DesiredPeer,
	InvalidPeerConfigError,
	type PeerChange,
	planAddressChanges,
	planPeerChanges,
	planRouteChanges,
} from "./plan.js";
import type { PeerDump } from "./wg-dump.js";

const KEYS = [
	"ZRDiqr53ze2tEOvj/2tibMrfD4dZSHLCiisYRM05BAI=",
	"gUYBYl29siLb4UJ7/4HLGg24ex8BRAqlpsrFLQIoywo=",
	"SVUJF3TDgBtyPSzD8SYBxl5VoT1eqA2Kpo9l8MdYpG0=",
	"eV3KZyfIq8Tqx/2Nr0Pri/0V3r3iXuUwre/77u8qQ0I=",
	"MFikR4OnprxRx0YsMrjF+HKxauMLW/0QWzx5ldrXsXQ=",
	"OPOv8cVXA+swwyLLfYMfPFSXmCJIy2aWdNRif45493I=",
] as const;
const [KEY_A, KEY_B, KEY_C] = KEYS;

/** The same prefixes in the spellings a caller might use; wg prints the canonical one. */
const PREFIX_SPELLINGS: ReadonlyArray<readonly string[]> = [
	["100.64.0.1/32", "100.64.0.1"],
	["100.64.0.2/32", "100.64.0.2"],
	["100.64.0.3/32"],
	["10.1.0.0/16", "10.1.7.9/16"],
	["10.0.0.0/8"],
	["fd00::/64", "fd00::5/64", "FD00:0::/64"],
	["fd00:0:0:1::7/128", "fd00::1:0:0:7"],
];
const ENDPOINT_SPELLINGS: ReadonlyArray<readonly string[]> = [
	["198.18.0.2:51820"],
	["198.18.0.3:51820"],
	["198.18.1.2:40000"],
	["[fd00::1]:51820", "[fd00:0:0::1]:51820"],
	["[::1]:51820", "[0::1]:51820"],
];

function peerDump(publicKey: string, fields: Partial<PeerDump> = {}): PeerDump {
	return {
		publicKey,
		endpoint: undefined,
		allowedIps: [],
		latestHandshakeUnixSeconds: 0,
		rxBytes: 0,
		txBytes: 0,
		persistentKeepalive: undefined,
		...fields,
	};
}

/**
 * What `wg set` does with the changes: allowed-ips replaces the peer's set, and a prefix given
 * to one peer is taken away from any other (WireGuard maps each prefix to one peer).
 */
function applyPeerChanges(
	current: readonly PeerDump[],
	changes: readonly PeerChange[],
): PeerDump[] {
	const peers = new Map(
		current.map((peer) => [peer.publicKey, { ...peer, allowedIps: [...peer.allowedIps] }]),
	);
	const claim = (owner: string, prefixes: readonly string[]) => {
		for (const peer of peers.values()) {
			if (peer.publicKey !== owner) {
				peer.allowedIps = peer.allowedIps.filter((prefix) => !prefixes.includes(prefix));
			}
		}
	};
	for (const change of changes) {
		if (change.kind === "remove") {
			peers.delete(change.publicKey);
		} else if (change.kind === "add") {
			expect(peers.has(change.publicKey)).toBe(false);
			peers.set(
				change.publicKey,
				peerDump(change.publicKey, {
					allowedIps: [...change.allowedIps],
					endpoint: change.endpoint,
					persistentKeepalive: change.persistentKeepalive || undefined,
				}),
			);
			claim(change.publicKey, change.allowedIps);
		} else {
			const peer = peers.get(change.publicKey);
			if (!peer) throw new Error(`update of a missing peer ${change.publicKey}`);
			if (change.allowedIps !== undefined) {
				peer.allowedIps = [...change.allowedIps];
				claim(change.publicKey, change.allowedIps);
			}
			if (change.endpoint !== undefined) peer.endpoint = change.endpoint;
			if (change.persistentKeepalive !== undefined) {
				peer.persistentKeepalive = change.persistentKeepalive || undefined;
			}
		}
	}
	return [...peers.values()];
}

function sortedPrefixes(prefixes: readonly string[]): string[] {
	return [...new Set(prefixes.map(canonicalPrefix))].sort();
}

function peerSatisfies(peer: PeerDump, wanted: DesiredPeer): boolean {
	return (
		JSON.stringify(sortedPrefixes(peer.allowedIps)) ===
			JSON.stringify(sortedPrefixes(wanted.allowedIps)) &&
		(wanted.endpoint === undefined || peer.endpoint === canonicalEndpoint(wanted.endpoint)) &&
		(peer.persistentKeepalive ?? 0) === (wanted.persistentKeepalive ?? 0)
	);
}

function stateSatisfies(state: readonly PeerDump[], desired: readonly DesiredPeer[]): boolean {
	if (state.length !== desired.length) return false;
	return desired.every((wanted) => {
		const peer = state.find((candidate) => candidate.publicKey === wanted.publicKey);
		return peer !== undefined && peerSatisfies(peer, wanted);
	});
}

const keepaliveArbitrary = fc.constantFrom(undefined, 0, 25, 15);

/** Peers with disjoint allowed IPs, as WireGuard itself guarantees and the planner requires. */
function peersArbitrary<T>(
	makePeer: (publicKey: string, prefixes: string[], pick: number) => fc.Arbitrary<T>,
): fc.Arbitrary<T[]> {
	return fc
		.tuple(
			fc.subarray([...KEYS]),
			fc.array(fc.integer({ min: -1, max: KEYS.length - 1 }), {
				minLength: PREFIX_SPELLINGS.length,
				maxLength: PREFIX_SPELLINGS.length,
			}),
			fc.nat(),
		)
		.chain(([keys, owners, pick]) =>
			fc.tuple(
				...keys.map((key, keyIndex) => {
					const prefixes = PREFIX_SPELLINGS.flatMap((spellings, prefixIndex) => {
						if (owners[prefixIndex] !== keyIndex) return [];
						return [spellings[(pick + prefixIndex) % spellings.length] ?? ""];
					});
					return makePeer(key, prefixes, pick + keyIndex);
				}),
			),
		);
}

const currentArbitrary: fc.Arbitrary<PeerDump[]> = peersArbitrary((publicKey, prefixes) =>
	fc
		.record({
			endpoint: fc.option(
				fc.constantFrom(...ENDPOINT_SPELLINGS.map((spellings) => spellings[0] ?? "")),
				{
					nil: undefined,
				},
			),
			persistentKeepalive: fc.constantFrom(undefined, 25, 15),
			latestHandshakeUnixSeconds: fc.nat(),
		})
		.map((fields) => peerDump(publicKey, { ...fields, allowedIps: prefixes.map(canonicalPrefix) })),
);

const desiredArbitrary: fc.Arbitrary<DesiredPeer[]> = peersArbitrary((publicKey, prefixes, pick) =>
	fc
		.record({
			endpoint: fc.option(fc.constantFrom(...ENDPOINT_SPELLINGS), { nil: undefined }),
			persistentKeepalive: keepaliveArbitrary,
		})
		.map(({ endpoint, persistentKeepalive }) => {
			const peer: DesiredPeer = { publicKey, allowedIps: prefixes };
			if (endpoint !== undefined) peer.endpoint = endpoint[pick % endpoint.length] ?? "";
			if (persistentKeepalive !== undefined) peer.persistentKeepalive = persistentKeepalive;
			return peer;
		}),
);

/** Sometimes the desired state is a small edit of the current one, so unchanged peers occur often. */
const currentAndDesiredArbitrary: fc.Arbitrary<[PeerDump[], DesiredPeer[]]> = fc.oneof(
	fc.tuple(currentArbitrary, desiredArbitrary),
	currentArbitrary.chain((current) =>
		fc.tuple(
			fc.constant(current),
			fc.subarray(current).map((kept) =>
				kept.map((peer): DesiredPeer => {
					const wanted: DesiredPeer = {
						publicKey: peer.publicKey,
						allowedIps: [...peer.allowedIps].reverse(),
					};
					if (peer.endpoint !== undefined && peer.latestHandshakeUnixSeconds % 2 === 0) {
						wanted.endpoint = peer.endpoint;
					}
					if (peer.persistentKeepalive !== undefined)
						wanted.persistentKeepalive = peer.persistentKeepalive;
					return wanted;
				}),
			),
		),
	),
);

describe("planPeerChanges properties", () => {
	it("applying the plan yields the desired peers", () => {
		fc.assert(
			fc.property(currentAndDesiredArbitrary, ([current, desired]) => {
				const after = applyPeerChanges(current, planPeerChanges(current, desired));
				expect(stateSatisfies(after, desired)).toBe(true);
			}),
			{ numRuns: 500 },
		);
	});

	it("peers whose configuration already matches get no change at all", () => {
		fc.assert(
			fc.property(currentAndDesiredArbitrary, ([current, desired]) => {
				const changes = planPeerChanges(current, desired);
				for (const wanted of desired) {
					const peer = current.find((candidate) => candidate.publicKey === wanted.publicKey);
					if (peer && peerSatisfies(peer, wanted)) {
						expect(changes.filter((change) => change.publicKey === wanted.publicKey)).toEqual([]);
					}
				}
			}),
			{ numRuns: 500 },
		);
	});

	it("an update names only the fields that differ", () => {
		fc.assert(
			fc.property(currentAndDesiredArbitrary, ([current, desired]) => {
				for (const change of planPeerChanges(current, desired)) {
					if (change.kind !== "update") continue;
					const peer = current.find((candidate) => candidate.publicKey === change.publicKey);
					if (!peer) throw new Error("update of a peer that is not there");
					if (change.allowedIps !== undefined) {
						expect(change.allowedIps).not.toEqual(sortedPrefixes(peer.allowedIps));
					}
					if (change.endpoint !== undefined) expect(change.endpoint).not.toBe(peer.endpoint);
					if (change.persistentKeepalive !== undefined) {
						expect(change.persistentKeepalive).not.toBe(peer.persistentKeepalive ?? 0);
					}
				}
			}),
			{ numRuns: 300 },
		);
	});

	it("planning again after applying yields nothing", () => {
		fc.assert(
			fc.property(currentAndDesiredArbitrary, ([current, desired]) => {
				const after = applyPeerChanges(current, planPeerChanges(current, desired));
				expect(planPeerChanges(after, desired)).toEqual([]);
			}),
			{ numRuns: 500 },
		);
	});
});

describe("planPeerChanges", () => {
	it("leaves an unchanged peer alone while others are added, updated and removed", () => {
		const current = [
			peerDump(KEY_A, {
				allowedIps: ["100.64.0.1/32"],
				endpoint: "198.18.0.2:51820",
				persistentKeepalive: 25,
				latestHandshakeUnixSeconds: 1764389245,
			}),
			peerDump(KEY_B, { allowedIps: ["100.64.0.2/32"], endpoint: "198.18.0.3:51820" }),
			peerDump(KEY_C, { allowedIps: ["100.64.0.3/32"] }),
		];
		const changes = planPeerChanges(current, [
			{
				publicKey: KEY_A,
				allowedIps: ["100.64.0.1"],
				endpoint: "198.18.0.2:51820",
				persistentKeepalive: 25,
			},
			{ publicKey: KEY_B, allowedIps: ["100.64.0.2/32", "10.1.0.0/16"] },
			{
				publicKey: KEYS[3],
				allowedIps: ["100.64.0.4/32"],
				endpoint: "[fd00::1]:51820",
				persistentKeepalive: 0,
			},
		]);
		expect(changes).toEqual([
			{ kind: "remove", publicKey: KEY_C },
			{ kind: "update", publicKey: KEY_B, allowedIps: ["10.1.0.0/16", "100.64.0.2/32"] },
			{
				kind: "add",
				publicKey: KEYS[3],
				allowedIps: ["100.64.0.4/32"],
				endpoint: "[fd00::1]:51820",
			},
		]);
	});

	it("replaces a peer's session by removing and adding it, keeping its endpoint when none is desired", () => {
		const current = [
			peerDump(KEY_A, {
				allowedIps: ["100.64.0.1/32"],
				endpoint: "198.18.9.9:41000",
				persistentKeepalive: 25,
				latestHandshakeUnixSeconds: 1764389245,
			}),
			peerDump(KEY_B, { allowedIps: ["100.64.0.2/32"] }),
		];
		const changes = planPeerChanges(current, [
			{
				publicKey: KEY_A,
				allowedIps: ["100.64.0.1/32"],
				persistentKeepalive: 25,
				replaceSession: true,
			},
			{ publicKey: KEY_B, allowedIps: ["100.64.0.2/32"], endpoint: "198.18.0.3:51820" },
			{ publicKey: KEY_C, allowedIps: ["100.64.0.3/32"], replaceSession: true },
		]);
		expect(changes).toEqual([
			{ kind: "remove", publicKey: KEY_A },
			{ kind: "update", publicKey: KEY_B, endpoint: "198.18.0.3:51820" },
			{
				kind: "add",
				publicKey: KEY_A,
				allowedIps: ["100.64.0.1/32"],
				endpoint: "198.18.9.9:41000",
				persistentKeepalive: 25,
			},
			// Not there yet: a plain add (a new peer has no session to drop).
			{ kind: "add", publicKey: KEY_C, allowedIps: ["100.64.0.3/32"] },
		]);
		const after = applyPeerChanges(current, changes);
		expect(after.find((peer) => peer.publicKey === KEY_A)).toMatchObject({
			endpoint: "198.18.9.9:41000",
			persistentKeepalive: 25,
		});
	});

	it("replaces a session 'if-no-handshake' only while no handshake has completed", () => {
		const never = peerDump(KEY_A, { allowedIps: ["100.64.0.1/32"], endpoint: "198.18.9.9:41000" });
		const had = peerDump(KEY_B, {
			allowedIps: ["100.64.0.2/32"],
			endpoint: "198.18.9.8:41000",
			latestHandshakeUnixSeconds: 1764389245,
		});
		const changes = planPeerChanges(
			[never, had],
			[
				{
					publicKey: KEY_A,
					allowedIps: ["100.64.0.1/32"],
					endpoint: "203.0.113.1:40000",
					persistentKeepalive: 25,
					replaceSession: "if-no-handshake",
				},
				{
					publicKey: KEY_B,
					allowedIps: ["100.64.0.2/32"],
					endpoint: "203.0.113.2:40000",
					replaceSession: "if-no-handshake",
				},
			],
		);
		expect(changes).toEqual([
			{ kind: "remove", publicKey: KEY_A },
			{ kind: "update", publicKey: KEY_B, endpoint: "203.0.113.2:40000" },
			{
				kind: "add",
				publicKey: KEY_A,
				allowedIps: ["100.64.0.1/32"],
				endpoint: "203.0.113.1:40000",
				persistentKeepalive: 25,
			},
		]);
	});

	it("keeps a learned endpoint when none is desired, and turns keepalive off with 0", () => {
		const current = [peerDump(KEY_A, { endpoint: "198.18.9.9:41000", persistentKeepalive: 25 })];
		expect(planPeerChanges(current, [{ publicKey: KEY_A, allowedIps: [] }])).toEqual([
			{ kind: "update", publicKey: KEY_A, persistentKeepalive: 0 },
		]);
		expect(
			planPeerChanges(current, [{ publicKey: KEY_A, allowedIps: [], persistentKeepalive: 25 }]),
		).toEqual([]);
	});

	it("copes with endpoints it could not have set, such as a zoned link-local one", () => {
		const current = [
			peerDump(KEY_A, { endpoint: "[fe80::1%eth0]:51820", allowedIps: ["100.64.0.1/32"] }),
		];
		expect(planPeerChanges(current, [{ publicKey: KEY_A, allowedIps: ["100.64.0.1/32"] }])).toEqual(
			[],
		);
		expect(
			planPeerChanges(current, [
				{ publicKey: KEY_A, allowedIps: ["100.64.0.1/32"], endpoint: "198.18.0.2:51820" },
			]),
		).toEqual([{ kind: "update", publicKey: KEY_A, endpoint: "198.18.0.2:51820" }]);
	});

	it("refuses malformed desired peers before planning anything", () => {
		const plan = (desired: DesiredPeer[]) => () => planPeerChanges([], desired);
		expect(plan([{ publicKey: "abc", allowedIps: [] }])).toThrow(/not a WireGuard key/);
		expect(
			plan([
				{ publicKey: KEY_A, allowedIps: [] },
				{ publicKey: KEY_A, allowedIps: [] },
			]),
		).toThrow(/twice/);
		expect(
			plan([
				{ publicKey: KEY_A, allowedIps: ["100.64.0.1/32"] },
				{ publicKey: KEY_B, allowedIps: ["100.64.0.1"] },
			]),
		).toThrow(/given to both/);
		expect(plan([{ publicKey: KEY_A, allowedIps: ["100.64.0.1/40"] }])).toThrow(
			InvalidPeerConfigError,
		);
		expect(plan([{ publicKey: KEY_A, allowedIps: [], endpoint: "peer.example:51820" }])).toThrow(
			/literal/,
		);
		expect(plan([{ publicKey: KEY_A, allowedIps: [], persistentKeepalive: 70000 }])).toThrow(
			/0..65535/,
		);
	});
});

const ADDRESSES = [
	"100.64.0.7/16",
	"100.64.0.8/16",
	"100.64.0.7/10",
	"100.64.0.7",
	"fd00::7/64",
	"fd00:0::8/64",
];

describe("planAddressChanges", () => {
	it("converges, touches only differences, and is idempotent", () => {
		fc.assert(
			fc.property(fc.subarray(ADDRESSES), fc.subarray(ADDRESSES), (currentList, desired) => {
				const current = currentList.map(canonicalInterfaceAddress);
				const changes = planAddressChanges(current, desired);
				const after = new Set(current);
				for (const change of changes) {
					if (change.kind === "add") after.add(change.cidr);
					else after.delete(change.cidr);
				}
				expect([...after].sort()).toEqual(
					[...new Set(desired.map(canonicalInterfaceAddress))].sort(),
				);
				expect(planAddressChanges([...after], desired)).toEqual([]);
				for (const change of changes) {
					expect(current.includes(change.cidr)).toBe(change.kind === "remove");
				}
				// Removals first: deleting a primary IPv4 address would take new secondaries with it.
				const firstAdd = changes.findIndex((change) => change.kind === "add");
				if (firstAdd !== -1)
					expect(changes.slice(firstAdd).every((change) => change.kind === "add")).toBe(true);
			}),
			{ numRuns: 300 },
		);
	});
});

const ROUTE_DESTINATIONS = [
	"100.64.0.0/16",
	"100.64.0.9/32",
	"100.64.0.9",
	"100.65.0.0/16",
	"fd00::/64",
	"0.0.0.0/0",
];

describe("planRouteChanges", () => {
	const routeArbitrary = fc.record({
		destination: fc.constantFrom(...ROUTE_DESTINATIONS).map(canonicalPrefix),
		protocol: fc.constantFrom(undefined, "kernel", "static"),
	});

	function applyRouteChanges(
		current: readonly CurrentRoute[],
		changes: ReturnType<typeof planRouteChanges>,
	) {
		const routes = [...current];
		for (const change of changes) {
			if (change.kind === "add") {
				routes.push({ destination: change.destination, protocol: undefined });
			} else {
				const index = routes.findIndex(
					(route) => route.destination === change.destination && route.protocol === change.protocol,
				);
				expect(index).not.toBe(-1);
				routes.splice(index, 1);
			}
		}
		return routes;
	}

	it("converges, never removes kernel routes, and is idempotent", () => {
		fc.assert(
			fc.property(
				fc.array(routeArbitrary, { maxLength: 6 }),
				fc.subarray(ROUTE_DESTINATIONS),
				(current, desired) => {
					const changes = planRouteChanges(current, desired);
					const after = applyRouteChanges(current, changes);
					const wanted = new Set(desired.map(canonicalPrefix));
					for (const destination of wanted) {
						expect(after.some((route) => route.destination === destination)).toBe(true);
					}
					for (const route of after) {
						expect(route.protocol === "kernel" || wanted.has(route.destination)).toBe(true);
					}
					expect(after.filter((route) => route.protocol === "kernel")).toEqual(
						current.filter((route) => route.protocol === "kernel"),
					);
					expect(planRouteChanges(after, desired)).toEqual([]);
				},
			),
			{ numRuns: 300 },
		);
	});

	it("counts the kernel's route for an address as present", () => {
		const current: CurrentRoute[] = [
			{ destination: "100.64.0.0/16", protocol: "kernel" },
			{ destination: "100.65.0.0/16", protocol: undefined },
		];
		expect(planRouteChanges(current, ["100.64.0.0/16", "100.64.0.9"])).toEqual([
			{ kind: "add", destination: "100.64.0.9/32" },
			{ kind: "remove", destination: "100.65.0.0/16", protocol: undefined },
		]);
	});
});
