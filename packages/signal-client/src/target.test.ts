import { describe, expect, it } from "vitest";
import { parseSignalUrl } from "./target.js";

describe("parseSignalUrl", () => {
	it("accepts the forms agents are configured with", () => {
		expect(parseSignalUrl("127.0.0.1:10000")).toEqual({
			address: "127.0.0.1:10000",
			secure: false,
		});
		expect(parseSignalUrl("signal.example.com")).toEqual({
			address: "signal.example.com:10000",
			secure: false,
		});
		expect(parseSignalUrl("localhost:80")).toEqual({ address: "localhost:80", secure: false });
		expect(parseSignalUrl("http://10.0.0.1:10000")).toEqual({
			address: "10.0.0.1:10000",
			secure: false,
		});
		expect(parseSignalUrl("http://signal.example.com/")).toEqual({
			address: "signal.example.com:80",
			secure: false,
		});
		expect(parseSignalUrl("https://signal.example.com")).toEqual({
			address: "signal.example.com:443",
			secure: true,
		});
		expect(parseSignalUrl("https://signal.example.com:8443")).toEqual({
			address: "signal.example.com:8443",
			secure: true,
		});
		expect(parseSignalUrl("[::1]:10000")).toEqual({ address: "[::1]:10000", secure: false });
		expect(parseSignalUrl(" http://[::1]:9 ")).toEqual({ address: "[::1]:9", secure: false });
	});

	it("says what is wrong with a bad url", () => {
		expect(() => parseSignalUrl("")).toThrow(/not host:port/);
		expect(() => parseSignalUrl("ftp://host:21")).toThrow(/scheme ftp/);
		expect(() => parseSignalUrl("http://host:10000/signal")).toThrow(/path/);
		expect(() => parseSignalUrl("http://user:pw@host:1")).toThrow(/credentials/);
		expect(() => parseSignalUrl("host:0")).toThrow(/port 0/);
		expect(() => parseSignalUrl("host:70000")).toThrow(/not host:port/);
	});
});
