// Two management instances active-active on one database with a real
// nats-server between them, agents over real gRPC. The store backend is a
// parameter: every case runs on a SQLite file and on a real PostgreSQL.
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { generateKeyPair } from "@starling/crypto";
import { freeLoopbackPort } from "@starling/lab";
import type { NetworkMap } from "@starling/proto";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RunningManagement } from "../src/server.js";
import { makeSetupKey, meta, newAgent, startSync, type TestAgent, tempDir } from "./helpers.js";
import {
	type ClusterStoreBackend,
	type ManagementProcess,
	postgresBackend,
	sqliteBackend,
	startClusterBase,
	startInstance,
	startInstanceProcess,
} from "./helpers-cluster.js";

const postgres = postgresBackend();
const BACKENDS: ClusterStoreBackend[] = [sqliteBackend, postgres];
afterAll(() => postgres.stopCluster());

const names = (m: NetworkMap) => m.peers.map((p) => p.name);
const connectedOf = (m: NetworkMap, name: string) =>
	m.peers.find((p) => p.name === name)?.connected;

describe.each(BACKENDS)(
	"two management instances on one $name database, NATS between them",
	(backend) => {
		let base: Awaited<ReturnType<typeof startClusterBase>>;
		const instances: RunningManagement[] = [];
		const processes: ManagementProcess[] = [];
		const agents: TestAgent[] = [];
		let token: string;

		beforeEach(async () => {
			base = await startClusterBase(backend);
		});
		afterEach(async () => {
			for (const a of agents.splice(0)) a.close();
			for (const m of instances.splice(0)) await m.close();
			for (const p of processes.splice(0)) {
				if (p.child.exitCode === null && p.child.signalCode === null) {
					p.child.kill("SIGKILL");
					await new Promise((r) => p.child.once("exit", r));
				}
			}
			await base.stop();
		});

		async function instance(env: Record<string, string> = {}): Promise<RunningManagement> {
			const m = await startInstance({ ...base.env, ...env });
			instances.push(m);
			if (m.bootstrap) token = m.bootstrap.plainToken;
			return m;
		}
		function agent(port: number, keyPair = generateKeyPair()): TestAgent {
			const a = newAgent(port, keyPair);
			agents.push(a);
			return a;
		}
		async function rest(port: number, method: string, path: string, body?: unknown) {
			const res = await fetch(`http://127.0.0.1:${port}${path}`, {
				method,
				headers: {
					authorization: `Token ${token}`,
					...(body === undefined ? {} : { "content-type": "application/json" }),
				},
				body: body === undefined ? undefined : JSON.stringify(body),
			});
			return { status: res.status, json: (await res.json()) as unknown };
		}
		async function peerByName(port: number, name: string) {
			const { json } = await rest(port, "GET", "/api/peers");
			return (json as { id: string; name: string; connected: boolean }[]).find(
				(p) => p.name === name,
			);
		}
		async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 5000) {
			const deadline = Date.now() + timeoutMs;
			while (!(await cond())) {
				if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
				await new Promise((r) => setTimeout(r, 25));
			}
		}

		it("a change through REST on A reaches an agent on B within 1 s; a peer registering through B appears on A", async () => {
			const a = await instance();
			const b = await instance();
			const key = await makeSetupKey(a);
			const onB = agent(b.port);
			const onA = agent(a.port);
			await onB.client.login(key, meta("on-b"));
			await onA.client.login(key, meta("on-a"));
			await startSync(onB);
			await startSync(onA);
			await onB.waitForMap((m) => connectedOf(m, "on-a") === true);

			const target = await peerByName(a.port, "on-a");
			const t0 = Date.now();
			expect(
				(await rest(a.port, "PUT", `/api/peers/${target!.id}`, { name: "renamed" })).status,
			).toBe(200);
			await onB.waitForMap((m) => names(m).includes("renamed"), 1000);
			const renameMs = Date.now() - t0;
			expect(renameMs).toBeLessThan(1000);

			// A peer registered through B reaches the agent held by A.
			const joiner = agent(b.port);
			const t1 = Date.now();
			await joiner.client.login(key, meta("joined-on-b"));
			await onA.waitForMap((m) => names(m).includes("joined-on-b"), 1000);
			const joinMs = Date.now() - t1;
			expect(joinMs).toBeLessThan(1000);
			console.log(
				`cluster: REST change on A reached B's agent in ${renameMs} ms; a join through B reached A's agent in ${joinMs} ms`,
			);
			// Its connection through B shows on A's agent too.
			await startSync(joiner);
			await onA.waitForMap((m) => connectedOf(m, "joined-on-b") === true, 1000);
		});

		it("restarting A leaves B's agents connected; A's own sessions of the previous run are cleared", async () => {
			const a = await instance({ STARLING_INSTANCE_ID: "mgmt-a" });
			const b = await instance({ STARLING_INSTANCE_ID: "mgmt-b" });
			const key = await makeSetupKey(a);
			const onB = agent(b.port);
			await onB.client.login(key, meta("on-b"));
			await startSync(onB);
			const onA = agent(a.port);
			await onA.client.login(key, meta("on-a"));
			await startSync(onA);
			await until(
				"both connected",
				async () => (await peerByName(b.port, "on-a"))?.connected === true,
			);

			// A stops and a new A starts with the same id on the same database.
			instances.splice(instances.indexOf(a), 1);
			await a.close();
			const a2 = await instance({ STARLING_INSTANCE_ID: "mgmt-a" });
			expect((await peerByName(a2.port, "on-b"))?.connected).toBe(true);
			expect((await peerByName(a2.port, "on-a"))?.connected).toBe(false);
			// B's agent saw on-a leave, never itself.
			await onB.waitForMap((m) => connectedOf(m, "on-a") === false, 1000);
			expect((await peerByName(b.port, "on-b"))?.connected).toBe(true);
		});

		it("kill -9 of A: B expires A's sessions after its heartbeat stops, and the peers show disconnected", async () => {
			const a = await startInstanceProcess({ ...base.env, STARLING_INSTANCE_ID: "killed-a" });
			processes.push(a);
			const b = await instance({ STARLING_INSTANCE_ID: "live-b" });
			token = await tokenFrom(a);
			const key = await makeSetupKey(b);
			const onA = agent(a.port);
			await onA.client.login(key, meta("on-a"));
			await startSync(onA);
			const onB = agent(b.port);
			await onB.client.login(key, meta("on-b"));
			await startSync(onB);
			await onB.waitForMap((m) => connectedOf(m, "on-a") === true, 2000);

			const t0 = Date.now();
			a.child.kill("SIGKILL");
			await new Promise((r) => a.child.once("exit", r));
			// Heartbeat 200 ms, expiry 1000 ms: B notices within ~1.2 s.
			await onB.waitForMap((m) => connectedOf(m, "on-a") === false, 3000);
			const expiredMs = Date.now() - t0;
			expect((await peerByName(b.port, "on-a"))?.connected).toBe(false);
			expect((await peerByName(b.port, "on-b"))?.connected).toBe(true);
			// Not at once: only once A's last heartbeat aged past the expiry. That
			// beat is due 200 ms before the kill but runs late on a loaded machine
			// (a timer and a write), so the bound leaves it 500 ms.
			expect(expiredMs).toBeGreaterThanOrEqual(500);
			console.log(`cluster: kill -9 of A, its peer shown disconnected on B after ${expiredMs} ms`);
		});

		it("an instance paused past its expiry (SIGSTOP) finds its row gone and records its sessions again", async () => {
			const a = await startInstanceProcess({ ...base.env, STARLING_INSTANCE_ID: "paused-a" });
			processes.push(a);
			const b = await instance({ STARLING_INSTANCE_ID: "live-b" });
			token = await tokenFrom(a);
			const key = await makeSetupKey(b);
			const onA = agent(a.port);
			await onA.client.login(key, meta("on-a"));
			const stream = await startSync(onA);
			await until(
				"on-a connected",
				async () => (await peerByName(b.port, "on-a"))?.connected === true,
			);

			a.child.kill("SIGSTOP");
			// On PostgreSQL, A may be frozen inside a transaction (its heartbeat runs
			// every 200 ms): its row locks then hold B's expiry back until the server
			// ends A's idle transaction (twice the 15 s statement timeout). SQLite's
			// transactions run without a pause between statements (microseconds), so
			// B expires A once its heartbeat stops (1 s).
			await until(
				"B expired A",
				async () => (await peerByName(b.port, "on-a"))?.connected === false,
				backend.name === "postgres" ? 40_000 : 5000,
			);
			a.child.kill("SIGCONT");
			// A's stream survived the pause; its next heartbeat stores A again with the session.
			await until(
				"on-a connected again",
				async () => (await peerByName(b.port, "on-a"))?.connected === true,
				5000,
			);
			expect(stream.ended.done).toBe(false);
		});

		it("an agent moving from A to B gets its stream on A closed as replaced; it stays connected", async () => {
			const a = await instance();
			const b = await instance();
			const key = await makeSetupKey(a);
			const keyPair = generateKeyPair();
			const first = agent(a.port, keyPair);
			await first.client.login(key, meta("mover"));
			const onA = await startSync(first);
			await first.waitForMap(() => true);
			const second = agent(b.port, keyPair);
			await startSync(second);
			await until("the stream on A ended", async () => onA.ended.done, 2000);
			expect(onA.ended.error?.code).toBe(grpc.status.ABORTED);
			expect(onA.ended.error?.message).toMatch(/replaced/);
			// A's stream closing removed only its own session: B's keeps the peer connected.
			await new Promise((r) => setTimeout(r, 200));
			expect((await peerByName(a.port, "mover"))?.connected).toBe(true);
			expect(b.hub.stats().streams).toBe(1);
			expect(a.hub.stats().streams).toBe(0);
		});

		it("with NATS stopped, a change on A still reaches B's agents through the periodic check", async () => {
			const a = await instance({ STARLING_SYNC_CHECK_MS: "1000" });
			const b = await instance({ STARLING_SYNC_CHECK_MS: "1000" });
			const key = await makeSetupKey(a);
			const onB = agent(b.port);
			await onB.client.login(key, meta("on-b"));
			await startSync(onB);
			const other = agent(a.port);
			await other.client.login(key, meta("other"));
			await onB.waitForMap((m) => names(m).includes("other"), 2000);

			await base.nats.stop();
			await until(
				"B noticed the bus is gone",
				async () => b.bus.state() === "disconnected",
				15_000,
			);
			const target = await peerByName(a.port, "other");
			const t0 = Date.now();
			expect(
				(await rest(a.port, "PUT", `/api/peers/${target!.id}`, { name: "no-bus" })).status,
			).toBe(200);
			await onB.waitForMap((m) => names(m).includes("no-bus"), 3000);
			const viaCheckMs = Date.now() - t0;
			console.log(
				`cluster: without NATS, a change on A reached B's agent after ${viaCheckMs} ms (check every 1000 ms)`,
			);

			// The bus comes back: pushes are fast again.
			await base.nats.restart();
			await until(
				"bus back on both",
				async () => a.bus.state() === "connected" && b.bus.state() === "connected",
				15_000,
			);
			const t1 = Date.now();
			await rest(a.port, "PUT", `/api/peers/${target!.id}`, { name: "bus-again" });
			await onB.waitForMap((m) => names(m).includes("bus-again"), 1000);
			expect(Date.now() - t1).toBeLessThan(1000);
		});

		/** The first admin token of a process-started instance (printed once on stderr). */
		async function tokenFrom(p: ManagementProcess): Promise<string> {
			await until("admin token printed", async () =>
				/Admin token[^:]*: (stp_\S+)/.test(p.output()),
			);
			return /Admin token[^:]*: (stp_\S+)/.exec(p.output())![1]!;
		}
	},
);

