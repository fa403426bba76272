import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
	DATA_HEADER_BYTES,
	encodeData,
	encodeFrame,
	type Frame,
	FrameType,
	MAX_FRAME_BYTES,
	MAX_PAYLOAD_BYTES,
	PROTOCOL_VERSION,
	parseFrame,
} from "./frame.js";

const peerId = fc.uint8Array({ minLength: 32, maxLength: 32 });
const tokenText = fc
	.array(fc.integer({ min: 0x21, max: 0x7e }), { minLength: 1, maxLength: 1024 })
	.map((codes) => String.fromCharCode(...codes));

const anyFrame: fc.Arbitrary<Frame> = fc.oneof(
	tokenText.map((token): Frame => ({ type: "hello", version: PROTOCOL_VERSION, token })),
	fc
		.record({ peerId, expiresAtMs: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }) })
		.map((f): Frame => ({ type: "welcome", ...f })),
	fc
		.record({ peerId, payload: fc.uint8Array({ minLength: 1, maxLength: 2000 }) })
		.map((f): Frame => ({ type: "data", ...f })),
	tokenText.map((token): Frame => ({ type: "token", token })),
	fc
		.record({
			code: fc.integer({ min: 0, max: 0xffff }),
			message: fc.string({ maxLength: 200, unit: "grapheme" }),
		})
		.map((f): Frame => ({ type: "error", ...f })),
);

/** Frames compare by value; views and copies of the same bytes are equal. */
function normalise(frame: Frame): unknown {
	return Object.fromEntries(
		Object.entries(frame).map(([k, v]: [string, unknown]) => [
			k,
			v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v,
		]),
	);
}

describe("parseFrame", () => {
	it("never throws on random bytes", () => {
		fc.assert(
			fc.property(fc.uint8Array({ maxLength: 3000 }), (bytes) => {
				const result = parseFrame(bytes);
				expect(typeof result.ok).toBe("boolean");
				if (!result.ok) expect(result.error.message.length).toBeGreaterThan(0);
			}),
			{ numRuns: 20_000 },
		);
	});

	it("never throws on random bytes behind every type byte", () => {
		fc.assert(
			fc.property(
				fc.integer({ min: 1, max: 5 }),
				fc.uint8Array({ maxLength: 1100 }),
				(type, rest) => {
					const bytes = new Uint8Array(1 + rest.length);
					bytes[0] = type;
					bytes.set(rest, 1);
					const result = parseFrame(bytes);
					if (result.ok) {
						// Whatever parses re-encodes to the same bytes.
						const again = encodeFrame(result.frame);
						expect(again.ok).toBe(true);
						if (again.ok) expect(Buffer.from(again.bytes).equals(Buffer.from(bytes))).toBe(true);
					}
				},
			),
			{ numRuns: 20_000 },
		);
	});

	it("never throws on non-bytes", () => {
		for (const bad of [undefined, null, "text", 3, {}, []]) {
			expect(parseFrame(bad as unknown as Uint8Array).ok).toBe(false);
		}
	});

	it("refuses what is not a frame, with a typed error", () => {
		const cases: [number[], string][] = [
			[[], "empty"],
			[[0x00], "unknown-type"],
			[[0x06, 1, 2], "unknown-type"],
			[[0xff], "unknown-type"],
			[[FrameType.Data, ...new Array(32).fill(0)], "bad-length"],
			[[FrameType.Data, 1, 2, 3], "bad-length"],
			[[FrameType.Hello, PROTOCOL_VERSION], "bad-length"],
			[[FrameType.Hello, 2, 0x41], "bad-version"],
			[[FrameType.Hello, PROTOCOL_VERSION, 0x20], "bad-token"],
			[[FrameType.Token], "bad-token"],
			[[FrameType.Token, 0x41, 0x7f], "bad-token"],
			[[FrameType.Welcome, ...new Array(39).fill(0)], "bad-length"],
			[[FrameType.Welcome, ...new Array(32).fill(0), ...new Array(8).fill(0xff)], "bad-expiry"],
			[[FrameType.Error, 0], "bad-length"],
			[[FrameType.Error, 0, 1, 0xc3], "bad-message"],
		];
		for (const [bytes, code] of cases) {
			const result = parseFrame(Uint8Array.from(bytes));
			expect(result, JSON.stringify(bytes)).toMatchObject({ ok: false, error: { code } });
		}
		const tooBig = new Uint8Array(MAX_FRAME_BYTES + 1);
		tooBig[0] = FrameType.Data;
		expect(parseFrame(tooBig)).toMatchObject({ ok: false, error: { code: "bad-length" } });
		const longToken = new Uint8Array(1 + 1025).fill(0x41);
		longToken[0] = FrameType.Token;
		expect(parseFrame(longToken)).toMatchObject({ ok: false, error: { code: "bad-token" } });
	});

	it("parses a DATA frame as views, without copying", () => {
		const bytes = new Uint8Array(DATA_HEADER_BYTES + 3);
		bytes[0] = FrameType.Data;
		bytes.fill(7, 1, 33);
		bytes.set([1, 2, 3], 33);
		const result = parseFrame(bytes);
		expect(result.ok).toBe(true);
		if (result.ok && result.frame.type === "data") {
			expect(result.frame.payload.buffer).toBe(bytes.buffer);
			expect([...result.frame.payload]).toEqual([1, 2, 3]);
			expect(result.frame.peerId).toEqual(new Uint8Array(32).fill(7));
		}
	});

	it("accepts the largest DATA frame", () => {
		const bytes = new Uint8Array(MAX_FRAME_BYTES);
		bytes[0] = FrameType.Data;
		const result = parseFrame(bytes);
		expect(result.ok && result.frame.type === "data" && result.frame.payload.length).toBe(
			MAX_PAYLOAD_BYTES,
		);
	});
});

