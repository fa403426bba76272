/**
 * ICE and the WireGuard hand-off in network namespaces (@starling/lab): an
 * IceAgent runs inside each lab host (dist/ice/test-driver.js, controlled over
 * a unix socket in the host's state directory); the test relays descriptions
 * and candidates between two hosts, as signal will.
 */

import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { type Host, Lab, type LabProcess, labSkipReason, startWireguardGo } from "@starling/lab";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PeerCounters, PortRewriteEntry } from "../netfilter/port-rewrite.js";
import type { ConnectedEvent, FailedEvent } from "./ice-agent.js";

const driverPath = fileURLToPath(new URL("../../dist/ice/test-driver.js", import.meta.url));

const OVERLAY_EXCLUDED = /(^|\s)100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./;
const WG_PORT = 51820;
const REWRITE_TABLE = "starling-paths";

interface DriverEvent {
	event: string;
	[field: string]: unknown;
}

/** One IceAgent inside a lab host, driven over JSON lines. */
class IceDriver {
	readonly events: DriverEvent[] = [];
	/** When each event arrived (Date.now()), by event. */
	private readonly arrivedAt = new Map<DriverEvent, number>();
	private readonly waiters = new Set<() => void>();

	private constructor(
		readonly host: Host,
		private readonly process: LabProcess,
		private readonly socket: Socket,
	) {
		let buffered = "";
		socket.setEncoding("utf8");
		socket.on("data", (chunk: string) => {
			buffered += chunk;
			for (let end = buffered.indexOf("\n"); end >= 0; end = buffered.indexOf("\n")) {
				const line = buffered.slice(0, end);
				buffered = buffered.slice(end + 1);
				if (line.trim() === "") continue;
				const event = JSON.parse(line) as DriverEvent;
				this.events.push(event);
				this.arrivedAt.set(event, Date.now());
			}
			for (const wake of [...this.waiters]) wake();
		});
	}

	static async start(host: Host): Promise<IceDriver> {
		const process = host.spawn(
			globalThis.process.execPath,
			[driverPath, "/var/lib/starling/ice-driver.sock"],
			{
				name: "ice-driver",
			},
		);
		await process.waitForOutput(/^listening$/m, 10_000);
		const socket = connect(`${host.stateDir}/ice-driver.sock`);
		await once(socket, "connect");
		return new IceDriver(host, process, socket);
	}

	send(command: Record<string, unknown>): void {
		this.socket.write(`${JSON.stringify(command)}\n`);
	}

	/** The first event (already seen or to come) matching `predicate`. */
	waitFor(
		predicate: (event: DriverEvent) => boolean,
		timeoutMs: number,
		what: string,
	): Promise<DriverEvent> {
		return new Promise((resolve, reject) => {
			const check = () => {
				const error = this.events.find((e) => e.event === "error");
				if (error !== undefined) {
					finish();
					reject(new Error(`${this.host.name} driver: ${String(error.message)}`));
					return;
				}
				const found = this.events.find(predicate);
				if (found !== undefined) {
					finish();
					resolve(found);
				}
			};
			const timer = setTimeout(() => {
				finish();
				reject(
					new Error(
						`${this.host.name}: no ${what} within ${timeoutMs} ms\n${this.process.output().slice(-3000)}`,
					),
				);
			}, timeoutMs);
			const finish = () => {
				clearTimeout(timer);
				this.waiters.delete(check);
			};
			this.waiters.add(check);
			check();
		});
	}

	/** The worker's expected exit (the idle stop) reported after the first `since` events. */
	idleWorkerExit(since: number, timeoutMs = 20_000): Promise<DriverEvent> {
		return this.waitFor(
			(e) => e.event === "worker-exit" && e.unexpected === false && this.events.indexOf(e) >= since,
			timeoutMs,
			"idle ICE worker exit",
		);
	}

	sessionEvent(sessionId: string, event: string, timeoutMs: number): Promise<DriverEvent> {
		return this.waitFor(
			(e) => e.sessionId === sessionId && e.event === event,
			timeoutMs,
			`${event} for ${sessionId}`,
		);
	}

	/** Connected or failed, whichever comes first. */
	async outcome(sessionId: string, timeoutMs: number): Promise<DriverEvent> {
		return this.waitFor(
			(e) => e.sessionId === sessionId && (e.event === "connected" || e.event === "failed"),
			timeoutMs,
			`outcome of ${sessionId}`,
		);
	}

