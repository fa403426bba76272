import { once } from "node:events";
import { existsSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { afterEach, describe, expect, it } from "vitest";
import {
	type ConnectedEvent,
	defaultWorkerPath,
	type FailedEvent,
	IceAgent,
	WORKER_CRASHED_REASON,
} from "./ice-agent.js";
import { isUdpPortFree } from "./udp-port.js";

// These run the real worker (node-datachannel) in this host's own network
// namespace; the lab tests cover namespaces, NAT-free LANs and WireGuard.
const workerPath = defaultWorkerPath(new URL("./ice-agent.ts", import.meta.url).href);
const built = existsSync(workerPath);
const hasNonLoopbackIpv4 = Object.values(networkInterfaces()).some((addresses) =>
	addresses?.some((a) => a.family === "IPv4" && !a.internal && !a.address.startsWith("100.")),
);
if (!built) console.log(`skipping IceAgent tests: ${workerPath} missing (run tsc -b first)`);

const agents: IceAgent[] = [];
function newAgent(options: { idleStopMs?: number } = {}): IceAgent {
	const agent = new IceAgent({ workerPath, ...options });
	agents.push(agent);
	return agent;
}

afterEach(async () => {
	await Promise.all(agents.splice(0).map((agent) => agent.close()));
});

/** Relays descriptions and candidates between two agents, as signal would. */
function relay(a: IceAgent, b: IceAgent): void {
	for (const [from, to] of [
		[a, b],
		[b, a],
	] as const) {
		from.on("local-description", (e) => to.setRemoteDescription(e.sessionId, e.sdp, e.type));
		from.on("local-candidate", (e) => to.addRemoteCandidate(e.sessionId, e.candidate, e.mid));
	}
}

function nextEvent<T extends "connected" | "failed">(
	agent: IceAgent,
	name: T,
): Promise<T extends "connected" ? ConnectedEvent : FailedEvent> {
	return once(agent, name).then(([event]) => event);
}

describe.skipIf(!built)("IceAgent", () => {
	it.skipIf(!hasNonLoopbackIpv4)(
		"connects two sessions on this host and releases the port on close",
		async () => {
			const a = newAgent();
			const b = newAgent();
			relay(a, b);
			const connectedA = nextEvent(a, "connected");
			const connectedB = nextEvent(b, "connected");
			a.startSession({
				sessionId: "s1",
				role: "controlling",
				stunServers: [],
				excludePrefixes: ["::/0"],
			});
			b.startSession({
				sessionId: "s1",
				role: "controlled",
				stunServers: [],
				excludePrefixes: ["::/0"],
			});
			const [eventA, eventB] = await Promise.all([connectedA, connectedB]);
			expect(eventA.remote.port).toBe(eventB.localPort);
			expect(eventB.remote.port).toBe(eventA.localPort);
			expect(eventA.elapsedMs).toBeLessThan(2_000);
			expect(await isUdpPortFree(eventA.localPort)).toBe(false);
			await a.closeSession("s1");
			expect(await isUdpPortFree(eventA.localPort)).toBe(true);
			await b.closeSession("s1");
			expect(a.sessionCount + b.sessionCount).toBe(0);
		},
	);

	it("fails a session that does not connect in time", async () => {
		const a = newAgent();
		const failed = nextEvent(a, "failed");
		const started = Date.now();
		a.startSession({ sessionId: "lonely", role: "controlling", stunServers: [], timeoutMs: 300 });
		expect(await failed).toEqual({
			sessionId: "lonely",
			reason: "ice not connected within 300 ms",
		});
		expect(Date.now() - started).toBeLessThan(2_000);
		expect(a.sessionCount).toBe(0);
	});

	it("fails every session when the worker dies, and forks a new one for the next", async () => {
		const a = newAgent();
		const failures: FailedEvent[] = [];
		a.on("failed", (e) => failures.push(e));
		a.startSession({ sessionId: "x1", role: "controlling", stunServers: [] });
		a.startSession({ sessionId: "x2", role: "controlled", stunServers: [] });
		const firstPid = a.workerPid;
		expect(firstPid).toBeTypeOf("number");
		const exited = once(a, "worker-exit");
		process.kill(firstPid as number, "SIGKILL");
		const [exit] = await exited;
		expect(exit).toMatchObject({ pid: firstPid, signal: "SIGKILL", unexpected: true });
		expect(failures).toEqual([
			{ sessionId: "x1", reason: WORKER_CRASHED_REASON },
			{ sessionId: "x2", reason: WORKER_CRASHED_REASON },
		]);
		const description = once(a, "local-description");
		a.startSession({ sessionId: "x3", role: "controlling", stunServers: [] });
		expect(a.workerPid).not.toBe(firstPid);
		const [offer] = await description;
		expect(offer).toMatchObject({ sessionId: "x3", type: "offer" });
	});

	it("reports nothing after closeSession, and stops the worker on close()", async () => {
		const a = newAgent();
		const events: string[] = [];
		a.on("failed", () => events.push("failed"));
		a.on("worker-exit", (e) => events.push(e.unexpected ? "crash" : "exit"));
		a.startSession({ sessionId: "c1", role: "controlling", stunServers: [], timeoutMs: 100 });
		await a.closeSession("c1");
		await a.closeSession("c1");
		await a.closeSession("never-started");
		await new Promise((resolve) => setTimeout(resolve, 200));
		await a.close();
		expect(events).toEqual(["exit"]);
		expect(a.workerPid).toBeUndefined();
	});

	it("stops an idle worker after the grace, never during a session, and forks again on demand", async () => {
		const a = newAgent({ idleStopMs: 300 });
		const exits: { pid: number | undefined; unexpected: boolean }[] = [];
		a.on("worker-exit", (e) => exits.push({ pid: e.pid, unexpected: e.unexpected }));
		const failed = nextEvent(a, "failed");
		a.startSession({ sessionId: "i1", role: "controlling", stunServers: [], timeoutMs: 1_500 });
		const firstPid = a.workerPid;
		expect(firstPid).toBeTypeOf("number");
		// Longer than the grace: the session in progress keeps the worker.
		await new Promise((resolve) => setTimeout(resolve, 900));
		expect(a.workerPid).toBe(firstPid);
		expect(exits).toEqual([]);
		expect((await failed).sessionId).toBe("i1");
		// Now idle: it exits after the grace, as an expected exit.
		const exited = once(a, "worker-exit");
		expect(a.workerPid).toBe(firstPid);
		await exited;
		expect(exits).toEqual([{ pid: firstPid, unexpected: false }]);
		expect(a.workerPid).toBeUndefined();
		// The next session forks a new worker, which works.
		const description = once(a, "local-description");
		a.startSession({ sessionId: "i2", role: "controlling", stunServers: [] });
		expect(a.workerPid).toBeTypeOf("number");
		expect(a.workerPid).not.toBe(firstPid);
		const [offer] = await description;
		expect(offer).toMatchObject({ sessionId: "i2", type: "offer" });
		await a.closeSession("i2");
		expect(exits).toHaveLength(1);
	});

	it("rejects a duplicate session id and bad prefixes where the caller sees it", () => {
		const a = newAgent();
		a.startSession({ sessionId: "d1", role: "controlled", stunServers: [] });
		expect(() => a.startSession({ sessionId: "d1", role: "controlled", stunServers: [] })).toThrow(
			/already exists/,
		);
		expect(() =>
			a.startSession({
				sessionId: "d2",
				role: "controlled",
				stunServers: [],
				excludePrefixes: ["nonsense"],
			}),
		).toThrow(/not an IP prefix/);
	});
});
