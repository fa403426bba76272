import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { announcedLength, encodeFrame, statusSocketPath, takeFrame } from "./status-wire.js";

describe("status socket wire", () => {
	it("puts the status socket beside the gRPC socket", () => {
		expect(statusSocketPath("/var/run/starling.sock")).toBe("/var/run/starling-status.sock");
		expect(statusSocketPath("/tmp/daemon")).toBe("/tmp/daemon-status.sock");
	});

	it("takes back a frame from any prefix that holds it, and nothing from a shorter one", () => {
		fc.assert(
			fc.property(fc.nat(255), fc.uint8Array({ maxLength: 200 }), (kind, body) => {
				const wire = Buffer.concat([encodeFrame(kind, body), Buffer.from([9, 9])]);
				for (let n = 0; n <= wire.length; n++) {
					const frame = takeFrame(wire.subarray(0, n));
					if (n < 5 + body.length) expect(frame).toBeUndefined();
					else expect(frame).toEqual({ kind, body: Buffer.from(body) });
				}
				expect(announcedLength(wire.subarray(0, 4))).toBeUndefined();
				expect(announcedLength(wire)).toBe(body.length);
			}),
		);
	});
});