	async request(
		command: Record<string, unknown>,
		answer: string,
		timeoutMs = 5_000,
	): Promise<DriverEvent> {
		const id = `${command.cmd}-${Math.random().toString(36).slice(2)}`;
		this.send({ ...command, id });
		return this.waitFor((e) => e.id === id && e.event === answer, timeoutMs, answer);
	}

	/** When a (newly forked) ICE worker reported ready at or after `since`, if one did. */
	workerReadyAt(since: number): number | undefined {
		for (const e of this.events) {
			const at = this.arrivedAt.get(e) ?? 0;
			if (at >= since && e.event === "log" && String(e.message).startsWith("ice worker ready")) {
				return at;
			}
		}
		return undefined;
	}

	/** Candidates and descriptions this driver has offered for a session. */
	offered(sessionId: string): string[] {
		return this.events
			.filter((e) => e.sessionId === sessionId)
			.flatMap((e) =>
				e.event === "local-candidate"
					? [String(e.candidate)]
					: e.event === "local-description"
						? [String(e.sdp)]
						: [],
			);
	}

	/** Asks the driver to close its agent (as the daemon would) and exit; kills it if it doesn't. */
	async stop(): Promise<void> {
		this.send({ cmd: "quit" });
		const exited = await Promise.race([
			this.process.exited.then(() => true),
			new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 4_000)),
		]);
		this.socket.destroy();
		if (!exited) await this.process.kill();
	}
}

/** Passes one side's descriptions and candidates to the other, as signal would. */
function relay(a: IceDriver, b: IceDriver): () => void {
	const seen = new Map<IceDriver, number>([
		[a, 0],
		[b, 0],
	]);
	const pump = () => {
		for (const [from, to] of [
			[a, b],
			[b, a],
		] as const) {
			const start = seen.get(from) ?? 0;
			for (const e of from.events.slice(start)) {
				if (e.event === "local-description") {
					to.send({ cmd: "remote-description", sessionId: e.sessionId, sdp: e.sdp, type: e.type });
				} else if (e.event === "local-candidate") {
					to.send({
						cmd: "remote-candidate",
						sessionId: e.sessionId,
						candidate: e.candidate,
						mid: e.mid,
					});
				}
			}
			seen.set(from, from.events.length);
		}
	};
	const timer = setInterval(pump, 2);
	return () => clearInterval(timer);
}

/** The outcome as connected; otherwise fails with what the driver's worker logged for the session. */
function asConnected(event: DriverEvent, driver: IceDriver): ConnectedEvent {
	const logged = driver.events
		.filter((e) => e.sessionId === event.sessionId && e.event === "log")
		.map((e) => `${driver.host.name}: ${String(e.message)}`);
	expect(event.event, [JSON.stringify(event), ...logged].join("\n")).toBe("connected");
	return event as unknown as ConnectedEvent;
}

/** Starts a session on both sides (a controlling) and waits for both outcomes. */
async function connectPair(a: IceDriver, b: IceDriver, sessionId: string) {
	const started = Date.now();
	a.send({ cmd: "start", sessionId, role: "controlling", stunServers: [] });
	b.send({ cmd: "start", sessionId, role: "controlled", stunServers: [] });
	const [outcomeA, outcomeB] = await Promise.all([
		a.outcome(sessionId, 10_000),
		b.outcome(sessionId, 10_000),
	]);
	const wallMs = Date.now() - started;
	return { a: asConnected(outcomeA, a), b: asConnected(outcomeB, b), wallMs };
}

