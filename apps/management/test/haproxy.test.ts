// Two real management processes (one SQLite file) behind Debian's HAProxy,
// as the `ha` compose deployment runs them: REST and gRPC (GetServerKey,
// Login) pass through plaintext (h2c) and over TLS with ALPN h2 from a test
// CA; a backend killed with SIGKILL is taken out by the health checks and
// every request goes to the other, even before the checks notice; once it is
// back on its port it takes requests again.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { connect as connectHttp2 } from "node:http2";
import { request as httpsRequest } from "node:https";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import type { TLSSocket } from "node:tls";
import { pathToFileURL } from "node:url";
import { generateKeyPair } from "@starling/crypto";
import {
	createTestPki,
	freeLoopbackPort,
	type HaproxyBackend,
	type RunningHaproxy,
	startHaproxy,
	type TestPki,
	waitFor,
} from "@starling/lab";
import { ManagementClient } from "@starling/management-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { meta, tempDir } from "./helpers.js";
import { haproxyBackends } from "./helpers-failover.js";

const MAIN = resolve(__dirname, "../dist/main.js");
const requireHere = createRequire(__filename);

interface Instance {
	name: string;
	port: number;
	child: ChildProcess;
	stderr: () => string;
}

const data = tempDir("starling-mgmt-haproxy-");
const certDir = tempDir("starling-mgmt-haproxy-ca-");
const instances: Instance[] = [];
const proxies: RunningHaproxy[] = [];
let plain: RunningHaproxy;
let tls: RunningHaproxy;
let certs: TestPki;
/** Certificate and key in one file, as HAProxy's `crt` takes them. */
let pemFile = "";
let adminToken = "";

/** A management process on `port`, sharing the one data folder; resolves once it is ready. */
async function startInstance(name: string, port: number): Promise<Instance> {
	const child = spawn(process.execPath, [MAIN], {
		env: {
			...process.env,
			STARLING_DATA_DIR: data.path,
			STARLING_MANAGEMENT_LISTEN: `127.0.0.1:${port}`,
			STARLING_MANAGEMENT_METRICS_LISTEN: "off",
			STARLING_ADMIN_TOKEN_FILE: join(data.path, "admin-token"),
			STARLING_LOG_LEVEL: "warn",
		},
		stdio: ["ignore", "ignore", "pipe"],
	});
	let stderr = "";
	child.stderr?.on("data", (d: Buffer) => {
		stderr += d.toString();
	});
	const instance = { name, port, child, stderr: () => stderr };
	await waitFor(
		`${name} ready`,
		async () => {
			if (child.exitCode !== null) throw new Error(`${name} exited: ${stderr}`);
			return (await fetch(`http://127.0.0.1:${port}/readyz`)).ok ? true : undefined;
		},
		20_000,
		50,
	);
	return instance;
}

async function killInstance(instance: Instance): Promise<void> {
	const { child } = instance;
	if (child.exitCode !== null || child.signalCode !== null) return;
	const exited = new Promise((r) => child.once("exit", r));
	child.kill("SIGKILL");
	await exited;
}

function backends(): HaproxyBackend[] {
	return haproxyBackends(instances.map((i) => ({ name: i.name, address: `127.0.0.1:${i.port}` })));
}

async function restStatus(baseUrl: string, path = "/api/peers"): Promise<number> {
	const res = await fetch(`${baseUrl}${path}`, {
		headers: { authorization: `Token ${adminToken}` },
		signal: AbortSignal.timeout(5_000),
	});
	await res.arrayBuffer();
	return res.status;
}

async function setupKey(baseUrl: string): Promise<string> {
	const res = await fetch(`${baseUrl}/api/setup-keys`, {
		method: "POST",
		headers: { authorization: `Token ${adminToken}`, "content-type": "application/json" },
		body: JSON.stringify({
			name: "haproxy",
			type: "reusable",
			expires_in: 3600,
			auto_groups: [],
			usage_limit: 0,
		}),
	});
	expect(res.status).toBe(200);
	return ((await res.json()) as { key: string }).key;
}

/** A Login through `url` in-process (plaintext); the peer's overlay address. */
async function login(url: string, key: string, hostname: string): Promise<string> {
	const client = new ManagementClient({ url, keyPair: generateKeyPair(), timeoutMs: 5_000 });
	try {
		const res = await client.login(key, meta(hostname));
		return res.self?.address ?? "";
	} finally {
		client.close();
	}
}

