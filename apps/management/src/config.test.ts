import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadManagementConfig } from "./config.js";

const SECRET = "0123456789abcdef0123456789abcdef";
const dir = mkdtempSync(join(tmpdir(), "starling-mgmt-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("management service URLs", () => {
	it("defaults to a local signal server, no STUN and no relay", () => {
		expect(loadManagementConfig({})).toMatchObject({
			signalUrl: "http://127.0.0.1:10000",
			stunUrls: [],
			relayUrls: [],
			store: "sqlite",
		});
	});

	it("derives all three from STARLING_PUBLIC_HOST, the relay only with a secret", () => {
		expect(loadManagementConfig({ STARLING_PUBLIC_HOST: "vpn.example.com" })).toMatchObject({
			signalUrl: "http://vpn.example.com:10000",
			stunUrls: ["stun:vpn.example.com:3478"],
			relayUrls: [],
		});
		expect(
			loadManagementConfig({ STARLING_PUBLIC_HOST: "2001:db8::1", STARLING_RELAY_SECRET: SECRET }),
		).toMatchObject({
			signalUrl: "http://[2001:db8::1]:10000",
			stunUrls: ["stun:[2001:db8::1]:3478"],
			relayUrls: ["ws://[2001:db8::1]:33080"],
		});
	});

	it("derives one STUN URL per port of STARLING_STUN_PORTS", () => {
		expect(
			loadManagementConfig({
				STARLING_PUBLIC_HOST: "vpn.example.com",
				STARLING_STUN_PORTS: "3478, 3479",
			}).stunUrls,
		).toEqual(["stun:vpn.example.com:3478", "stun:vpn.example.com:3479"]);
		// Explicit URLs win; without a public host there is nothing to derive.
		expect(
			loadManagementConfig({
				STARLING_PUBLIC_HOST: "vpn.example.com",
				STARLING_STUN_PORTS: "3479",
				STARLING_STUN_URLS: "stun:stun.example.net:3478",
			}).stunUrls,
		).toEqual(["stun:stun.example.net:3478"]);
		expect(loadManagementConfig({ STARLING_STUN_PORTS: "3478,3479" }).stunUrls).toEqual([]);
	});

	it("keeps explicit URLs over derived ones", () => {
		const config = loadManagementConfig({
			STARLING_PUBLIC_HOST: "vpn.example.com",
			STARLING_SIGNAL_URL: "https://vpn.example.com:443",
			STARLING_STUN_URLS: "stun:stun.example.net:3478, stun:vpn.example.com:3478",
			STARLING_RELAY_URLS: "wss://vpn.example.com/relay",
			STARLING_RELAY_SECRET: SECRET,
		});
		expect(config).toMatchObject({
			signalUrl: "https://vpn.example.com:443",
			stunUrls: ["stun:stun.example.net:3478", "stun:vpn.example.com:3478"],
			relayUrls: ["wss://vpn.example.com/relay"],
		});
	});

	it("reads STARLING_CONFIG_FILE, the environment winning", () => {
		const file = join(dir, "management.json");
		writeFileSync(
			file,
			JSON.stringify({
				STARLING_PUBLIC_HOST: "file.example.com",
				STARLING_RELAY_SECRET: SECRET,
				STARLING_SYNC_FLUSH_MS: 10,
				STARLING_STUN_URLS: ["stun:a.example.com:3478", "stun:b.example.com:3478"],
			}),
		);
		const config = loadManagementConfig({
			STARLING_CONFIG_FILE: file,
			STARLING_PUBLIC_HOST: "env.example.com",
		});
		expect(config).toMatchObject({
			signalUrl: "http://env.example.com:10000",
			stunUrls: ["stun:a.example.com:3478", "stun:b.example.com:3478"],
			relayUrls: ["ws://env.example.com:33080"],
			syncFlushMs: 10,
		});
	});

	it("serves metrics on 127.0.0.1:9090 unless told another address or off", () => {
		expect(loadManagementConfig({}).metricsListen).toEqual({ host: "127.0.0.1", port: 9090 });
		expect(
			loadManagementConfig({ STARLING_MANAGEMENT_METRICS_LISTEN: "[::]:9100" }).metricsListen,
		).toEqual({ host: "::", port: 9100 });
		expect(
			loadManagementConfig({ STARLING_MANAGEMENT_METRICS_LISTEN: "off" }).metricsListen,
		).toBeUndefined();
	});

	it("names the variable when a value is wrong, wherever it came from", () => {
		const file = join(dir, "bad.json");
		writeFileSync(file, JSON.stringify({ STARLING_SYNC_FLUSH_MS: 5000 }));
		const cases: [NodeJS.ProcessEnv, RegExp][] = [
			[{ STARLING_PUBLIC_HOST: "not a host" }, /^invalid STARLING_PUBLIC_HOST: /],
			[{ STARLING_SIGNAL_URL: "nope" }, /^invalid STARLING_SIGNAL_URL: /],
			[
				{ STARLING_MANAGEMENT_METRICS_LISTEN: "9090" },
				/^invalid STARLING_MANAGEMENT_METRICS_LISTEN: must be host:port/,
			],
			[{ STARLING_STUN_PORTS: "3478,70000" }, /^invalid STARLING_STUN_PORTS: /],
			[{ STARLING_STUN_PORTS: "3478,x" }, /^invalid STARLING_STUN_PORTS: /],
			[{ STARLING_STUN_PORTS: " , " }, /^invalid STARLING_STUN_PORTS: expected at least one port/],
			[{ STARLING_RELAY_URLS: "ws://r:33080" }, /^invalid STARLING_RELAY_SECRET: required/],
			[{ STARLING_CONFIG_FILE: file }, /^invalid STARLING_SYNC_FLUSH_MS: /],
			[{ STARLING_STORE: "mysql" }, /^invalid STARLING_STORE: expected one of: sqlite, postgres$/],
			[
				{ STARLING_STORE: "postgres" },
				/^invalid STARLING_POSTGRES_DSN: required when STARLING_STORE=postgres/,
			],
			[
				{ STARLING_STORE: "postgres", STARLING_POSTGRES_DSN: "postgres://u:pw@db.example" },
				/^invalid STARLING_POSTGRES_DSN: no database name/,
			],
			[{ STARLING_CONFIG_FILE: join(dir, "none.json") }, /^STARLING_CONFIG_FILE cannot be read/],
			[
				{ STARLING_NATS_URL: "http://n:4222" },
				/^invalid STARLING_NATS_URL: expected comma-separated/,
			],
			[{ STARLING_NATS_URL: "nats://n:4222/x" }, /^invalid STARLING_NATS_URL: /],
			[{ STARLING_NATS_URL: " , " }, /^invalid STARLING_NATS_URL: expected nats/],
			[{ STARLING_INSTANCE_ID: "a.b" }, /^invalid STARLING_INSTANCE_ID: /],
			[
				{ STARLING_INSTANCE_HEARTBEAT_MS: "5000", STARLING_INSTANCE_EXPIRE_MS: "6000" },
				/^invalid STARLING_INSTANCE_EXPIRE_MS: must be at least twice/,
			],
		];
		for (const [env, expected] of cases) {
			expect(() => loadManagementConfig(env)).toThrow(ConfigError);
			expect(() => loadManagementConfig(env)).toThrow(expected);
		}
	});

	it("several instances: NATS servers (credentials never echoed), the instance id, the check and heartbeat", () => {
		const single = loadManagementConfig({});
		expect(single.natsUrls).toEqual([]);
		expect(single.instanceId).toMatch(/^m-[A-Za-z0-9]{12}$/);
		expect(loadManagementConfig({}).instanceId).not.toBe(single.instanceId);
		expect([single.syncCheckMs, single.instanceHeartbeatMs, single.instanceExpireMs]).toEqual([
			3000, 5000, 15_000,
		]);
		const many = loadManagementConfig({
			STARLING_NATS_URL: "nats://a:4222, nats://u:p@b:4223",
			STARLING_INSTANCE_ID: "mgmt-1",
		});
		expect(many.natsUrls).toEqual(["nats://a:4222", "nats://u:p@b:4223"]);
		expect(many.instanceId).toBe("mgmt-1");
		expect(() => loadManagementConfig({ STARLING_NATS_URL: "tcp://user:secret@h:1" })).toThrow(
			/\*\*\*@h:1/,
		);
		expect(() => loadManagementConfig({ STARLING_NATS_URL: "tcp://user:secret@h:1" })).not.toThrow(
			/secret/,
		);
	});
});
