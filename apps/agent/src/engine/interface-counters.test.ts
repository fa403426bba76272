import { describe, expect, it } from "vitest";
import { parseNetDev } from "./interface-counters.js";

const NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 9945138025  994701    0    0    0     0          0         0 9945138025  994701    0    0    0     0       0          0
starling0:     840      10    0    0    0     0          0         0     1260      15    0    0    0     0       0          0
`;

describe("parseNetDev", () => {
	it("reads one interface's receive and transmit bytes", () => {
		expect(parseNetDev(NET_DEV, "starling0")).toEqual({ rxBytes: 840, txBytes: 1260 });
		expect(parseNetDev(NET_DEV, "lo")).toEqual({ rxBytes: 9945138025, txBytes: 9945138025 });
	});

	it("is undefined for an interface that is not listed, or a cut line", () => {
		expect(parseNetDev(NET_DEV, "wg0")).toBeUndefined();
		expect(parseNetDev(NET_DEV, "starling")).toBeUndefined();
		expect(parseNetDev("starling0: 1 2 3", "starling0")).toBeUndefined();
	});
});
