// The `ha` deployment with real agents: two management instances on one
// PostgreSQL database and two signal instances, NATS between them, HAProxy in
// front of both (the management failover tests' stack, run as
// docker-compose.ha.yml runs it). The control plane runs in the root
// namespace; the lab reaches HAProxy over a root uplink, as the compose test
// reaches its containers. A server that cannot start fails the test.
//
// 1. Two agent daemons in network namespaces keep pinging each other with
//    zero loss while the management instances are killed (SIGKILL) and
//    restarted one after the other; after each kill the agents hold their
//    Sync sessions on the surviving instance (they reconnected through the
//    proxy).
// 2. The agents' signal streams sit on different signal instances. Their
//    direct path is cut, so they must negotiate again, and while they do the
//    signal instance of one is killed: it reconnects through the proxy to the
//    other instance, and a negotiation started after the kill brings the
//    direct path back once UDP flows again.

import { Lab, type LabProcess, labSkipReason } from "@starling/lab";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
	type HaStack,
	type InstanceName,
	SIGNAL_NAMES,
	type SignalName,
	startHaStack,
} from "../../management/test/helpers-failover.js";
import { postgresForFile } from "../../management/test/helpers-process.js";
import { connectedPeers } from "../../signal/test/instances.js";
import { type AgentHost, agentsBehindRootUplink, type PeerJson, waitFor } from "./fixture.js";

const AGENT_LAN = "198.18.240.0/24";
const UPLINK_SUBNET = "198.18.241.0/30";
/** Pings every 0.2 s for 30 s: longer than the kills and restarts take. */
const PINGS = 150;

describe.skipIf(labSkipReason)(
	"agents through management and signal failovers behind HAProxy",
	() => {
		// Destroyed after the hooks below (vitest runs afterAll hooks last-registered first).
		const cluster = postgresForFile();
		let lab: Lab;
		let stack: HaStack;
		const agents: AgentHost[] = [];

		beforeAll(async () => {
			lab = await Lab.create("foping");
			const made = await agentsBehindRootUplink(lab, {
				lan: AGENT_LAN,
				uplinkSubnet: UPLINK_SUBNET,
			});
			agents.push(...made.agents);
			stack = await startHaStack(cluster(), {
				proxyAddress: made.uplink.rootAddress,
				signal: true,
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
				await x.up(stack.url, (key.json as { key: string }).key);
			}
		}, 150_000);

		afterEach(async (context) => {
			if (context.task.result?.state !== "fail") return;
			for (const x of agents) console.error(x.logs(60));
			for (const name of SIGNAL_NAMES) {
				const lines = stack?.signal(name)?.logs.slice(-30) ?? [];
				console.error(`--- ${name}\n${lines.map((l) => JSON.stringify(l)).join("\n")}`);
			}
		});

		afterAll(async () => {
			await lab?.destroy();
			await stack?.stop();
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

		/** The running signal instances holding a stream for this WireGuard key. */
		function signalInstancesOf(key: string): SignalName[] {
			return SIGNAL_NAMES.filter((name) => {
				const instance = stack.signal(name);
				return instance !== undefined && connectedPeers(instance).has(key);
			});
		}

		async function peerOf(x: AgentHost): Promise<PeerJson> {
			const peer = (await x.status()).peers?.[0];
			if (!peer) throw new Error(`${x.name} lists no peer`);
			return peer;
		}

		it("a negotiation begun after one signal instance is killed completes through the other", async () => {
			const [a, b] = agents as [AgentHost, AgentHost];
			const keyOfA = (await a.status()).wg_public_key;
			const keyOfB = (await b.status()).wg_public_key;
			const ipOfA = await a.overlayIp();
			const ipOfB = await b.overlayIp();
			const bothDirect = async () =>
				(await peerOf(a)).path_type === "p2p" && (await peerOf(b)).path_type === "p2p"
					? true
					: undefined;
			await waitFor("both agents on a direct path", bothDirect, 60_000, 500);
			// HAProxy balances per stream, round robin: the two agents' streams sit on
			// different instances, so every message between them crosses NATS.
			const [instanceOfA, instanceOfB] = await waitFor(
				"each agent's signal stream on one instance",
				async () => {
					const ofA = signalInstancesOf(keyOfA);
					const ofB = signalInstancesOf(keyOfB);
					return ofA.length === 1 && ofB.length === 1 ? [ofA[0]!, ofB[0]!] : undefined;
				},
				10_000,
				100,
			);
			expect(instanceOfA).not.toBe(instanceOfB);

			// Cut the direct path: traffic from a makes its probe notice, and the
			// agents negotiate again (offers and candidates through signal); ICE
			// fails while UDP is cut, and the state machine retries after its backoff.
			await a.dropUdpFrom(b);
			await b.dropUdpFrom(a);
			await waitFor(
				"a to notice its direct path is lost",
				async () => {
					await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 });
					return (await peerOf(a)).path_type !== "p2p" ? true : undefined;
				},
				20_000,
				0,
			);
			const attemptsBefore = [(await peerOf(a)).ice.attempts, (await peerOf(b)).ice.attempts];
			const killedAt = Date.now();
			await stack.killSignal(instanceOfB);

			// b's signal client reconnects through the proxy, to the surviving instance.
			await waitFor(
				`b's signal stream on ${instanceOfA}`,
				async () =>
					signalInstancesOf(keyOfB).includes(instanceOfA) && (await b.status()).signal.connected
						? true
						: undefined,
				15_000,
				100,
			);
			const movedMs = Date.now() - killedAt;
			// A negotiation begun after the kill: both sides started a new ICE
			// session, and the controlled side starts one only for an offer that
			// reached it through signal. Sends that failed meanwhile (b nowhere, or
			// its stream gone under a send) failed that attempt, and the state
			// machine tried again after its backoff.
			await waitFor(
				"both agents in an ICE attempt begun after the kill",
				async () =>
					(await peerOf(a)).ice.attempts > attemptsBefore[0]! &&
					(await peerOf(b)).ice.attempts > attemptsBefore[1]!
						? true
						: undefined,
				30_000,
				250,
			);
			const renegotiatedMs = Date.now() - killedAt;
			const failures = [(await peerOf(a)).ice.last_failure, (await peerOf(b)).ice.last_failure];

			await a.restoreUdp();
			await b.restoreUdp();
			await waitFor("both agents on a direct path again", bothDirect, 30_000, 250);
			const directMs = Date.now() - killedAt;
			expect(await a.host.ping(ipOfB, { count: 3, timeoutSeconds: 2 })).toBe(true);
			expect(await b.host.ping(ipOfA, { count: 3, timeoutSeconds: 2 })).toBe(true);
			// Only the survivor holds them now.
			expect(signalInstancesOf(keyOfA)).toEqual([instanceOfA]);
			expect(signalInstancesOf(keyOfB)).toEqual([instanceOfA]);
			console.log(
				`signal failover lab: ${instanceOfB} killed; b on ${instanceOfA} after ${movedMs} ms; new attempts on both sides after ${renegotiatedMs} ms (last failures: a "${failures[0]}", b "${failures[1]}"); direct again ${directMs} ms after the kill`,
			);
		}, 120_000);
	},
);