describe("encodeFrame", () => {
	it("round-trips every valid frame through parseFrame", () => {
		fc.assert(
			fc.property(anyFrame, (frame) => {
				const encoded = encodeFrame(frame);
				expect(encoded.ok).toBe(true);
				if (!encoded.ok) return;
				const parsed = parseFrame(encoded.bytes);
				expect(parsed.ok).toBe(true);
				if (parsed.ok) expect(normalise(parsed.frame)).toEqual(normalise(frame));
			}),
			{ numRuns: 5_000 },
		);
	});

	it("encodeData matches encodeFrame for DATA", () => {
		fc.assert(
			fc.property(peerId, fc.uint8Array({ minLength: 1, maxLength: 1500 }), (id, payload) => {
				const checked = encodeFrame({ type: "data", peerId: id, payload });
				expect(checked.ok).toBe(true);
				if (checked.ok) {
					expect(Buffer.from(encodeData(id, payload)).equals(Buffer.from(checked.bytes))).toBe(
						true,
					);
				}
			}),
			{ numRuns: 500 },
		);
	});

	it("returns typed errors for invalid frames instead of throwing", () => {
		const id = new Uint8Array(32);
		const cases: [unknown, string][] = [
			[{ type: "data", peerId: new Uint8Array(31), payload: new Uint8Array(1) }, "bad-peer-id"],
			[{ type: "data", peerId: "x", payload: new Uint8Array(1) }, "bad-peer-id"],
			[{ type: "data", peerId: id, payload: new Uint8Array(0) }, "bad-payload"],
			[{ type: "data", peerId: id, payload: new Uint8Array(MAX_PAYLOAD_BYTES + 1) }, "bad-payload"],
			[{ type: "data", peerId: id, payload: [1, 2] }, "bad-payload"],
			[{ type: "hello", version: 2, token: "abc" }, "bad-version"],
			[{ type: "hello", version: PROTOCOL_VERSION, token: "" }, "bad-token"],
			[{ type: "hello", version: PROTOCOL_VERSION, token: "with space" }, "bad-token"],
			[{ type: "token", token: "é" }, "bad-token"],
			[{ type: "token", token: "a".repeat(1025) }, "bad-token"],
			[{ type: "token", token: 5 }, "bad-token"],
			[{ type: "welcome", peerId: id, expiresAtMs: -1 }, "bad-expiry"],
			[{ type: "welcome", peerId: id, expiresAtMs: 1.5 }, "bad-expiry"],
			[{ type: "welcome", peerId: id, expiresAtMs: Number.NaN }, "bad-expiry"],
			[{ type: "error", code: 70_000, message: "" }, "bad-code"],
			[{ type: "error", code: 1, message: "x".repeat(1025) }, "bad-message"],
			[{ type: "error", code: 1, message: 5 }, "bad-message"],
			[{ type: "bogus" }, "unknown-type"],
		];
		for (const [frame, code] of cases) {
			expect(encodeFrame(frame as Frame), JSON.stringify(frame)).toMatchObject({
				ok: false,
				error: { code },
			});
		}
	});

	it("never throws on arbitrary objects", () => {
		fc.assert(
			fc.property(
				fc.record({
					type: fc.constantFrom("hello", "welcome", "data", "token", "error", "x"),
					version: fc.anything(),
					token: fc.anything(),
					peerId: fc.oneof(fc.anything(), fc.uint8Array({ maxLength: 40 })),
					payload: fc.oneof(fc.anything(), fc.uint8Array({ maxLength: 40 })),
					expiresAtMs: fc.anything(),
					code: fc.anything(),
					message: fc.anything(),
				}),
				(frame) => {
					const result = encodeFrame(frame as unknown as Frame);
					expect(typeof result.ok).toBe("boolean");
				},
			),
			{ numRuns: 5_000 },
		);
	});
});
