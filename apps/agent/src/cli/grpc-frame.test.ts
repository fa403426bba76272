import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { failureLine, frameMessage, statusOf, takeMessages, timeoutHeader } from "./grpc-frame.js";

describe("gRPC message framing", () => {
	it("prefixes a message with flag 0 and its big-endian length", () => {
		expect([...frameMessage(Uint8Array.of(7, 8, 9))]).toEqual([0, 0, 0, 0, 3, 7, 8, 9]);
		expect([...frameMessage(new Uint8Array(0))]).toEqual([0, 0, 0, 0, 0]);
	});

	it("takes back every framed message, however the bytes are split into chunks", () => {
		fc.assert(
			fc.property(
				fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 5 }),
				fc.array(fc.nat(), { maxLength: 8 }),
				(messages, cuts) => {
					const wire = Buffer.concat(messages.map((m) => frameMessage(m)));
					const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
					let rest: Buffer = Buffer.alloc(0);
					const got: Buffer[] = [];
					let from = 0;
					for (const to of [...points, wire.length]) {
						const taken = takeMessages(Buffer.concat([rest, wire.subarray(from, to)]));
						got.push(...taken.messages);
						rest = taken.rest;
						from = to;
					}
					expect(rest.length).toBe(0);
					expect(got.map((m) => [...m])).toEqual(messages.map((m) => [...m]));
				},
			),
		);
	});

	it("keeps an incomplete message for the next chunk", () => {
		const { messages, rest } = takeMessages(Buffer.from([0, 0, 0, 0, 2, 1]));
		expect(messages).toEqual([]);
		expect([...rest]).toEqual([0, 0, 0, 0, 2, 1]);
	});

	it("refuses a compressed message", () => {
		expect(() => takeMessages(Buffer.from([1, 0, 0, 0, 0]))).toThrow(/compressed/);
	});
});

describe("grpc-timeout", () => {
	it("says milliseconds, rounded up, and seconds past 8 digits", () => {
		expect(timeoutHeader(30_000)).toBe("30000m");
		expect(timeoutHeader(0.2)).toBe("1m");
		expect(timeoutHeader(-5)).toBe("0m");
		expect(timeoutHeader(100_000_000)).toBe("100000S");
	});
});

describe("call status", () => {
	it("is absent from response headers without grpc-status", () => {
		expect(statusOf({ ":status": 200, "content-type": "application/grpc" })).toBeUndefined();
	});

	it("reads the code and the percent-encoded message", () => {
		expect(
			statusOf({ "grpc-status": "9", "grpc-message": "not%20up%3A%20run%20%E2%80%98up%E2%80%99" }),
		).toEqual({ code: 9, message: "not up: run ‘up’" });
		expect(statusOf({ "grpc-status": "0" })).toEqual({ code: 0, message: "" });
	});

	it("keeps a message that is not valid percent-encoding as it came", () => {
		expect(statusOf({ "grpc-status": "13", "grpc-message": "100%" })).toEqual({
			code: 13,
			message: "100%",
		});
	});

	it("treats an unreadable code as UNKNOWN", () => {
		expect(statusOf({ "grpc-status": "x" })?.code).toBe(2);
	});

	it("reports the daemon's message, else the status name", () => {
		expect(failureLine({ code: 9, message: "the agent is not up" })).toBe("the agent is not up");
		expect(failureLine({ code: 14, message: "" })).toBe("the daemon call failed: UNAVAILABLE");
		expect(failureLine({ code: 99, message: "" })).toBe("the daemon call failed: status 99");
	});
});
