import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
	decodeStunMessage,
	encodeBindingRequest,
	encodeBindingResponse,
	isStunMessage,
	MessageType,
	reflexiveAddress,
	type TransportAddress,
} from "./stun-codec.js";

const txid = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join("."));
const ipv6 = fc
	.array(fc.oneof(fc.constant(0), fc.nat(0xffff)), { minLength: 8, maxLength: 8 })
	.map((groups) => groups.map((g) => g.toString(16)).join(":"));
const transportAddress: fc.Arbitrary<TransportAddress> = fc.oneof(
	fc.record({ family: fc.constant(4 as const), address: ipv4, port: fc.nat(65535) }),
	fc.record({ family: fc.constant(6 as const), address: ipv6, port: fc.nat(65535) }),
);
const transactionId = fc.uint8Array({ minLength: 12, maxLength: 12 });

describe("STUN codec", () => {
	it("encodes a Binding request as RFC 5389 lays it out", () => {
		const bytes = encodeBindingRequest(txid);
		expect(Buffer.from(bytes).toString("hex")).toBe(
			"000100002112a442" + Buffer.from(txid).toString("hex"),
		);
		expect(isStunMessage(bytes)).toBe(true);
		const decoded = decodeStunMessage(bytes);
		expect(decoded.ok && decoded.message.type).toBe(MessageType.BindingRequest);
	});

	it("decodes the RFC 5769 §2.2 IPv4 response test vector (XOR-MAPPED-ADDRESS, FINGERPRINT)", () => {
		// Without MESSAGE-INTEGRITY, which we don't check: the vector's
		// fingerprint covers it, so this is the vector's layout re-fingerprinted.
		const response = encodeBindingResponse(
			Uint8Array.from(Buffer.from("b7e7a701bc34d686fa87dfae", "hex")),
			{ xorMappedAddress: { family: 4, address: "192.0.2.1", port: 32853 } },
			{ software: "test vector", fingerprint: true },
		);
		// The XOR-MAPPED-ADDRESS value bytes from RFC 5769.
		expect(Buffer.from(response).toString("hex")).toContain("002000080001a147e112a643");
		const decoded = decodeStunMessage(response);
		expect(decoded.ok).toBe(true);
		if (!decoded.ok) return;
		expect(decoded.message.type).toBe(MessageType.BindingSuccess);
		expect(decoded.message.xorMappedAddress).toEqual({
			family: 4,
			address: "192.0.2.1",
			port: 32853,
		});
		expect(decoded.message.software).toBe("test vector");
		expect(decoded.message.fingerprint).toBe(true);
	});

	it("decodes the IPv6 XOR-MAPPED-ADDRESS of RFC 5769 §2.3", () => {
		const id = Uint8Array.from(Buffer.from("b7e7a701bc34d686fa87dfae", "hex"));
		const response = encodeBindingResponse(id, {
			xorMappedAddress: {
				family: 6,
				address: "2001:db8:1234:5678:11:2233:4455:6677",
				port: 32853,
			},
		});
		expect(Buffer.from(response).toString("hex")).toContain(
			"002000140002a147" + "0113a9faa5d3f179bc25f4b5bed2b9d9",
		);
		const decoded = decodeStunMessage(response);
		expect(decoded.ok && reflexiveAddress(decoded.message)).toEqual({
			family: 6,
			address: "2001:db8:1234:5678:11:2233:4455:6677",
			port: 32853,
		});
	});

	it("reads RFC 5780 OTHER-ADDRESS and RESPONSE-ORIGIN, and error responses", () => {
		const ok = decodeStunMessage(
			encodeBindingResponse(txid, {
				xorMappedAddress: { family: 4, address: "198.18.1.2", port: 4000 },
				otherAddress: { family: 4, address: "198.18.0.2", port: 3479 },
				responseOrigin: { family: 4, address: "198.18.0.1", port: 3478 },
			}),
		);
		expect(ok.ok && ok.message.otherAddress).toEqual({
			family: 4,
			address: "198.18.0.2",
			port: 3479,
		});
		expect(ok.ok && ok.message.responseOrigin?.port).toBe(3478);
		const err = decodeStunMessage(
			encodeBindingResponse(txid, { errorCode: { code: 420, reason: "Unknown Attribute" } }),
		);
		expect(err.ok && err.message.type).toBe(MessageType.BindingError);
		expect(err.ok && err.message.errorCode).toEqual({ code: 420, reason: "Unknown Attribute" });
	});

	it("refuses what is not an RFC 5389 message, with a reason", () => {
		const good = encodeBindingRequest(txid);
		const noCookie = Uint8Array.from(good);
		noCookie[4] = 0;
		const badLength = Uint8Array.from([...good, 0, 0, 0, 0]);
		const firstBits = Uint8Array.from(good);
		firstBits[0] = 0x80;
		for (const [bytes, why] of [
			[good.subarray(0, 10), /shorter/],
			[noCookie, /cookie/],
			[badLength, /length/],
			[firstBits, /first bits/],
		] as const) {
			const r = decodeStunMessage(bytes);
			expect(r.ok).toBe(false);
			if (!r.ok) expect(r.error).toMatch(why);
		}
		const withFp = encodeBindingRequest(txid, { fingerprint: true });
		withFp[withFp.length - 1]! ^= 1;
		expect(decodeStunMessage(withFp)).toEqual({ ok: false, error: "wrong FINGERPRINT" });
	});

	describe("fuzzing", () => {
		it("never throws on arbitrary bytes", () => {
			fc.assert(
				fc.property(fc.uint8Array({ maxLength: 200 }), (data) => {
					const r = decodeStunMessage(data);
					expect(typeof r.ok).toBe("boolean");
				}),
				{ numRuns: 2_000 },
			);
		});

		it("never throws on mutations of valid messages (the interesting inputs)", () => {
			fc.assert(
				fc.property(
					transactionId,
					transportAddress,
					transportAddress,
					fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 6 }),
					fc.nat(8),
					(id, mapped, other, flips, cut) => {
						const bytes = encodeBindingResponse(
							id,
							{ xorMappedAddress: mapped, otherAddress: other },
							{ software: "fuzz", fingerprint: true },
						);
						for (const [at, value] of flips) bytes[at % bytes.length] = value;
						const r = decodeStunMessage(bytes.subarray(0, bytes.length - cut));
						expect(typeof r.ok).toBe("boolean");
					},
				),
				{ numRuns: 2_000 },
			);
		});

		it("round-trips responses: what is encoded decodes to the same fields", () => {
			fc.assert(
				fc.property(
					transactionId,
					transportAddress,
					fc.option(transportAddress, { nil: undefined }),
					fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
					fc.boolean(),
					(id, mapped, other, software, fingerprint) => {
						const bytes = encodeBindingResponse(
							id,
							{ xorMappedAddress: mapped, ...(other ? { otherAddress: other } : {}) },
							{ fingerprint, ...(software === undefined ? {} : { software }) },
						);
						const r = decodeStunMessage(bytes);
						expect(r.ok).toBe(true);
						if (!r.ok) return;
						expect(r.message.transactionId).toEqual(id);
						expect(r.message.xorMappedAddress).toEqual(canonical(mapped));
						expect(r.message.otherAddress).toEqual(other ? canonical(other) : undefined);
						expect(r.message.fingerprint).toBe(fingerprint);
						if (software !== undefined) expect(r.message.software).toBe(software);
					},
				),
				{ numRuns: 1_000 },
			);
		});

		it("a single flipped bit in a fingerprinted message never passes as fingerprinted", () => {
			fc.assert(
				fc.property(transactionId, transportAddress, fc.nat(), (id, mapped, bit) => {
					const bytes = encodeBindingResponse(
						id,
						{ xorMappedAddress: mapped },
						{ fingerprint: true },
					);
					const at = bit % (bytes.length * 8);
					bytes[at >> 3]! ^= 1 << (at & 7);
					const r = decodeStunMessage(bytes);
					// Either refused, or (a flip in the attribute's type) no longer a FINGERPRINT.
					if (r.ok) expect(r.message.fingerprint).toBe(false);
				}),
				{ numRuns: 2_000 },
			);
		});
	});
});

/** The address in canonical text (RFC 5952 for IPv6, as WHATWG URL writes it). */
function canonical(a: TransportAddress): TransportAddress {
	if (a.family === 4) return a;
	return { ...a, address: new URL(`http://[${a.address}]/`).hostname.slice(1, -1) };
}
