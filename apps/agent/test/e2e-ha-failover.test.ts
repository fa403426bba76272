// Two agent daemons in network namespaces keep pinging each other with zero
// loss while the management instances they use, two behind HAProxy on one
// PostgreSQL database with NATS between them, are killed (SIGKILL) and
// restarted one after the other. The control plane runs in the root
// namespace (the management failover tests' stack); the lab reaches HAProxy
// and signal over a root uplink, as the compose test reaches its containers.
// After each kill the agents hold their Sync sessions on the surviving
// instance (they reconnected through the proxy); a server that cannot start
// fails the test.
import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import {
	addRootUplink,
	freeLoopbackPort,
	Lab,
	type LabProcess,
	labSkipReason,
	type PostgresCluster,
	startPostgres,
} from "@starling/lab";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
	type HaStack,
	type InstanceName,
	startHaStack,
} from "../../management/test/helpers-failover.js";
import { AgentHost, waitFor } from "./fixture.js";

const SIGNAL = resolve(__dirname, "../../signal/dist/main.js");
const AGENT_LAN = "198.18.240.0/24";
const UPLINK_SUBNET = "198.18.241.0/30";
/** Pings every 0.2 s for 30 s: longer than the kills and restarts take. */
const PINGS = 150;

describe.skipIf(labSkipReason)("agents through a management failover behind HAProxy", () => {
	let lab: Lab;
	let cluster: PostgresCluster;
	let stack: HaStack;
	let signal: ChildProcess | undefined;
	let signalOutput = "";
	const agents: AgentHost[] = [];

	beforeAll(async () => {
		lab = await Lab.create("foping");
		const lan = await lab.lan("lan", AGENT_LAN);
		const gw = await lab.host("gw", { lan });
		const uplink = await addRootUplink(lab, gw, { subnet: UPLINK_SUBNET, routes: [AGENT_LAN] });
		for (const name of ["a", "b"]) {
			const host = await lab.host(name, { lan });
			await host.addRoute(UPLINK_SUBNET, gw.address);
			agents.push(new AgentHost(host));
		}

		// One signal server in the root namespace, on the uplink's address.
		const signalListen = `${uplink.rootAddress}:${await freeLoopbackPort()}`;
		const s = spawn(process.execPath, [SIGNAL], {
			env: { ...process.env, STARLING_SIGNAL_LISTEN: signalListen, STARLING_LOG_LEVEL: "info" },
			stdio: ["ignore", "pipe", "pipe"],
		});
		signal = s;
		const append = (d: Buffer) => {
			signalOutput += d.toString();
		};
		s.stdout?.on("data", append);
		s.stderr?.on("data", append);
		await waitFor(
			"signal serving",
			async () => {
				if (s.exitCode !== null) throw new Error(`signal exited: ${signalOutput}`);
				return /listening|serving/i.test(signalOutput) ? true : undefined;
			},
			15_000,
			50,
		);

		cluster = await startPostgres();
		stack = await startHaStack(cluster, {
			proxyAddress: uplink.rootAddress,
			env: { STARLING_SIGNAL_URL: `http://${signalListen}` },
		});
		const key = await stack.rest("POST", "/api/setup-keys", {
			name: "lab",
			type: "reusable",
			expires_in: 3600,
			auto_groups: [],
			usage_limit: 0,
		});
		expect(key.status).toBe(200);
		for (const x of agents) {
			await x.startDaemon();
			const r = await x.starling([
				"up",
				"--management-url",
				stack.url,
				"--setup-key",
				(key.json as { key: string }).key,
			]);
			expect(r.exitCode, r.stderr).toBe(0);
		}
	}, 90_000);

	afterEach(async (context) => {
		if (context.task.result?.state !== "fail") return;
		for (const x of agents) console.error(x.logs(60));
	});

	afterAll(async () => {
		await lab?.destroy();
		await stack?.stop();
		await cluster?.destroy();
		if (signal && signal.exitCode === null && signal.signalCode === null) {
			const exited = new Promise((r) => signal?.once("exit", r));
			signal.kill("SIGKILL");
			await exited;
		}
	}, 30_000);

	/** Which instances hold the agents' Sync sessions, from the store's rows. */
	async function sessionInstances(): Promise<Map<string, InstanceName[]>> {
		const store = await stack.store();
		const byPeer = new Map<string, InstanceName[]>();
		for (const instance of ["a", "b"] as const) {
			for (const s of await store.listSyncSessionsOfInstance(instance)) {
				byPeer.set(s.peerId, [...(byPeer.get(s.peerId) ?? []), instance]);
			}
		}
		return byPeer;
	}

	/** Waits until both agents hold one session each, all on `instance`. */
	async function agentsOn(instance: InstanceName): Promise<void> {
		await waitFor(
			`both agents' sessions on ${instance}`,
			async () => {
				const where = [...(await sessionInstances()).values()];
				return where.length === agents.length &&
					where.every((i) => i.length === 1 && i[0] === instance)
					? true
					: undefined;
			},
			15_000,
			100,
		);
	}

	function continuousPing(from: AgentHost, to: string): LabProcess {
		return from.host.spawn("ping", ["-n", "-q", "-c", String(PINGS), "-i", "0.2", to], {
			name: `ping-${from.name}`,
		});
	}

	function lossOf(ping: LabProcess): { sent: number; received: number } {
		const m = /(\d+) packets transmitted, (\d+) received/.exec(ping.output());
		if (!m) throw new Error(`no ping summary: ${ping.output()}`);
		return { sent: Number(m[1]), received: Number(m[2]) };
	}

	it("pings between two agents lose nothing while each management instance is killed and restarted", async () => {
		const [a, b] = agents as [AgentHost, AgentHost];
		const ipOfA = await a.overlayIp();
		const ipOfB = await b.overlayIp();
		await waitFor(
			"a and b reach each other",
			async () =>
				(await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 })) &&
				(await b.host.ping(ipOfA, { count: 1, timeoutSeconds: 1 }))
					? true
					: undefined,
			30_000,
			200,
		);
		await waitFor(
			"both agents holding a session",
			async () => ((await sessionInstances()).size === agents.length ? true : undefined),
			10_000,
			100,
		);

		const pings = [continuousPing(a, ipOfB), continuousPing(b, ipOfA)];
		const started = Date.now();
		const steps: string[] = [];
		for (const [victim, survivor] of [
			["a", "b"],
			["b", "a"],
		] as const) {
			const t = Date.now();
			await stack.kill(victim);
			await agentsOn(survivor);
			steps.push(`${victim} killed, agents on ${survivor} after ${Date.now() - t} ms`);
			const r = Date.now();
			await stack.restart(victim);
			steps.push(`${victim} back after ${Date.now() - r} ms`);
		}
		const sequenceMs = Date.now() - started;
		// The whole sequence ran while the pings were still going.
		expect(sequenceMs).toBeLessThan(PINGS * 200);
		for (const p of pings) await p.exited;
		const losses = pings.map(lossOf);
		console.log(
			`ha failover lab: ${steps.join("; ")}; pings a->b ${losses[0]!.received}/${losses[0]!.sent}, b->a ${losses[1]!.received}/${losses[1]!.sent}`,
		);
		for (const l of losses) {
			expect(l.sent).toBe(PINGS);
			expect(l.received).toBe(l.sent);
		}
	}, 90_000);
});