/**
 * A Login over https in a child process that trusts the test CA the way an
 * agent is told to (NODE_EXTRA_CA_CERTS, read at process start), or not at
 * all. Its stdout (the address) or its error message.
 */
function loginOverTls(
	url: string,
	key: string,
	hostname: string,
	trustTestCa: boolean,
): Promise<{ code: number; out: string }> {
	const script = `
		const { ManagementClient } = await import(${JSON.stringify(pathToFileURL(requireHere.resolve("@starling/management-client")).href)});
		const { generateKeyPair } = await import(${JSON.stringify(pathToFileURL(requireHere.resolve("@starling/crypto")).href)});
		const client = new ManagementClient({ url: process.argv[1], keyPair: generateKeyPair(), timeoutMs: 5000 });
		try {
			const res = await client.login(process.argv[2], { hostname: process.argv[3], os: "linux", kernelVersion: "6.1", agentVersion: "test", osVersion: "debian 12" });
			console.log(res.self?.address ?? "");
		} catch (err) {
			console.log(err.message);
			process.exitCode = 1;
		} finally {
			client.close();
		}`;
	const env: NodeJS.ProcessEnv = { ...process.env };
	// Some machines point it at the system bundle: the child trusts exactly what the test says.
	delete env.NODE_EXTRA_CA_CERTS;
	if (trustTestCa) env.NODE_EXTRA_CA_CERTS = certs.caFile;
	return new Promise((resolvePromise) => {
		execFile(
			process.execPath,
			["--input-type=module", "-e", script, url, key, hostname],
			{ env, timeout: 20_000 },
			(err, stdout, stderr) => {
				// stderr holds Node's warnings (an IP as TLS server name), not the answer.
				resolvePromise({ code: err ? 1 : 0, out: stdout.trim() || stderr.trim() });
			},
		);
	});
}

beforeAll(async () => {
	const ports = [await freeLoopbackPort(), await freeLoopbackPort()];
	// One after the other: the first start of the empty store bootstraps the account.
	instances.push(await startInstance("management-1", ports[0]!));
	instances.push(await startInstance("management-2", ports[1]!));
	adminToken = readFileSync(join(data.path, "admin-token"), "utf8").trim();
	certs = createTestPki(certDir.path, { names: ["localhost", "127.0.0.1"] });
	pemFile = join(certDir.path, "server.pem");
	writeFileSync(
		pemFile,
		readFileSync(certs.certFile, "utf8") + readFileSync(certs.keyFile, "utf8"),
		{
			mode: 0o600,
		},
	);
	plain = await startHaproxy({ backends: backends() });
	proxies.push(plain);
	tls = await startHaproxy({ backends: backends(), tlsPemFile: pemFile });
	proxies.push(tls);
	for (const proxy of proxies) {
		for (const backend of ["management_grpc", "management_rest"]) {
			for (const i of instances) await proxy.waitForServer(backend, i.name, "UP");
		}
	}
}, 60_000);

afterAll(async () => {
	for (const proxy of proxies) await proxy.stop();
	for (const i of instances) await killInstance(i);
	data.remove();
	certDir.remove();
});

