import type { ClientRoute, NetworkMap, RemotePeer, ServedRoute } from "@starling/proto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
	applyNetworkMapDelta,
	DeltaGapError,
	diffNetworkMaps,
	isEmptyDelta,
	sortPeers,
} from "./delta.js";

const peerArb: fc.Arbitrary<RemotePeer> = fc.record({
	wgPublicKey: fc.constantFrom("a", "b", "c", "d", "e", "f"),
	allowedIps: fc.array(fc.constantFrom("100.64.0.1/32", "100.64.0.2/32"), { maxLength: 2 }),
	dnsLabel: fc.string({ maxLength: 4 }),
	fqdn: fc.string({ maxLength: 4 }),
	name: fc.string({ maxLength: 4 }),
	connected: fc.boolean(),
	lastSeenUnixMs: fc.nat(),
	peerId: fc.string({ maxLength: 3 }),
});

const clientRouteArb: fc.Arbitrary<ClientRoute> = fc.record({
	id: fc.constantFrom("r1:a", "r1:b", "r2:c"),
	networkId: fc.constantFrom("lan", "exit"),
	network: fc.constantFrom("198.18.10.0/24", "0.0.0.0/0"),
	routerKey: fc.constantFrom("a", "b", "c"),
	metric: fc.integer({ min: 1, max: 9999 }),
	keepRoute: fc.boolean(),
	skipAutoApply: fc.boolean(),
	description: fc.string({ maxLength: 4 }),
	routeId: fc.constantFrom("r1", "r2"),
});

const servedRouteArb: fc.Arbitrary<ServedRoute> = fc.record({
	routeId: fc.constantFrom("r1", "r2"),
	network: fc.constantFrom("198.18.10.0/24", "0.0.0.0/0"),
	masquerade: fc.boolean(),
	filtered: fc.boolean(),
	rules: fc.array(
		fc.record({
			source: fc.constantFrom("100.64.0.1/32", "100.64.0.2/32"),
			protocol: fc.constantFrom("all", "tcp"),
			ports: fc.constant([]),
			policyId: fc.constant("p"),
		}),
		{ maxLength: 2 },
	),
	sources: fc.array(fc.constantFrom("100.64.0.1/32", "100.64.0.2/32"), { maxLength: 2 }),
});

const mapArb = (serial: number): fc.Arbitrary<NetworkMap> =>
	fc.record({
		serial: fc.constant(serial),
		// Management always sends self and signal; only the relay can go away.
		self: fc.record({
			address: fc.string(),
			dnsLabel: fc.string(),
			fqdn: fc.string(),
			peerId: fc.string(),
			name: fc.string(),
		}),
		peers: fc.uniqueArray(peerArb, { selector: (p) => p.wgPublicKey }).map(sortPeers),
		signal: fc.record({ url: fc.string() }),
		stunServers: fc.array(fc.record({ uri: fc.string() }), { maxLength: 2 }),
		relay: fc.option(
			fc.record({
				urls: fc.array(fc.string(), { minLength: 1 }),
				token: fc.string(),
				tokenExpiresUnixMs: fc.nat(),
			}),
			{
				nil: undefined,
			},
		),
		firewallRules: fc.constant([]),
		dnsDomain: fc.constant("starling.internal"),
		network: fc.constant("100.64.0.0/16"),
		routes: fc.array(clientRouteArb, { maxLength: 3 }),
		// Route lists travel whole (NetworkMapDelta.routes / served_routes replace them).
		servedRoutes: fc.array(servedRouteArb, { maxLength: 2 }),
	});

describe("network map deltas", () => {
	it("property: apply(a, diff(a, b)) equals b", () => {
		fc.assert(
			fc.property(mapArb(1), mapArb(2), (a, b) => {
				expect(applyNetworkMapDelta(a, diffNetworkMaps(a, b))).toEqual(b);
			}),
			{ numRuns: 500 },
		);
	});

	it("an unchanged map gives an empty delta", () => {
		fc.assert(
			fc.property(mapArb(3), (a) => {
				expect(isEmptyDelta(diffNetworkMaps(a, { ...a, serial: 4 }))).toBe(true);
			}),
		);
	});

	it("route lists travel whole when changed and not at all when unchanged", () => {
		fc.assert(
			fc.property(
				mapArb(1),
				fc.array(clientRouteArb, { minLength: 1, maxLength: 2 }),
				(a, routes) => {
					const b = { ...a, serial: 2, routes: [...a.routes, ...routes] };
					const delta = diffNetworkMaps(a, b);
					expect(delta.routes).toEqual({ routes: b.routes });
					expect(delta.servedRoutes).toBeUndefined();
					expect(isEmptyDelta(delta)).toBe(false);
					expect(applyNetworkMapDelta(a, delta).routes).toEqual(b.routes);
					expect(applyNetworkMapDelta(a, delta).servedRoutes).toBe(a.servedRoutes);
				},
			),
		);
		const map = fc.sample(mapArb(1), 1)[0]!;
		const cleared = applyNetworkMapDelta(
			{ ...map, servedRoutes: fc.sample(servedRouteArb, 1) },
			{
				baseSerial: 1,
				serial: 2,
				upsertedPeers: [],
				removedPeerKeys: [],
				servedRoutes: { routes: [] },
			},
		);
		expect(cleared.servedRoutes).toEqual([]);
		expect(cleared.routes).toBe(map.routes);
	});

	it("refuses a delta whose base is not the map's serial", () => {
		const map: NetworkMap = {
			serial: 5,
			self: undefined,
			peers: [],
			signal: undefined,
			stunServers: [],
			relay: undefined,
			firewallRules: [],
			dnsDomain: "",
			network: "",
			routes: [],
			servedRoutes: [],
		};
		expect(() =>
			applyNetworkMapDelta(map, diffNetworkMaps({ ...map, serial: 4 }, { ...map, serial: 6 })),
		).toThrow(DeltaGapError);
	});
});
