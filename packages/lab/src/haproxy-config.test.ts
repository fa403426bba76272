import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import {
	type HaproxyBackend,
	type HaproxyConfig,
	HaproxyConfigError,
	parseHaproxyStat,
	renderHaproxyConfig,
} from "./haproxy-config.js";

const management = (n: number): HaproxyBackend[] => {
	const servers = Array.from({ length: n }, (_, i) => ({
		name: `management-${i + 1}`,
		address: `127.0.0.1:${33073 + i}`,
	}));
	return [
		{
			name: "management_grpc",
			protocol: "grpc",
			pathPrefixes: ["/starling.v1.ManagementService/"],
			servers,
			health: { path: "/readyz", protocol: "h1" },
		},
		{
			name: "management_rest",
			protocol: "http",
			pathPrefixes: [],
			servers,
			health: { path: "/readyz", protocol: "h1" },
		},
	];
};

const base: HaproxyConfig = {
	listen: { address: "127.0.0.1", port: 8443 },
	backends: management(2),
};

describe("renderHaproxyConfig", () => {
	it("routes gRPC by service path over h2c and the rest to HTTP/1.1, each server health-checked", () => {
		const cfg = renderHaproxyConfig(base);
		expect(cfg).toContain("    bind 127.0.0.1:8443\n");
		expect(cfg).toContain(
			"    use_backend management_grpc if { path_beg /starling.v1.ManagementService/ }",
		);
		expect(cfg).toContain("    default_backend management_rest");
		expect(cfg).toContain(
			"    server management-1 127.0.0.1:33073 proto h2 check check-proto h1\n",
		);
		expect(cfg).toContain("    server management-2 127.0.0.1:33074 check check-proto h1\n");
		expect(cfg).toContain(
			"    http-check send meth GET uri /readyz ver HTTP/1.1 hdr host localhost",
		);
		for (const line of [
			"timeout client 1h",
			"timeout server 1h",
			"timeout tunnel 1h",
			"retries 2",
			"option redispatch 1",
			"default-server inter 500ms fall 2 rise 2",
		]) {
			expect(cfg).toContain(`    ${line}\n`);
		}
		expect(cfg).not.toContain("stats socket");
	});

	it("terminates TLS with ALPN h2 and http/1.1 when given a PEM file", () => {
		const cfg = renderHaproxyConfig({ ...base, tlsPemFile: "/etc/haproxy/tls/server.pem" });
		expect(cfg).toContain(
			"    bind 127.0.0.1:8443 ssl crt /etc/haproxy/tls/server.pem alpn h2,http/1.1\n",
		);
	});

	it("checks another port and protocol when asked, and takes the timeouts and interval given", () => {
		const cfg = renderHaproxyConfig({
			...base,
			adminSocket: "/run/haproxy/admin.sock",
			checkIntervalMs: 2000,
			streamIdleTimeout: "24h",
			backends: [
				{
					name: "signal",
					protocol: "grpc",
					pathPrefixes: ["/starling.v1.SignalService/"],
					servers: [{ name: "signal-1", address: "signal-1:10000" }],
					health: { path: "/readyz", protocol: "h1", port: 9091 },
				},
			],
		});
		expect(cfg).toContain(
			"    server signal-1 signal-1:10000 proto h2 check check-proto h1 port 9091\n",
		);
		expect(cfg).toContain("    stats socket /run/haproxy/admin.sock mode 600 level admin\n");
		expect(cfg).toContain("    timeout server 24h\n");
		expect(cfg).toContain("    default-server inter 2000ms fall 2 rise 2\n");
		expect(cfg).not.toContain("default_backend");
		// A server's own check port wins over the backend's.
		const own = renderHaproxyConfig({
			...base,
			backends: [
				{
					name: "signal",
					protocol: "grpc",
					pathPrefixes: [],
					servers: [{ name: "s1", address: "127.0.0.1:10000", checkPort: 19091 }],
					health: { path: "/readyz", protocol: "h1", port: 9091 },
				},
			],
		});
		expect(own).toContain(
			"    server s1 127.0.0.1:10000 proto h2 check check-proto h1 port 19091\n",
		);
	});

	it("is accepted by haproxy -c (Debian's haproxy 2.6), plaintext and TLS", () => {
		const dir = mkdtempSync(join(tmpdir(), "starling-haproxy-config-"));
		try {
			// A throwaway self-signed certificate: `-c` loads the crt file.
			execFileSync(
				"openssl",
				[
					"req",
					"-x509",
					"-newkey",
					"ec",
					"-pkeyopt",
					"ec_paramgen_curve:P-256",
					"-nodes",
					"-keyout",
					join(dir, "k.pem"),
					"-out",
					join(dir, "c.pem"),
					"-days",
					"1",
					"-subj",
					"/CN=localhost",
				],
				{ stdio: "ignore" },
			);
			execFileSync("sh", ["-c", `cat ${dir}/c.pem ${dir}/k.pem > ${dir}/server.pem`]);
			for (const tlsPemFile of [undefined, join(dir, "server.pem")]) {
				const file = join(dir, "haproxy.cfg");
				writeFileSync(
					file,
					renderHaproxyConfig({ ...base, tlsPemFile, adminSocket: join(dir, "admin.sock") }),
				);
				// Throws with haproxy's message when it refuses the file.
				execFileSync("haproxy", ["-c", "-q", "-f", file], { stdio: ["ignore", "pipe", "pipe"] });
			}
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});

	it("renders docker-compose.ha.yml's haproxy.cfg: the checked-in file is current", () => {
		const script = resolve(__dirname, "../../../docker/haproxy/render.mjs");
		// Exit 1 with a message when docker/haproxy/haproxy.cfg differs from what it renders.
		execFileSync(process.execPath, [script, "--check"], { stdio: ["ignore", "pipe", "pipe"] });
		const cfg = readFileSync(resolve(__dirname, "../../../docker/haproxy/haproxy.cfg"), "utf8");
		expect(cfg).toContain(
			"    server signal-2 signal-2:10000 proto h2 resolvers dns init-addr libc,none check check-proto h1 port 9091\n",
		);
		expect(cfg).toContain("    user haproxy\n");
		expect(cfg).toContain("    monitor-uri /healthz\n");
	});

	it("refuses what it cannot render, naming it", () => {
		const bad: [string, HaproxyConfig][] = [
			["no backends", { ...base, backends: [] }],
			["port 0", { ...base, listen: { address: "127.0.0.1", port: 0 } }],
			["no servers", { ...base, backends: [{ ...management(1)[0]!, servers: [] }] }],
			[
				"not host:port",
				{
					...base,
					backends: [{ ...management(1)[0]!, servers: [{ name: "a", address: "nohost" }] }],
				},
			],
			[
				"not unique",
				{
					...base,
					backends: [
						{
							...management(1)[0]!,
							servers: [
								{ name: "a", address: "h:1" },
								{ name: "a", address: "h:2" },
							],
						},
					],
				},
			],
			["twice", { ...base, backends: [management(1)[0]!, management(1)[0]!] }],
			[
				"more than one backend without path prefixes",
				{
					...base,
					backends: [management(1)[1]!, { ...management(1)[1]!, name: "other" }],
				},
			],
			[
				"bad path prefix",
				{ ...base, backends: [{ ...management(1)[0]!, pathPrefixes: ["/a b"] }] },
			],
			["is not [A-Za-z0-9_.-]", { ...base, backends: [{ ...management(1)[0]!, name: "a b" }] }],
			["below 100", { ...base, checkIntervalMs: 10 }],
			["resolver 'nowhere' is not host:port", { ...base, resolver: "nowhere" }],
			["monitor", { ...base, monitor: "127.0.0.1:0" }],
			["runAs", { ...base, runAs: { user: "a b", group: "x" } }],
		];
		for (const [message, config] of bad) {
			expect(() => renderHaproxyConfig(config), message).toThrow(HaproxyConfigError);
			expect(() => renderHaproxyConfig(config), message).toThrow(message);
		}
	});
});

describe("parseHaproxyStat", () => {
	it("reads backend, server, status and total sessions from show stat", () => {
		const csv = [
			"# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight",
			"starling,FRONTEND,,,1,2,262124,7,0,0,0,0,0,,,,,OPEN,",
			"management_grpc,management-1,0,0,0,1,,3,0,0,,0,,0,0,0,0,UP,1",
			"management_grpc,management-2,0,0,0,1,,4,0,0,,0,,0,0,0,0,DOWN 1/2,1",
			"",
		].join("\n");
		expect(parseHaproxyStat(csv)).toEqual([
			{ backend: "starling", server: "FRONTEND", status: "OPEN", sessionsTotal: 7 },
			{ backend: "management_grpc", server: "management-1", status: "UP", sessionsTotal: 3 },
			{ backend: "management_grpc", server: "management-2", status: "DOWN 1/2", sessionsTotal: 4 },
		]);
		expect(() => parseHaproxyStat("Unknown command\n")).toThrow(/not a 'show stat' answer/);
	});
});
