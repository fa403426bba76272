import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { computeVerdict, parseStunServer, type StunProbeResult } from "./verdict.js";

const LOCAL = ["127.0.0.1", "198.18.201.2"];

function probe(
	destination: string,
	mapped?: string,
	origin: StunProbeResult["origin"] = "configured",
): StunProbeResult {
	const [address, port] = destination.split(":");
	const result: StunProbeResult = {
		server: `stun:${destination}`,
		destination: { address: address!, port: Number(port) },
		origin,
	};
	if (mapped) {
		const [ma, mp] = mapped.split(":");
		result.mapped = { address: ma!, port: Number(mp) };
		result.rttMs = 1;
	} else {
		result.error = "no answer within 2500 ms";
	}
	return result;
}

describe("computeVerdict", () => {
	it("same mapping from two server addresses: endpoint-independent, port preserved", () => {
		const v = computeVerdict({
			localPort: 40000,
			localAddresses: LOCAL,
			probes: [
				probe("198.18.200.1:3478", "198.18.200.3:40000"),
				probe("198.18.200.250:3479", "198.18.200.3:40000", "other-address"),
			],
		});
		expect(v).toMatchObject({
			udpReachable: true,
			mappedAddress: "198.18.200.3:40000",
			behindNat: true,
			mapping: "endpoint-independent",
			portPreserved: true,
		});
		expect(v.mappingDetail).toMatch(/2 server addresses saw the same/);
	});

	it("different mappings per destination: endpoint-dependent, port not preserved", () => {
		const v = computeVerdict({
			localPort: 40000,
			localAddresses: LOCAL,
			probes: [
				probe("198.18.200.1:3478", "198.18.200.4:51234"),
				probe("198.18.200.250:3479", "198.18.200.4:60111", "other-address"),
			],
		});
		expect(v.mapping).toBe("endpoint-dependent");
		expect(v.portPreserved).toBe(false);
		expect(v.mappingDetail).toContain("198.18.200.250:3479 saw 198.18.200.4:60111");
	});

	it("two ports of one server address: independent, with the caveat said", () => {
		const v = computeVerdict({
			localPort: 5,
			localAddresses: LOCAL,
			probes: [
				probe("198.18.200.1:3478", "198.18.200.9:5"),
				probe("198.18.200.1:3479", "198.18.200.9:5"),
			],
		});
		expect(v.mapping).toBe("endpoint-independent");
		expect(v.mappingDetail).toMatch(/ports of one server address/);
	});

	it("one answering destination: unknown, and says why", () => {
		const v = computeVerdict({
			localPort: 40000,
			localAddresses: LOCAL,
			probes: [probe("198.18.200.1:3478", "198.18.200.3:40000"), probe("198.18.200.7:3478")],
		});
		expect(v.udpReachable).toBe(true);
		expect(v.mapping).toBe("unknown");
		expect(v.mappingDetail).toMatch(/only one STUN server address answered/);
		// The same server listed twice is still one address.
		const twice = computeVerdict({
			localPort: 1,
			localAddresses: LOCAL,
			probes: [
				probe("198.18.200.1:3478", "198.18.200.3:9"),
				probe("198.18.200.1:3478", "198.18.200.3:10"),
			],
		});
		expect(twice.mapping).toBe("unknown");
	});

	it("no answers: UDP not reachable; nothing asked: unknown", () => {
		const none = computeVerdict({
			localPort: 1,
			localAddresses: LOCAL,
			probes: [probe("198.18.200.1:3478"), probe("198.18.200.1:3479")],
		});
		expect(none).toMatchObject({
			udpReachable: false,
			mappedAddress: "",
			behindNat: undefined,
			mapping: "unknown",
			portPreserved: undefined,
		});
		expect(none.mappingDetail).toMatch(/no STUN server answered/);
		const nothing = computeVerdict({ localPort: 1, localAddresses: LOCAL, probes: [] });
		expect(nothing.udpReachable).toBeUndefined();
		expect(nothing.mappingDetail).toMatch(/no STUN server/);
	});

	it("mapped to our own address and port: not behind NAT", () => {
		const v = computeVerdict({
			localPort: 40000,
			localAddresses: LOCAL,
			probes: [probe("198.18.200.1:3478", "198.18.201.2:40000")],
		});
		expect(v.behindNat).toBe(false);
	});

	it("invariants hold for any probe results", () => {
		const endpoint = fc
			.tuple(
				fc.constantFrom("198.18.200.1", "198.18.200.2", "198.18.201.2"),
				fc.constantFrom(3478, 3479, 40000),
			)
			.map(([a, p]) => `${a}:${p}`);
		fc.assert(
			fc.property(
				fc.array(fc.tuple(endpoint, fc.option(endpoint, { nil: undefined })), { maxLength: 5 }),
				(list) => {
					const probes = list.map(([d, m]) => probe(d, m));
					const v = computeVerdict({ localPort: 40000, localAddresses: LOCAL, probes });
					const answered = probes.filter((p) => p.mapped);
					expect(v.udpReachable).toBe(probes.length === 0 ? undefined : answered.length > 0);
					const destinations = new Set(
						answered.map((p) => `${p.destination.address}:${p.destination.port}`),
					);
					if (destinations.size < 2) expect(v.mapping).toBe("unknown");
					else expect(v.mapping).not.toBe("unknown");
					expect(v.mappingDetail.length).toBeGreaterThan(0);
				},
			),
		);
	});
});

describe("parseStunServer", () => {
	it("reads management's URIs and plain host:port", () => {
		expect(parseStunServer("stun:198.18.0.1:3478")).toEqual({
			text: "stun:198.18.0.1:3478",
			host: "198.18.0.1",
			port: 3478,
		});
		expect(parseStunServer("stun:stun.example.com")).toMatchObject({
			host: "stun.example.com",
			port: 3478,
		});
		expect(parseStunServer("198.18.0.1:3479")).toMatchObject({ host: "198.18.0.1", port: 3479 });
		expect(parseStunServer("localhost")).toMatchObject({ host: "localhost", port: 3478 });
		expect(parseStunServer("stun:[2001:db8::1]:3478")).toMatchObject({
			host: "2001:db8::1",
			port: 3478,
		});
	});

	it("refuses what it cannot probe, in one line", () => {
		expect(parseStunServer("turn:198.18.0.1:3478")).toEqual({
			error: "turn:198.18.0.1:3478: only stun: URLs are probed",
		});
		expect(parseStunServer("198.18.0.1:99999")).toMatchObject({ error: /port must be/ });
		expect(parseStunServer("a b")).toMatchObject({ error: /not a STUN server/ });
		expect(parseStunServer("")).toMatchObject({ error: /not a STUN server/ });
	});
});
