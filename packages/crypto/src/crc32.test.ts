import { crc32 as zlibCrc32 } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { crc32 } from "./crc32.js";

describe("crc32", () => {
	it("matches the standard check values", () => {
		expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
		expect(crc32(new Uint8Array())).toBe(0);
		expect(crc32(new TextEncoder().encode("The quick brown fox jumps over the lazy dog"))).toBe(
			0x414fa339,
		);
	});

	it("property: the same as zlib's, where this Node has it", () => {
		const z = zlibCrc32 as ((d: Uint8Array) => number) | undefined;
		if (!z) return;
		fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (data) => crc32(data) === z(data)));
	});
});