describe("the management binary and NATS", () => {
	it("refuses to start when NATS is unreachable: one line naming the variable and the server, exit 1", async () => {
		const dir = tempDir();
		try {
			const natsPort = await freeLoopbackPort();
			const child = spawn(process.execPath, [resolve(__dirname, "../dist/main.js")], {
				env: {
					...process.env,
					STARLING_DATA_DIR: dir.path,
					STARLING_MANAGEMENT_LISTEN: "127.0.0.1:0",
					STARLING_MANAGEMENT_METRICS_LISTEN: "off",
					STARLING_NATS_URL: `nats://127.0.0.1:${natsPort}`,
				},
				stdio: ["ignore", "pipe", "pipe"],
			});
			let out = "";
			child.stdout?.on("data", (d: Buffer) => {
				out += d.toString();
			});
			child.stderr?.on("data", (d: Buffer) => {
				out += d.toString();
			});
			const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
			expect(code).toBe(1);
			const lines = out
				.trim()
				.split("\n")
				.filter((l) => l.includes("STARLING_NATS_URL"));
			expect(lines).toHaveLength(1);
			expect(lines[0]).toContain(`127.0.0.1:${natsPort}`);
			// Nothing was served: no admin token was printed.
			expect(out).not.toMatch(/Admin token/);
		} finally {
			dir.remove();
		}
	});

	it("keeps serving when NATS is lost later, logging one line per change of state", async () => {
		const base = await startClusterBase(sqliteBackend);
		let p: ManagementProcess | undefined;
		try {
			p = await startInstanceProcess({ ...base.env, STARLING_LOG_LEVEL: "info" });
			await base.nats.stop();
			// The client notices a closed connection at once; give it time to retry many times.
			await new Promise((r) => setTimeout(r, 3000));
			expect((await fetch(`${p.url}/api/openapi.json`)).status).toBe(200);
			await base.nats.restart();
			const deadline = Date.now() + 15_000;
			while (!p.output().includes("bus is back") && Date.now() < deadline)
				await new Promise((r) => setTimeout(r, 50));
			const lines = p.output().split("\n");
			expect(lines.filter((l) => l.includes("lost the bus"))).toHaveLength(1);
			expect(lines.filter((l) => l.includes("bus is back"))).toHaveLength(1);
		} finally {
			if (p && p.child.exitCode === null) {
				p.child.kill("SIGKILL");
				await new Promise((r) => p!.child.once("exit", r));
			}
			await base.stop();
		}
	});
});
