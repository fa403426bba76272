import { describe, expect, it } from "vitest";
import { parseWgDump, WgDumpParseError } from "./wg-dump.js";

const PRIVATE_KEY = "ANLx3gwp+1VbI7HnAbaHfL580jp7SYgy8RK/sK29EWU=";
const PUBLIC_KEY = "ZRDiqr53ze2tEOvj/2tibMrfD4dZSHLCiisYRM05BAI=";
const PEER_A = "gUYBYl29siLb4UJ7/4HLGg24ex8BRAqlpsrFLQIoywo=";
const PEER_B = "SVUJF3TDgBtyPSzD8SYBxl5VoT1eqA2Kpo9l8MdYpG0=";
const PEER_C = "eV3KZyfIq8Tqx/2Nr0Pri/0V3r3iXuUwre/77u8qQ0I=";
const PRESHARED_KEY = "2MAL4w4nIp7aMd86P11CahkOEUuTnwP2iI66GPmfmOk=";

// Shaped like real `wg show starling0 dump` output from wireguard-go.
const SAMPLE = [
	[PRIVATE_KEY, PUBLIC_KEY, "51820", "off"],
	[
		PEER_A,
		"(none)",
		"198.18.0.2:51820",
		"100.64.0.2/32,fd00::/64",
		"1764389245",
		"1532",
		"1796",
		"25",
	],
	[PEER_B, PRESHARED_KEY, "[::1]:51820", "100.64.0.3/32", "0", "0", "148", "off"],
	[PEER_C, "(none)", "(none)", "(none)", "0", "0", "0", "off"],
]
	.map((fields) => fields.join("\t"))
	.join("\n");

describe("parseWgDump", () => {
	it("parses the interface line and every peer", () => {
		expect(parseWgDump(SAMPLE)).toEqual({
			publicKey: PUBLIC_KEY,
			listenPort: 51820,
			fwmark: undefined,
			peers: [
				{
					publicKey: PEER_A,
					endpoint: "198.18.0.2:51820",
					allowedIps: ["100.64.0.2/32", "fd00::/64"],
					latestHandshakeUnixSeconds: 1764389245,
					rxBytes: 1532,
					txBytes: 1796,
					persistentKeepalive: 25,
				},
				{
					publicKey: PEER_B,
					endpoint: "[::1]:51820",
					allowedIps: ["100.64.0.3/32"],
					latestHandshakeUnixSeconds: 0,
					rxBytes: 0,
					txBytes: 148,
					persistentKeepalive: undefined,
				},
				{
					publicKey: PEER_C,
					endpoint: undefined,
					allowedIps: [],
					latestHandshakeUnixSeconds: 0,
					rxBytes: 0,
					txBytes: 0,
					persistentKeepalive: undefined,
				},
			],
		});
	});

	it("keeps neither the private key nor preshared keys anywhere in the result", () => {
		const serialized = JSON.stringify(parseWgDump(`${SAMPLE}\n`));
		expect(serialized).not.toContain(PRIVATE_KEY);
		expect(serialized).not.toContain(PRESHARED_KEY);
	});

	it("reads an interface without keys and a hex fwmark", () => {
		expect(parseWgDump("(none)\t(none)\t39844\t0xca6c\n")).toEqual({
			publicKey: undefined,
			listenPort: 39844,
			fwmark: 0xca6c,
			peers: [],
		});
	});

	it("rejects malformed output without quoting the private key", () => {
		expect(() => parseWgDump("")).toThrow(WgDumpParseError);
		expect(() => parseWgDump(`${PRIVATE_KEY}\t${PUBLIC_KEY}\t51820`)).toThrow(/expected 4 fields/);
		expect(() => parseWgDump(`${PRIVATE_KEY}\t${PUBLIC_KEY}\tx\toff`)).toThrow(/listen-port "x"/);
		const badPeer = `${PRIVATE_KEY}\t${PUBLIC_KEY}\t1\toff\n${PEER_A}\t(none)\t(none)\t(none)\t0\t0\t-1\toff`;
		expect(() => parseWgDump(badPeer)).toThrow(/line 2: transfer-tx/);
		try {
			parseWgDump(`${PRIVATE_KEY}\t${PUBLIC_KEY}\t51820`);
		} catch (error) {
			expect((error as Error).message).not.toContain(PRIVATE_KEY);
		}
	});
});
