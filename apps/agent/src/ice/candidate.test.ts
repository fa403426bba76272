import { describe, expect, it } from "vitest";
import { parsePrefix } from "./address-prefix.js";
import {
	filterSdpCandidates,
	isCandidateExcluded,
	parseCandidate,
	sdpCandidates,
} from "./candidate.js";

const overlay = [parsePrefix("100.64.0.0/10")];

describe("parseCandidate", () => {
	it("reads libjuice host candidates, with or without a=", () => {
		const expected = {
			foundation: "1",
			component: 1,
			transport: "udp",
			priority: 2114977791,
			address: "198.18.0.2",
			port: 43138,
			type: "host",
		};
		expect(parseCandidate("a=candidate:1 1 UDP 2114977791 198.18.0.2 43138 typ host")).toEqual(
			expected,
		);
		expect(parseCandidate("candidate:1 1 UDP 2114977791 198.18.0.2 43138 typ host")).toEqual(
			expected,
		);
	});

	it("reads the related address of server-reflexive candidates", () => {
		const candidate = parseCandidate(
			"a=candidate:3 1 UDP 1686052607 198.19.0.1 61000 typ srflx raddr 198.18.0.2 rport 43138",
		);
		expect(candidate).toMatchObject({
			type: "srflx",
			address: "198.19.0.1",
			port: 61000,
			relatedAddress: "198.18.0.2",
			relatedPort: 43138,
		});
	});

	it("rejects what it does not understand", () => {
		for (const bad of [
			"",
			"a=end-of-candidates",
			"candidate:1 1 UDP 1 198.18.0.2 70000 typ host",
			"candidate:1 1 UDP 1 198.18.0.2 4000 typ bogus",
			"candidate:1 1 UDP 1 198.18.0.2 4000",
			"candidate:1 x UDP 1 198.18.0.2 4000 typ host",
		]) {
			expect(parseCandidate(bad)).toBeUndefined();
		}
	});
});

describe("isCandidateExcluded", () => {
	it("excludes overlay host candidates and keeps lab ones", () => {
		expect(isCandidateExcluded("a=candidate:2 1 UDP 2 100.64.0.1 40000 typ host", overlay)).toBe(
			true,
		);
		expect(isCandidateExcluded("a=candidate:1 1 UDP 2 198.18.0.2 40000 typ host", overlay)).toBe(
			false,
		);
	});

	it("excludes reflexive candidates whose base is an overlay address", () => {
		expect(
			isCandidateExcluded(
				"candidate:3 1 UDP 1 198.19.0.1 61000 typ srflx raddr 100.64.0.1 rport 40000",
				overlay,
			),
		).toBe(true);
	});

	it("excludes unparseable lines", () => {
		expect(isCandidateExcluded("garbage", overlay)).toBe(true);
	});
});

describe("filterSdpCandidates", () => {
	const sdp = [
		"v=0",
		"m=application 40000 UDP/DTLS/SCTP webrtc-datachannel",
		"c=IN IP4 100.64.0.1",
		"a=mid:0",
		"a=candidate:2 1 UDP 2116026111 100.64.0.1 40000 typ host",
		"a=candidate:1 1 UDP 2114977791 198.18.0.2 40000 typ host",
		"a=end-of-candidates",
		"",
	].join("\r\n");

	it("drops excluded candidates, blanks an excluded c= line and keeps CRLF", () => {
		const filtered = filterSdpCandidates(sdp, overlay);
		expect(filtered).not.toContain("100.64.");
		expect(filtered).toContain("c=IN IP4 0.0.0.0\r\n");
		expect(sdpCandidates(filtered)).toEqual([
			"candidate:1 1 UDP 2114977791 198.18.0.2 40000 typ host",
		]);
		expect(filtered.endsWith("a=end-of-candidates\r\n")).toBe(true);
	});

	it("leaves an SDP without excluded addresses unchanged", () => {
		const clean = sdp.replaceAll("100.64.0.1", "198.18.0.9");
		expect(filterSdpCandidates(clean, overlay)).toBe(clean);
	});
});