describe.skipIf(labSkipReason)("ICE in network namespaces", () => {
	let lab: Lab;
	let hostA: Host;
	let hostB: Host;
	let hostC: Host;
	let a: IceDriver;
	let b: IceDriver;
	let c: IceDriver;
	const stopRelays: (() => void)[] = [];

	beforeAll(async () => {
		lab = await Lab.create("icelab");
		const lan = await lab.lan("lan", "198.18.40.0/24");
		const elsewhere = await lab.lan("far", "198.18.41.0/24");
		hostA = await lab.host("a", { lan });
		hostB = await lab.host("b", { lan });
		// On another LAN with no route to a: unreachable.
		hostC = await lab.host("c", { lan: elsewhere });
		[a, b, c] = await Promise.all([
			IceDriver.start(hostA),
			IceDriver.start(hostB),
			IceDriver.start(hostC),
		]);
		stopRelays.push(relay(a, b), relay(a, c));
	}, 30_000);

	afterAll(async () => {
		for (const stop of stopRelays) stop();
		await Promise.allSettled([a?.stop(), b?.stop(), c?.stop()]);
		await lab?.destroy();
	}, 30_000);

	it("(a) connects two hosts on one LAN with host candidates, mirrored, and frees the port on close", async () => {
		const sessionId = "lan-1";
		const { a: onA, b: onB, wallMs } = await connectPair(a, b, sessionId);
		console.log(
			`(a) ICE connected: wall ${wallMs} ms (incl. worker fork), in worker a ${onA.elapsedMs} ms, b ${onB.elapsedMs} ms; ` +
				`a ${onA.local.address}:${onA.localPort} ↔ b ${onB.local.address}:${onB.localPort} (${onA.local.type}/${onA.remote.type})`,
		);
		expect(onA.local).toMatchObject({ address: hostA.address, port: onA.localPort, type: "host" });
		expect(onB.local).toMatchObject({ address: hostB.address, port: onB.localPort, type: "host" });
		// Mirrored: each side's remote is the other's local (the type may be prflx
		// when a check arrived before the candidate).
		expect({ address: onA.remote.address, port: onA.remote.port }).toEqual({
			address: onB.local.address,
			port: onB.local.port,
		});
		expect({ address: onB.remote.address, port: onB.remote.port }).toEqual({
			address: onA.local.address,
			port: onA.local.port,
		});
		const [closedA, closedB] = await Promise.all([
			a.request({ cmd: "close-session", sessionId }, "session-closed"),
			b.request({ cmd: "close-session", sessionId }, "session-closed"),
		]);
		expect(closedA).toMatchObject({ localPort: onA.localPort, portFree: true });
		expect(closedB).toMatchObject({ localPort: onB.localPort, portFree: true });
	});

	it("(b) hands the ICE path to wireguard-go on 51820 through the per-peer port rewrite, which outlives the ICE worker", async () => {
		const workerEventsBefore = { a: a.events.length, b: b.events.length };
		const { a: onA, b: onB } = await connectPair(a, b, "wg-1");
		await Promise.all([
			a.request({ cmd: "close-session", sessionId: "wg-1" }, "session-closed"),
			b.request({ cmd: "close-session", sessionId: "wg-1" }, "session-closed"),
		]);
		const keyA = await newKeyPair(hostA);
		const keyB = await newKeyPair(hostB);
		const wgA = await startWireGuard(hostA, keyA.privateKey, "100.64.0.1");
		const wgB = await startWireGuard(hostB, keyB.privateKey, "100.64.0.2");
		try {
			// Rules first, then the peers: no WireGuard packet may leave from 51820 unrewritten.
			const entryOnA: PortRewriteEntry = {
				peerKey: keyB.publicKey,
				localPort: onA.localPort,
				remoteAddress: onA.remote.address,
				remotePort: onA.remote.port,
			};
			const entryOnB: PortRewriteEntry = {
				peerKey: keyA.publicKey,
				localPort: onB.localPort,
				remoteAddress: onB.remote.address,
				remotePort: onB.remote.port,
			};
			await Promise.all([
				a.request(
					{ cmd: "port-rewrite", wgPort: WG_PORT, tableName: REWRITE_TABLE, entries: [entryOnA] },
					"port-rewrite-applied",
				),
				b.request(
					{ cmd: "port-rewrite", wgPort: WG_PORT, tableName: REWRITE_TABLE, entries: [entryOnB] },
					"port-rewrite-applied",
				),
			]);
			await addPeer(hostB, keyA.publicKey, entryOnB, "100.64.0.1");
			await addPeer(hostA, keyB.publicKey, entryOnA, "100.64.0.2");
			const pingStarted = Date.now();
			// a (the controlling side) sends the first handshake.
			expect(await hostA.ping("100.64.0.2", { count: 3, timeoutSeconds: 8 })).toBe(true);
			const pingMs = Date.now() - pingStarted;
			expect(await hostB.ping("100.64.0.1", { count: 2, timeoutSeconds: 4 })).toBe(true);
			// The ICE port was released on close and WireGuard owns the path: the idle
			// workers stop (no open session), and the path keeps working without them.
			const idleSince = Date.now();
			await Promise.all([
				a.idleWorkerExit(workerEventsBefore.a),
				b.idleWorkerExit(workerEventsBefore.b),
			]);
			expect((await a.request({ cmd: "worker-pid" }, "worker-pid")).pid).toBeNull();
			expect((await b.request({ cmd: "worker-pid" }, "worker-pid")).pid).toBeNull();
			console.log(`(b) both idle ICE workers exited ${Date.now() - idleSince} ms after the ping`);
			expect(await hostA.ping("100.64.0.2", { count: 2, timeoutSeconds: 4 })).toBe(true);
			expect(await hostB.ping("100.64.0.1", { count: 2, timeoutSeconds: 4 })).toBe(true);

			const countersA = await counters(a, keyB.publicKey);
			const countersB = await counters(b, keyA.publicKey);
			console.log(
				`(b) overlay ping ok (3 echoes incl. handshake in ${pingMs} ms); a sends from :${onA.localPort} (counters out ${countersA.outgoingPackets} in ${countersA.incomingPackets}), ` +
					`b from :${onB.localPort} (out ${countersB.outgoingPackets} in ${countersB.incomingPackets})`,
			);
			// Every WireGuard packet between the two went through the rewrite rules.
			expect(countersA.outgoingPackets).toBeGreaterThanOrEqual(5);
			expect(countersA.incomingPackets).toBeGreaterThanOrEqual(5);
			expect(countersB.outgoingPackets).toBeGreaterThanOrEqual(5);
			expect(countersB.incomingPackets).toBeGreaterThanOrEqual(5);
			// b saw a's packets come from a's ICE port, not from 51820.
			const endpointsOnB = await hostB.exec("wg", ["show", "wg0", "endpoints"]);
			expect(endpointsOnB.stdout).toContain(`${hostA.address}:${onA.localPort}`);
			// notrack: conntrack holds no entry for the WireGuard traffic.
			const tracked = await hostA.exec("conntrack", ["-L", "-p", "udp"], { allowFailure: true });
			expect(tracked.stdout).not.toContain(`sport=${WG_PORT}`);
			expect(tracked.stdout).not.toContain(`dport=${WG_PORT}`);
			// Our table only; clearing it leaves nothing of ours behind.
			await a.request(
				{ cmd: "port-rewrite-clear", wgPort: WG_PORT, tableName: REWRITE_TABLE },
				"port-rewrite-cleared",
			);
			const ruleset = await hostA.exec("nft", ["list", "tables"]);
			expect(ruleset.stdout).not.toContain(REWRITE_TABLE);
		} finally {
			await Promise.allSettled([wgA.kill(), wgB.kill()]);
			await b.request(
				{ cmd: "port-rewrite-clear", wgPort: WG_PORT, tableName: REWRITE_TABLE },
				"port-rewrite-cleared",
			);
		}
	});

	it("(c) never offers 100.64.0.0/10 candidates, even with an interface in it", async () => {
		// As in real life: the overlay address sits on a WireGuard interface.
		const key = await newKeyPair(hostA);
		const overlayInterface = await startWireGuard(hostA, key.privateKey, "100.64.77.1/24", "ov0");
		try {
			const { a: onA } = await connectPair(a, b, "overlay-1");
			// Gathering is over once ICE connected on this LAN without STUN; wait for its end marker.
			await a.waitFor(
				(e) => e.sessionId === "overlay-1" && e.event === "local-candidate" && e.candidate === "",
				2_000,
				"end of candidates",
			);
			const offered = a.offered("overlay-1");
			expect(offered.some((text) => text.includes(hostA.address))).toBe(true);
			for (const text of offered) expect(text).not.toMatch(OVERLAY_EXCLUDED);
			// libjuice did gather the overlay address; the worker held it back.
			const dropped = a.events.filter(
				(e) =>
					e.sessionId === "overlay-1" &&
					e.event === "log" &&
					String(e.message).includes("100.64.77.1"),
			);
			expect(dropped.length).toBeGreaterThan(0);
			expect(onA.local.address).not.toMatch(OVERLAY_EXCLUDED);
		} finally {
			await Promise.all([
				a.request({ cmd: "close-session", sessionId: "overlay-1" }, "session-closed"),
				b.request({ cmd: "close-session", sessionId: "overlay-1" }, "session-closed"),
			]);
			await overlayInterface.kill();
		}
	});

	it("(d) fails in-flight sessions when the worker is killed, and works again afterwards", async () => {
		a.send({ cmd: "start", sessionId: "doomed-1", role: "controlling", stunServers: [] });
		await a.sessionEvent("doomed-1", "local-description", 5_000);
		const { pid } = await a.request({ cmd: "worker-pid" }, "worker-pid");
		expect(pid).toBeTypeOf("number");
		// Same pid namespace: the lab enters only network and mount namespaces.
		process.kill(pid as number, "SIGKILL");
		const failed = (await a.sessionEvent("doomed-1", "failed", 5_000)) as unknown as FailedEvent;
		expect(failed.reason).toBe("ice worker crashed");
		const { a: onA, wallMs } = await connectPair(a, b, "after-crash-1");
		console.log(
			`(d) after the worker was killed: new session connected in ${wallMs} ms (incl. fork), worker ${onA.elapsedMs} ms`,
		);
		const { pid: newPid } = await a.request({ cmd: "worker-pid" }, "worker-pid");
		expect(newPid).not.toBe(pid);
		await Promise.all([
			a.request({ cmd: "close-session", sessionId: "after-crash-1" }, "session-closed"),
			b.request({ cmd: "close-session", sessionId: "after-crash-1" }, "session-closed"),
		]);
	});

	it("(e) fails in under 10 s when the peer is unreachable", async () => {
		const started = Date.now();
		a.send({ cmd: "start", sessionId: "far-1", role: "controlling", stunServers: [] });
		c.send({ cmd: "start", sessionId: "far-1", role: "controlled", stunServers: [] });
		// Generous waits: this session forks c's worker, which takes seconds on a loaded machine.
		const [outcomeA, outcomeC] = await Promise.all([
			a.outcome("far-1", 30_000),
			c.outcome("far-1", 30_000),
		]);
		const finished = Date.now();
		// The 8 s ICE timeout runs from when each worker took the session: count
		// from c's worker being ready, not from the fork (a's worker is warm).
		const cReady = c.workerReadyAt(started) ?? started;
		const elapsed = finished - cReady;
		console.log(
			`(e) unreachable peer: failed ${elapsed} ms after both workers were ready (wall ${finished - started} ms, of which forking c's worker ${cReady - started} ms): ${String(outcomeA.reason)}`,
		);
		expect(outcomeA.event).toBe("failed");
		expect(outcomeC.event).toBe("failed");
		expect(elapsed).toBeLessThan(10_000);
	}, 40_000);
});

