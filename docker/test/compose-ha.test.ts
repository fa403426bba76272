// The `ha` deployment for real (docker/docker-compose.ha.yml): PostgreSQL,
// NATS, two management, two signal and two relay instances behind HAProxy,
// which terminates TLS with a certificate from a test CA made here. Two agents
// in lab namespaces trust that CA (NODE_EXTRA_CA_CERTS), join through
// https:// and ping each other; the REST API answers through HAProxy over
// HTTP/2 and HTTP/1.1. Then management-1 is killed (`docker kill`): the REST
// API keeps answering, the agents reconnect through HAProxy to management-2
// and keep pinging. Everything is torn down even on failure.

import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect as connectHttp2 } from "node:http2";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
	type AgentHost,
	agentsBehindRootUplink,
	waitFor,
	waitForPingsBothWays,
} from "../../apps/agent/test/fixture.js";
import { createTestPki, Lab, labUnavailable } from "../../packages/lab/dist/index.js";
import { ComposeProject, run } from "./stack.js";

const PROJECT = "starlingciha";
/** Apart from compose.test.ts's ranges, so a leftover of one never meets the other. */
const DOCKER_SUBNET = "198.18.210.0/24";
const UPLINK_SUBNET = "198.18.211.0/30";
const AGENT_LAN = "198.18.212.0/24";
/** Containers of the deployment: postgres, nats, haproxy, 2 x management, signal, relay, coturn. */
const CONTAINERS = 11;

const stack = new ComposeProject(PROJECT, [
	"docker/docker-compose.ha.yml",
	"docker/test/compose.ci.yml",
]);
const tlsDir = join(stack.workDir, "tls");

/** Health of every container of the project, by service name. */
async function healthByService(): Promise<Map<string, string>> {
	const ids = (await stack.mustCompose(["ps", "-q"])).trim().split("\n").filter(Boolean);
	if (ids.length === 0) return new Map();
	const r = await run("docker", [
		"inspect",
		"-f",
		'{{index .Config.Labels "com.docker.compose.service"}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}',
		...ids,
	]);
	return new Map(
		r.stdout
			.trim()
			.split("\n")
			.map((line) => line.split(" ") as [string, string]),
	);
}

async function waitHealthy(count: number, timeoutMs = 120_000): Promise<number> {
	const started = Date.now();
	await waitFor(
		`${count} containers healthy`,
		async () => {
			const health = await healthByService();
			const states = [...health.values()];
			if (states.length !== count || !states.every((s) => s === "healthy")) {
				throw new Error(JSON.stringify(Object.fromEntries(health)));
			}
			return true;
		},
		timeoutMs,
		1_000,
	);
	return (Date.now() - started) / 1000;
}

