// The WireGuard layer against real wireguard-go, each host in its own network and mount
// namespace of a lab (so every host can have its own "starling0"). The code under test runs its
// commands inside the host through a Runner built on host.exec.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { encodeKey, generateKeyPair } from "@starling/crypto";
import { type Host, Lab, type Lan, labSkipReason } from "@starling/lab";
import { createLogger } from "@starling/log";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CommandError, type Runner } from "../system/exec.js";
import { type ProcessSpawner, selectBackend, socketPathFor, UserspaceBackend } from "./backend.js";
import { WireGuardDevice, writePrivateKeyFile } from "./device.js";
import type { DesiredPeer } from "./plan.js";
import type { PeerDump } from "./wg-dump.js";

const INTERFACE = "starling0";
const PORT = 51820;
const MTU = 1280;

interface RecordedCommand {
	command: string;
	args: string[];
}

/** Runs commands inside `host`, with the contract of system/exec.ts's `run`. */
function labRunner(host: Host, recorded: RecordedCommand[]): Runner {
	return async (command, args, options = {}) => {
		recorded.push({ command, args: [...args] });
		const result = await host.exec(command, [...args], {
			input: options.input,
			timeoutMs: options.timeoutMs ?? 15_000,
			env: { LC_ALL: "C" },
			allowFailure: true,
		});
		const stdout = result.stdout.replace(/\n$/, "");
		const stderr = result.stderr.replace(/\n$/, "");
		if (result.exitCode !== 0 && !options.allowFailure) {
			const detail =
				stderr.split("\n")[0] || stdout.split("\n")[0] || `exit code ${result.exitCode}`;
			throw new CommandError(
				`${command} ${args.join(" ")}: ${detail}`,
				command,
				result.exitCode,
				stderr,
			);
		}
		return { stdout, stderr, exitCode: result.exitCode };
	};
}

/** Starts processes inside `host`; the lab buffers their output, which is passed on line by line. */
function labSpawner(host: Host): ProcessSpawner {
	return (command, args, options) => {
		const child = host.spawn(command, [...args], { env: options.env });
		let consumed = 0;
		const passOnLines = (final: boolean) => {
			const output = child.output();
			const end = final ? output.length : output.lastIndexOf("\n") + 1;
			if (end <= consumed) return;
			for (const line of output.slice(consumed, end).split("\n")) options.onOutputLine(line);
			consumed = end;
		};
		const timer = setInterval(() => passOnLines(false), 50);
		return {
			pid: child.pid,
			exited: child.exited.then((code) => {
				clearInterval(timer);
				passOnLines(true);
				return { code, signal: code === null ? "SIGKILL" : null };
			}),
			kill: (signal) => {
				void child.kill(signal);
			},
		};
	};
}

interface Node {
	host: Host;
	commands: RecordedCommand[];
	runner: Runner;
	backend: UserspaceBackend;
	device: WireGuardDevice;
	publicKey: string;
	privateKeyText: string;
	privateKeyFile: string;
	overlayAddress: string;
}

