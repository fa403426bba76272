import * as zlib from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { crc32 } from "./crc32.js";

const text = (s: string) => new TextEncoder().encode(s);

/** CRC-32/ISO-HDLC check values, each computed with python3's zlib.crc32. */
const VECTORS: [name: string, data: Uint8Array, crc: number][] = [
	["empty", new Uint8Array(), 0],
	["123456789 (the catalogue check value)", text("123456789"), 0xcbf43926],
	["a", text("a"), 0xe8b7be43],
	["the quick brown fox", text("The quick brown fox jumps over the lazy dog"), 0x414fa339],
	["bytes 0..255", Uint8Array.from({ length: 256 }, (_, i) => i), 0x29058c73],
	["32 zero bytes", new Uint8Array(32), 0x190a55ad],
	["32 bytes 0xff", new Uint8Array(32).fill(0xff), 0xff6cab0b],
	["STUN magic cookie", Uint8Array.of(0x21, 0x12, 0xa4, 0x42), 0x74d13908],
];

/** Bit at a time, no table: an independent way to the same polynomial. */
function bitwiseCrc32(data: Uint8Array): number {
	let crc = 0xffffffff;
	for (const byte of data) {
		crc ^= byte;
		for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
	}
	return (crc ^ 0xffffffff) >>> 0;
}

// zlib.crc32 exists from Node 20.15 and 22.2; older runtimes still check against the rest.
const zlibCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

describe("crc32", () => {
	it.each(VECTORS)("matches the fixed vector: %s", (_name, data, expected) => {
		expect(crc32(data)).toBe(expected);
		expect(bitwiseCrc32(data)).toBe(expected);
	});

	it("property: the same as a bit-at-a-time reference, and as zlib's where this Node has it", () => {
		fc.assert(
			fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
				const expected = bitwiseCrc32(data);
				expect(crc32(data)).toBe(expected);
				if (zlibCrc32 !== undefined) expect(zlibCrc32(data)).toBe(expected);
			}),
		);
	});
});