describe("docker compose `ha` deployment: HAProxy with TLS in front of two of each", () => {
	let lab: Lab;
	let publicHost = "";
	let baseUrl = "";
	let caFile = "";
	let adminToken = "";
	const agents: AgentHost[] = [];

	/** REST through HAProxy over HTTP/1.1 and TLS, trusting the test CA only. */
	function api(
		method: string,
		path: string,
		body?: unknown,
	): Promise<{ status: number; json: unknown }> {
		return new Promise((ok, fail) => {
			const req = httpsRequest(
				`${baseUrl}${path}`,
				{
					method,
					ca: readFileSync(caFile),
					headers: { authorization: `Token ${adminToken}`, "content-type": "application/json" },
					timeout: 10_000,
				},
				(res) => {
					let text = "";
					res.on("data", (d: Buffer) => {
						text += d.toString();
					});
					res.on("end", () => {
						let json: unknown = null;
						try {
							json = JSON.parse(text);
						} catch {
							// not JSON
						}
						ok({ status: res.statusCode ?? 0, json });
					});
				},
			);
			req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
			req.on("error", fail);
			req.end(body === undefined ? undefined : JSON.stringify(body));
		});
	}

	beforeAll(async () => {
		if (labUnavailable)
			throw new Error(`the compose test needs the network lab: ${labUnavailable}`);
		// A crashed earlier run's stack (the lab sweeps its own namespaces).
		await stack.removeLeftovers({
			STARLING_PUBLIC_HOST: "cleanup.invalid",
			STARLING_RELAY_SECRET: "x",
			STARLING_POSTGRES_PASSWORD: "x",
		});

		lab = await Lab.create("dkrha");
		const made = await agentsBehindRootUplink(lab, { lan: AGENT_LAN, uplinkSubnet: UPLINK_SUBNET });
		agents.push(...made.agents);
		publicHost = made.uplink.rootAddress;
		baseUrl = `https://${publicHost}:443`;

		// The operator's certificate: here from a test CA, for the address agents use.
		const pki = join(stack.workDir, "pki");
		mkdirSync(pki);
		const certs = createTestPki(pki, { names: [publicHost] });
		caFile = certs.caFile;
		mkdirSync(tlsDir);
		// HAProxy's `crt`: certificate then key in one file, root's, mode 0600.
		writeFileSync(
			join(tlsDir, "server.pem"),
			readFileSync(certs.certFile, "utf8") + readFileSync(certs.keyFile, "utf8"),
			{ mode: 0o600 },
		);

		stack.writeEnv({
			STARLING_PUBLIC_HOST: publicHost,
			STARLING_RELAY_SECRET: randomBytes(24).toString("base64"),
			STARLING_POSTGRES_PASSWORD: randomBytes(18).toString("hex"),
			STARLING_BIND_ADDRESS: publicHost,
			STARLING_STUN_BIND_ADDRESS: publicHost,
			STARLING_TLS_DIR: tlsDir,
			STARLING_CI_SUBNET: DOCKER_SUBNET,
			STARLING_IMAGE_PREFIX: process.env.STARLING_IMAGE_PREFIX ?? "starling-ci",
			STARLING_LOG_LEVEL: "info",
		});
		let seconds: number;
		try {
			await stack.mustCompose(["up", "-d", "--no-build"], 240_000);
			seconds = await waitHealthy(CONTAINERS);
		} catch (err) {
			// Which container is not healthy, and why (the stack is removed in afterAll).
			console.error((await stack.compose(["ps"])).stdout);
			console.error((await stack.compose(["logs", "--no-color", "--tail", "30"])).stdout);
			throw err;
		}
		console.log(`ha stack healthy ${seconds.toFixed(1)} s after docker-compose up -d returned`);

		adminToken = await stack.adminToken("management-1");
		// The agents trust the test CA as an operator would tell them to.
		for (const a of agents) await a.startDaemon({ NODE_EXTRA_CA_CERTS: caFile });
	}, 420_000);

	afterEach(async (context) => {
		if (context.task.result?.state !== "fail") return;
		for (const a of agents) console.error(a.logs());
		console.error((await stack.compose(["logs", "--no-color", "--tail", "40"])).stdout);
	});

	afterAll(async () => {
		const down = await stack.down();
		await lab?.destroy();
		stack.removeWorkDir();
		expect(down.code, down.stderr).toBe(0);
		expect(await stack.leftContainers()).toBe("");
	});

	it("serves the REST API through HAProxy over https with the test CA, on HTTP/2 and HTTP/1.1", async () => {
		expect((await api("GET", "/api/users/current")).status).toBe(200);
		const session = connectHttp2(baseUrl, { ca: readFileSync(caFile) });
		try {
			await new Promise<void>((ok, fail) => {
				session.once("connect", () => ok());
				session.once("error", fail);
			});
			expect(session.alpnProtocol).toBe("h2");
			const status = await new Promise<number>((ok, fail) => {
				const req = session.request({
					":path": "/api/peers",
					authorization: `Token ${adminToken}`,
				});
				req.on("response", (h) => ok(Number(h[":status"])));
				req.on("error", fail);
				req.end();
			});
			expect(status).toBe(200);
		} finally {
			session.close();
		}
		// Without the CA the handshake is refused.
		await expect(
			new Promise((ok, fail) => {
				const req = httpsRequest(`${baseUrl}/api/peers`, { ca: [] }, ok);
				req.on("error", fail);
				req.end();
			}),
		).rejects.toThrow(/certificate/i);
	});

	it("two agents join over https:// through HAProxy and ping each other", async () => {
		const key = await api("POST", "/api/setup-keys", {
			name: "compose-ha-test",
			type: "reusable",
			expires_in: 3600,
			auto_groups: [],
			usage_limit: 0,
		});
		expect(key.status).toBe(200);
		const setupKey = (key.json as { key: string }).key;
		for (const a of agents) await a.up(baseUrl, setupKey);
		const [a, b] = agents as [AgentHost, AgentHost];
		const { ipA, ipB } = await waitForPingsBothWays(a, b, 45_000);
		for (const agent of agents) {
			const s = await agent.status();
			expect(s.management.connected).toBe(true);
			expect(s.signal.connected).toBe(true);
		}
		const peers = await api("GET", "/api/peers");
		expect((peers.json as { ip: string }[]).map((p) => p.ip).sort()).toEqual([ipA, ipB].sort());
	});

	it("docker kill management-1: REST keeps answering and the agents reconnect to management-2 and keep pinging", async () => {
		const [a, b] = agents as [AgentHost, AgentHost];
		const ipB = await b.overlayIp();
		const pinger = a.host.spawn("ping", ["-n", "-i", "0.2", "-w", "30", ipB], {
			name: "ping-during-kill",
		});
		await new Promise((r) => setTimeout(r, 2_000));
		const id = (await stack.mustCompose(["ps", "-q", "management-1"])).trim();
		const killed = await run("docker", ["kill", id]);
		expect(killed.code, killed.stderr).toBe(0);

		// Every REST call right after the kill is answered (HAProxy retries on the other instance).
		for (let i = 0; i < 10; i++) expect((await api("GET", "/api/peers")).status).toBe(200);
		const key = await api("POST", "/api/setup-keys", {
			name: "after-kill",
			type: "one-off",
			expires_in: 3600,
			auto_groups: [],
			usage_limit: 1,
		});
		expect(key.status).toBe(200);
		expect((await healthByService()).get("management-1")).not.toBe("healthy");

		for (const agent of agents) {
			await waitFor(
				`${agent.name} connected to management again`,
				async () => {
					const s = await agent.status();
					return s.management.connected && s.signal.connected ? true : undefined;
				},
				60_000,
			);
		}
		await pinger.exited;
		const summary = /(\d+) packets transmitted, (\d+) received/.exec(pinger.output());
		expect(summary, pinger.output()).not.toBeNull();
		const [sent, received] = [Number(summary![1]), Number(summary![2])];
		console.log(`pings across the kill of management-1: ${received}/${sent} answered`);
		expect(received / sent).toBeGreaterThan(0.9);
		const peers = await api("GET", "/api/peers");
		expect(peers.status).toBe(200);
		expect((peers.json as { connected: boolean }[]).every((p) => p.connected)).toBe(true);

		// Started again, it is healthy and back behind HAProxy.
		await stack.mustCompose(["start", "management-1"]);
		await waitHealthy(CONTAINERS, 60_000);
		for (let i = 0; i < 4; i++) expect((await api("GET", "/api/peers")).status).toBe(200);
	}, 180_000);
});
