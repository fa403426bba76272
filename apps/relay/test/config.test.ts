import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseListen } from "../src/config.js";
import { SECRET } from "./helpers.js";

describe("relay configuration", () => {
	it("has defaults for everything but the secret", () => {
		expect(loadConfig({ STARLING_RELAY_SECRET: SECRET })).toEqual({
			host: "127.0.0.1",
			port: 33080,
			secret: SECRET,
			tls: undefined,
			maxConnections: 10_000,
			maxBufferedBytes: 1024 * 1024,
			maxTotalBufferedBytes: 256 * 1024 * 1024,
			helloTimeoutMs: 5_000,
			pingIntervalMs: 25_000,
			logLevel: "info",
		});
	});

	it("reads every variable", () => {
		const config = loadConfig({
			STARLING_RELAY_SECRET: SECRET,
			STARLING_RELAY_LISTEN: "[::]:443",
			STARLING_RELAY_MAX_CONNECTIONS: "50",
			STARLING_RELAY_MAX_BUFFERED_BYTES: "65536",
			STARLING_RELAY_MAX_TOTAL_BUFFERED_BYTES: "1048576",
			STARLING_RELAY_HELLO_TIMEOUT_MS: "1000",
			STARLING_RELAY_PING_INTERVAL_MS: "5000",
			STARLING_LOG_LEVEL: "debug",
			STARLING_UNRELATED: "ignored",
		});
		expect(config).toMatchObject({
			host: "::",
			port: 443,
			maxConnections: 50,
			maxBufferedBytes: 65_536,
			maxTotalBufferedBytes: 1_048_576,
			helloTimeoutMs: 1_000,
			pingIntervalMs: 5_000,
			logLevel: "debug",
		});
	});

	it("treats empty values as unset", () => {
		expect(() => loadConfig({ STARLING_RELAY_SECRET: "" })).toThrow(
			/STARLING_RELAY_SECRET is required/,
		);
		expect(loadConfig({ STARLING_RELAY_SECRET: SECRET, STARLING_RELAY_LISTEN: "" }).port).toBe(
			33080,
		);
	});

	it("names the variable in every error and never echoes the secret", () => {
		const cases: [Record<string, string>, RegExp][] = [
			[{}, /^STARLING_RELAY_SECRET is required/],
			[
				{ STARLING_RELAY_SECRET: "fifteen bytes.." },
				/^STARLING_RELAY_SECRET must be at least 16 bytes/,
			],
			[{ STARLING_RELAY_LISTEN: "localhost" }, /^STARLING_RELAY_LISTEN must be host:port/],
			[{ STARLING_RELAY_LISTEN: "[1.2.3.4]:1" }, /^STARLING_RELAY_LISTEN 1.2.3.4 is not an IPv6/],
			[
				{ STARLING_RELAY_MAX_CONNECTIONS: "1e3" },
				/^STARLING_RELAY_MAX_CONNECTIONS expected a whole/,
			],
			[{ STARLING_RELAY_MAX_BUFFERED_BYTES: "100" }, /^STARLING_RELAY_MAX_BUFFERED_BYTES/],
			[
				{
					STARLING_RELAY_MAX_BUFFERED_BYTES: "2097152",
					STARLING_RELAY_MAX_TOTAL_BUFFERED_BYTES: "1048576",
				},
				/^STARLING_RELAY_MAX_TOTAL_BUFFERED_BYTES must be at least/,
			],
			[
				{ STARLING_RELAY_TLS_CERT_FILE: "/tmp/x" },
				/^STARLING_RELAY_TLS_KEY_FILE is not set but STARLING_RELAY_TLS_CERT_FILE is/,
			],
			[
				{
					STARLING_RELAY_TLS_CERT_FILE: "/nonexistent/c",
					STARLING_RELAY_TLS_KEY_FILE: "/nonexistent/k",
				},
				/^STARLING_RELAY_TLS_CERT_FILE cannot be read/,
			],
			[{ STARLING_LOG_LEVEL: "loud" }, /^STARLING_LOG_LEVEL/],
		];
		for (const [env, message] of cases) {
			const full = { STARLING_RELAY_SECRET: SECRET, ...env };
			if (!("STARLING_RELAY_SECRET" in env) && Object.keys(env).length === 0) {
				delete (full as Record<string, string>).STARLING_RELAY_SECRET;
			}
			let error: unknown;
			try {
				loadConfig(full);
			} catch (err) {
				error = err;
			}
			expect(error, JSON.stringify(env)).toBeInstanceOf(ConfigError);
			expect((error as Error).message).toMatch(message);
			expect((error as Error).message).not.toContain(SECRET);
			expect((error as Error).message).not.toContain("fifteen bytes");
		}
	});

	it("parses listen addresses", () => {
		expect(parseListen("0.0.0.0:33080")).toEqual({ host: "0.0.0.0", port: 33080 });
		expect(parseListen("relay.example.com:0")).toEqual({ host: "relay.example.com", port: 0 });
		expect(parseListen("[::1]:1")).toEqual({ host: "::1", port: 1 });
		expect(typeof parseListen("::1:1")).toBe("string");
		expect(typeof parseListen("a_b:1")).toBe("string");
	});
});