async function newKeyPair(host: Host): Promise<{ privateKey: string; publicKey: string }> {
	const privateKey = (await host.exec("wg", ["genkey"])).stdout.trim();
	const publicKey = (await host.exec("wg", ["pubkey"], { input: `${privateKey}\n` })).stdout.trim();
	return { privateKey, publicKey };
}

/** wireguard-go as `name` (each lab host has its own /run), listening on 51820, with its overlay address. */
async function startWireGuard(
	host: Host,
	privateKey: string,
	overlayAddress: string,
	name = "wg0",
): Promise<LabProcess> {
	// Not by polling `wg show`: that can delete the socket wireguard-go is about to listen on.
	const wireguard = await startWireguardGo(host, name, { name: `wireguard-go ${name}` });
	writeFileSync(`${host.stateDir}/${name}.key`, `${privateKey}\n`, { mode: 0o600 });
	await host.exec("wg", [
		"set",
		name,
		"listen-port",
		String(WG_PORT),
		"private-key",
		`/var/lib/starling/${name}.key`,
	]);
	const address = overlayAddress.includes("/") ? overlayAddress : `${overlayAddress}/32`;
	await host.exec("ip", ["address", "add", address, "dev", name]);
	await host.exec("ip", ["link", "set", name, "up"]);
	return wireguard;
}

async function addPeer(
	host: Host,
	publicKey: string,
	entry: PortRewriteEntry,
	overlayAddress: string,
): Promise<void> {
	await host.exec("wg", [
		"set",
		"wg0",
		"peer",
		publicKey,
		"endpoint",
		`${entry.remoteAddress}:${entry.remotePort}`,
		"allowed-ips",
		`${overlayAddress}/32`,
	]);
	await host.exec("ip", ["route", "add", `${overlayAddress}/32`, "dev", "wg0"]);
}

async function counters(driver: IceDriver, peerKey: string): Promise<PeerCounters> {
	const answer = await driver.request(
		{ cmd: "port-rewrite-counters", wgPort: WG_PORT, tableName: REWRITE_TABLE },
		"port-rewrite-counters",
	);
	const all = answer.counters as Record<string, PeerCounters>;
	const mine = all[peerKey];
	if (mine === undefined) throw new Error(`no counters for ${peerKey}: ${JSON.stringify(all)}`);
	return mine;
}