describe.skipIf(labSkipReason)("WireGuard layer with wireguard-go in a lab", () => {
	let lab: Lab;
	let lan: Lan;
	const nodes: Node[] = [];
	const logLines: string[] = [];
	const unexpectedExits: string[] = [];
	// Captures what would be logged instead of printing it.
	const logger = createLogger("wireguard-lab-test", {
		level: "debug",
		hooks: {
			logMethod(inputArgs) {
				logLines.push(JSON.stringify(inputArgs));
			},
		},
	});

	async function addNode(name: string, overlayAddress: string): Promise<Node> {
		const host = await lab.host(name, { lan });
		const commands: RecordedCommand[] = [];
		const runner = labRunner(host, commands);
		const backend = new UserspaceBackend({
			runner,
			spawn: labSpawner(host),
			logger,
			onUnexpectedExit: (_interface, reason) => unexpectedExits.push(reason),
		});
		const keyPair = generateKeyPair();
		const privateKeyFile = join(host.stateDir, "wireguard.key");
		await writePrivateKeyFile(privateKeyFile, keyPair.privateKey);
		const node: Node = {
			host,
			commands,
			runner,
			backend,
			device: new WireGuardDevice(INTERFACE, runner, logger),
			publicKey: encodeKey(keyPair.publicKey),
			privateKeyText: encodeKey(keyPair.privateKey),
			privateKeyFile,
			overlayAddress,
		};
		nodes.push(node);
		return node;
	}

	/** Creates and configures the interface the way the agent would. */
	async function bringUp(node: Node): Promise<void> {
		await node.backend.createInterface(INTERFACE);
		expect(
			await node.device.configure({ privateKeyFile: node.privateKeyFile, listenPort: PORT }),
		).toEqual({
			privateKeyChanged: true,
			listenPortChanged: true,
		});
		expect(await node.device.setMtuAndUp(MTU)).toEqual({ mtuChanged: true, broughtUp: true });
		expect(await node.device.applyAddresses([`${node.overlayAddress}/32`])).toEqual([
			{ kind: "add", cidr: `${node.overlayAddress}/32` },
		]);
	}

	function asPeer(node: Node): DesiredPeer {
		return {
			publicKey: node.publicKey,
			allowedIps: [`${node.overlayAddress}/32`],
			endpoint: `${node.host.address}:${PORT}`,
		};
	}

	function peerIn(peers: readonly PeerDump[], node: Node): PeerDump {
		const peer = peers.find((candidate) => candidate.publicKey === node.publicKey);
		if (!peer) throw new Error(`no peer ${node.host.name} in ${JSON.stringify(peers)}`);
		return peer;
	}

	/** Runs `action` and returns the commands it ran on `node`. */
	async function commandsOf(
		node: Node,
		action: () => Promise<unknown>,
	): Promise<RecordedCommand[]> {
		const start = node.commands.length;
		await action();
		return node.commands.slice(start);
	}

	async function waitUntil(condition: () => boolean, timeoutMs = 5000): Promise<void> {
		const deadline = Date.now() + timeoutMs;
		while (!condition()) {
			if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
			await new Promise((resolve) => setTimeout(resolve, 20));
		}
	}

	const wgSets = (commands: RecordedCommand[]) =>
		commands.filter((entry) => entry.command === "wg" && entry.args[0] === "set");

	beforeAll(async () => {
		lab = await Lab.create("wgdev");
		lan = await lab.lan("lan", "198.18.40.0/24");
	}, 60_000);

	afterAll(async () => {
		for (const node of nodes) await node.backend.deleteInterface(INTERFACE).catch(() => {});
		await lab?.destroy();
	}, 60_000);

	it("auto-selects a backend that fits this kernel", async () => {
		const a = await addNode("a", "100.64.0.1");
		const probe = await a.host.exec("ip", ["link", "add", "dev", "probe0", "type", "wireguard"], {
			allowFailure: true,
		});
		if (probe.exitCode === 0) await a.host.exec("ip", ["link", "del", "dev", "probe0"]);
		const backend = await selectBackend("auto", a.runner);
		expect(backend.kind).toBe(probe.exitCode === 0 ? "kernel" : "userspace");
		// The probe link is gone again.
		expect(a.commands.filter((entry) => entry.args.includes("add")).length).toBe(1);
		const links = await a.host.exec("ip", ["-o", "link", "show"]);
		expect(links.stdout).not.toMatch(/wgprobe/);
	});

	it("brings up two hosts, each with its own starling0, and pings across the overlay", async () => {
		const [a] = nodes as [Node];
		const b = await addNode("b", "100.64.0.2");
		await bringUp(a);
		await bringUp(b);
		// Same interface name in both hosts: two wireguard-go side by side.
		expect(a.backend.processIdOf(INTERFACE)).toBeDefined();
		expect(b.backend.processIdOf(INTERFACE)).toBeDefined();

		expect(await a.device.applyRoutes([`${b.overlayAddress}/32`])).toEqual([
			{ kind: "add", destination: `${b.overlayAddress}/32` },
		]);
		expect(await b.device.applyRoutes([a.overlayAddress])).toEqual([
			{ kind: "add", destination: `${a.overlayAddress}/32` },
		]);
		expect(await a.device.applyPeers([asPeer(b)])).toEqual([
			{
				kind: "add",
				publicKey: b.publicKey,
				allowedIps: ["100.64.0.2/32"],
				endpoint: `${b.host.address}:${PORT}`,
			},
		]);
		await b.device.applyPeers([asPeer(a)]);

		expect(await a.host.ping(b.overlayAddress, { count: 3, timeoutSeconds: 5 }), lab.logs()).toBe(
			true,
		);
		const dump = await a.device.dump();
		expect(dump.publicKey).toBe(a.publicKey);
		expect(dump.listenPort).toBe(PORT);
		const peerB = peerIn(dump.peers, b);
		expect(peerB.latestHandshakeUnixSeconds).toBeGreaterThan(0);
		expect(peerB.rxBytes).toBeGreaterThan(0);
		expect(peerB.endpoint).toBe(`${b.host.address}:${PORT}`);
	});

	it("adds a third peer without touching the first one's session", async () => {
		const [a, b] = nodes as [Node, Node];
		const c = await addNode("c", "100.64.0.3");
		await bringUp(c);
		await c.device.applyRoutes([a.overlayAddress]);
		await c.device.applyPeers([asPeer(a)]);
		const before = peerIn((await a.device.dump()).peers, b);

		const commands = await commandsOf(a, async () => {
			await a.device.applyRoutes([b.overlayAddress, c.overlayAddress]);
			await a.device.applyPeers([asPeer(b), asPeer(c)]);
		});
		const sets = wgSets(commands);
		expect(sets).toHaveLength(1);
		expect(sets[0]?.args).toEqual([
			"set",
			INTERFACE,
			"peer",
			c.publicKey,
			"allowed-ips",
			"100.64.0.3/32",
			"endpoint",
			`${c.host.address}:${PORT}`,
		]);
		expect(commands.some((entry) => entry.args.includes(b.publicKey))).toBe(false);

		expect(await a.host.ping(c.overlayAddress, { count: 2, timeoutSeconds: 5 }), lab.logs()).toBe(
			true,
		);
		expect(await a.host.ping(b.overlayAddress, { count: 1, timeoutSeconds: 5 })).toBe(true);
		const after = peerIn((await a.device.dump()).peers, b);
		expect(after.latestHandshakeUnixSeconds).toBe(before.latestHandshakeUnixSeconds);
		expect(after.rxBytes).toBeGreaterThan(before.rxBytes);
		expect(after.endpoint).toBe(before.endpoint);
	});

	it("re-applying the same state runs no wg set and no ip change", async () => {
		const [a, b, c] = nodes as [Node, Node, Node];
		const commands = await commandsOf(a, async () => {
			expect(
				await a.device.configure({ privateKeyFile: a.privateKeyFile, listenPort: PORT }),
			).toEqual({
				privateKeyChanged: false,
				listenPortChanged: false,
			});
			expect(await a.device.setMtuAndUp(MTU)).toEqual({ mtuChanged: false, broughtUp: false });
			expect(await a.device.applyAddresses([`${a.overlayAddress}/32`])).toEqual([]);
			expect(await a.device.applyRoutes([b.overlayAddress, c.overlayAddress])).toEqual([]);
			expect(await a.device.applyPeers([asPeer(b), asPeer(c)])).toEqual([]);
			// Without an endpoint the learned one is kept: still nothing to do.
			expect(await a.device.applyPeers([asPeer(b), { ...asPeer(c), endpoint: undefined }])).toEqual(
				[],
			);
		});
		expect(wgSets(commands)).toEqual([]);
		// Only reads: `wg show` and `ip -j ... show`.
		for (const entry of commands)
			expect(entry.args.includes("show"), JSON.stringify(entry)).toBe(true);
	});

	it("replaces a peer's session in one wg set: same peer and endpoint, no keys, a new handshake at once", async () => {
		const [a, b, c] = nodes as [Node, Node, Node];
		expect(await a.host.ping(b.overlayAddress, { count: 1, timeoutSeconds: 5 })).toBe(true);
		const before = peerIn((await a.device.dump()).peers, b);
		expect(before.latestHandshakeUnixSeconds).toBeGreaterThan(0);
		const commands = await commandsOf(a, async () => {
			await a.device.applyPeers([
				{ ...asPeer(b), endpoint: undefined, replaceSession: true },
				asPeer(c),
			]);
		});
		const sets = wgSets(commands);
		expect(sets.map((set) => set.args)).toEqual([
			[
				"set",
				INTERFACE,
				"peer",
				b.publicKey,
				"remove",
				"peer",
				b.publicKey,
				"allowed-ips",
				"100.64.0.2/32",
				"endpoint",
				`${b.host.address}:${PORT}`,
			],
		]);
		const replaced = peerIn((await a.device.dump()).peers, b);
		expect(replaced).toMatchObject({ latestHandshakeUnixSeconds: 0, rxBytes: 0, txBytes: 0 });
		expect(replaced.endpoint).toBe(before.endpoint);
		// b still holds the old session; a's first packet starts a new handshake, no 5 s wait.
		const started = Date.now();
		expect(await a.host.ping(b.overlayAddress, { count: 1, timeoutSeconds: 5 }), lab.logs()).toBe(
			true,
		);
		expect(Date.now() - started).toBeLessThan(2_000);
		expect(peerIn((await a.device.dump()).peers, b).latestHandshakeUnixSeconds).toBeGreaterThan(0);
	});

	it("removes one peer and only that one", async () => {
		const [a, b, c] = nodes as [Node, Node, Node];
		const before = peerIn((await a.device.dump()).peers, b);
		const commands = await commandsOf(a, async () => {
			expect(await a.device.applyPeers([asPeer(b)])).toEqual([
				{ kind: "remove", publicKey: c.publicKey },
			]);
		});
		expect(wgSets(commands).map((entry) => entry.args)).toEqual([
			["set", INTERFACE, "peer", c.publicKey, "remove"],
		]);
		const peers = (await a.device.dump()).peers;
		expect(peers.map((peer) => peer.publicKey)).toEqual([b.publicKey]);
		expect(peerIn(peers, b).latestHandshakeUnixSeconds).toBe(before.latestHandshakeUnixSeconds);
		expect(await a.device.removePeer(c.publicKey)).toBe(false);
		expect(await a.host.ping(b.overlayAddress, { count: 1, timeoutSeconds: 5 })).toBe(true);
		expect(await a.host.ping(c.overlayAddress, { count: 1, timeoutSeconds: 1 })).toBe(false);
	});

	it("swaps per-peer routes for the account network route", async () => {
		const [a, b, c] = nodes as [Node, Node, Node];
		const changes = await a.device.applyRoutes(["100.64.0.0/10"]);
		expect(changes).toEqual([
			{ kind: "add", destination: "100.64.0.0/10" },
			{ kind: "remove", destination: `${b.overlayAddress}/32`, protocol: undefined },
			{ kind: "remove", destination: `${c.overlayAddress}/32`, protocol: undefined },
		]);
		const routes = await a.host.exec("ip", ["-4", "route", "show", "dev", INTERFACE]);
		expect(
			routes.stdout
				.trim()
				.split("\n")
				.map((line) => line.trim()),
		).toEqual(["100.64.0.0/10 scope link"]);
		expect(await a.host.ping(b.overlayAddress, { count: 1, timeoutSeconds: 5 })).toBe(true);
	});

	it("never puts the private key on a command line or in a log line", () => {
		for (const node of nodes) {
			const everything = JSON.stringify(node.commands) + logLines.join("\n");
			expect(everything).not.toContain(node.privateKeyText);
		}
		// wireguard-go's own output went through the logger.
		expect(logLines.some((line) => line.includes("UAPI"))).toBe(true);
	});

	it("recovers from a crashed wireguard-go and its stale socket", async () => {
		const [, b] = nodes as [Node, Node];
		const pid = b.backend.processIdOf(INTERFACE);
		if (pid === undefined) throw new Error("no wireguard-go for b");
		process.kill(pid, "SIGKILL");
		await waitUntil(() => unexpectedExits.length === 1);
		expect(unexpectedExits[0]).toMatch(/wireguard-go for starling0 exited unexpectedly/);
		// SIGKILL leaves the socket file behind; wg then fails on it.
		expect(
			(await b.runner("test", ["-S", socketPathFor(INTERFACE)], { allowFailure: true })).exitCode,
		).toBe(0);

		await b.backend.createInterface(INTERFACE);
		const dump = await b.device.dump();
		expect(dump.peers).toEqual([]);
		expect(dump.publicKey).toBeUndefined();
		expect(b.backend.processIdOf(INTERFACE)).not.toBe(pid);
	});

	it("replaces a wireguard-go it did not start (left by an agent that died)", async () => {
		const [a] = nodes as [Node];
		const leftoverPid = a.backend.processIdOf(INTERFACE);
		// A new backend, as after an agent restart: it knows nothing of the running wireguard-go.
		const restarted = new UserspaceBackend({ runner: a.runner, spawn: labSpawner(a.host), logger });
		await restarted.createInterface(INTERFACE);
		expect(restarted.processIdOf(INTERFACE)).not.toBe(leftoverPid);
		expect(existsSync(`/proc/${leftoverPid}`)).toBe(false);
		expect((await a.device.dump()).peers).toEqual([]);
		// The old backend saw its process go.
		await waitUntil(() => unexpectedExits.length === 2);
		a.backend = restarted;
	});

	it("deleteInterface leaves no link, no socket and no wireguard-go", async () => {
		for (const node of nodes) {
			const pid = node.backend.processIdOf(INTERFACE);
			expect(pid).toBeDefined();
			await node.backend.deleteInterface(INTERFACE);
			expect(await node.backend.interfaceExists(INTERFACE)).toBe(false);
			const socket = await node.runner("test", ["-e", socketPathFor(INTERFACE)], {
				allowFailure: true,
			});
			expect(socket.exitCode).toBe(1);
			expect(existsSync(`/proc/${pid}`)).toBe(false);
			expect(node.backend.processIdOf(INTERFACE)).toBeUndefined();
			// Idempotent.
			await node.backend.deleteInterface(INTERFACE);
		}
		expect(unexpectedExits).toHaveLength(2);
	});
});
