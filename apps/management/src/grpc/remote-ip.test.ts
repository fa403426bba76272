import { describe, expect, it } from "vitest";
import { remoteIp } from "./management-grpc.js";

describe("remoteIp", () => {
	it("drops the port and the IPv4-mapped prefix", () => {
		expect(remoteIp("203.0.113.7:51820")).toBe("203.0.113.7");
		expect(remoteIp("::ffff:203.0.113.7:51820")).toBe("203.0.113.7");
		expect(remoteIp("2001:db8::1:443")).toBe("2001:db8::1");
		expect(remoteIp("[2001:db8::1]:443")).toBe("2001:db8::1");
	});

	it("is empty when there is no address", () => {
		expect(remoteIp("unknown")).toBe("");
		expect(remoteIp("")).toBe("");
		expect(remoteIp("/run/management.sock")).toBe("");
	});
});