describe("management behind HAProxy", () => {
	it("passes REST and gRPC through in plaintext, spread over both instances", async () => {
		const key = await setupKey(plain.url);
		const addresses = new Set<string>();
		for (let i = 0; i < 6; i++) {
			expect(await restStatus(plain.url)).toBe(200);
			addresses.add(await login(plain.url, key, `plain-${i}`));
		}
		expect(addresses.size).toBe(6);
		const states = await plain.states();
		for (const backend of ["management_grpc", "management_rest"]) {
			for (const i of instances) {
				const row = states.find((s) => s.backend === backend && s.server === i.name);
				expect(row?.sessionsTotal, `${backend}/${i.name}`).toBeGreaterThan(0);
			}
		}
	});

	it("terminates TLS with ALPN h2: REST over h2 and HTTP/1.1, a Login from a client trusting the test CA", async () => {
		const ca = readFileSync(certs.caFile);
		// REST over HTTP/2: the proxy speaks h2 to the client and HTTP/1.1 to management.
		const session = connectHttp2(tls.url, { ca });
		try {
			await new Promise<void>((ok, fail) => {
				session.once("connect", () => ok());
				session.once("error", fail);
			});
			expect(session.alpnProtocol).toBe("h2");
			const { status, body } = await new Promise<{ status: number; body: string }>((ok, fail) => {
				const req = session.request({
					":path": "/api/peers",
					authorization: `Token ${adminToken}`,
				});
				let status = 0;
				let body = "";
				req.on("response", (h) => {
					status = Number(h[":status"]);
				});
				req.on("data", (d: Buffer) => {
					body += d.toString();
				});
				req.on("end", () => ok({ status, body }));
				req.on("error", fail);
				req.end();
			});
			expect(status).toBe(200);
			expect(Array.isArray(JSON.parse(body))).toBe(true);
		} finally {
			session.close();
		}
		// REST over HTTP/1.1 and TLS.
		const h1 = await new Promise<{ status: number; alpn: string | false }>((ok, fail) => {
			const req = httpsRequest(
				`${tls.url}/api/users/current`,
				{ ca, headers: { authorization: `Token ${adminToken}` }, ALPNProtocols: ["http/1.1"] },
				(res) => {
					const alpn = (res.socket as TLSSocket).alpnProtocol;
					res.resume();
					res.on("end", () => ok({ status: res.statusCode ?? 0, alpn }));
				},
			);
			req.on("error", fail);
			req.end();
		});
		expect(h1).toEqual({ status: 200, alpn: "http/1.1" });

		const key = await setupKey(plain.url);
		const trusted = await loginOverTls(tls.url, key, "tls-trusted", true);
		expect(trusted.code, trusted.out).toBe(0);
		expect(trusted.out).toMatch(/^100\.\d+\.\d+\.\d+\/\d+$/);
		// Without the test CA the TLS handshake fails: no login.
		const untrusted = await loginOverTls(tls.url, key, "tls-untrusted", false);
		expect(untrusted.code).toBe(1);
		expect(untrusted.out).toMatch(/certificate|UNAVAILABLE|unable to verify/i);
	});

	it("takes a killed instance out and sends every request to the other; takes it back once it is up", async () => {
		const [first, second] = instances as [Instance, Instance];
		const key = await setupKey(plain.url);
		await killInstance(first);
		// Right away, before the health checks notice: refused connections are
		// retried on the other instance (retries 2, option redispatch 1).
		for (let i = 0; i < 10; i++) {
			expect(await restStatus(plain.url)).toBe(200);
			expect(await login(plain.url, key, `after-kill-${i}`)).toMatch(/^100\./);
		}
		for (const proxy of proxies) {
			for (const backend of ["management_grpc", "management_rest"]) {
				await proxy.waitForServer(backend, first.name, "DOWN", 5_000);
				await proxy.waitForServer(backend, second.name, "UP", 1_000);
			}
		}
		// Over TLS as well, with only the second instance left.
		const overTls = await loginOverTls(tls.url, key, "tls-after-kill", true);
		expect(overTls.code, overTls.out).toBe(0);

		// Back on its port: the checks take it in again and it serves.
		instances[0] = await startInstance(first.name, first.port);
		for (const backend of ["management_grpc", "management_rest"]) {
			await plain.waitForServer(backend, first.name, "UP", 5_000);
		}
		const before = (await plain.states()).find(
			(s) => s.backend === "management_rest" && s.server === first.name,
		)!.sessionsTotal;
		for (let i = 0; i < 4; i++) expect(await restStatus(plain.url)).toBe(200);
		const after = (await plain.states()).find(
			(s) => s.backend === "management_rest" && s.server === first.name,
		)!.sessionsTotal;
		expect(after).toBeGreaterThan(before);
		expect(second.stderr()).not.toMatch(/"level":(50|60)/);
	});

	it("refuses to start on a config haproxy rejects, leaving no process behind", async () => {
		await expect(
			startHaproxy({
				backends: backends(),
				// haproxy -c fails: the certificate file does not exist.
				tlsPemFile: join(certDir.path, "missing.pem"),
			}),
		).rejects.toThrow(/haproxy refuses its config/);
	});
});
