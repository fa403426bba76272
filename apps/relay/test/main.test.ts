import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { CloseCode, type RelayError } from "@starling/relay-client";
import { afterEach, describe, expect, it } from "vitest";
import {
	identity,
	metricValue,
	nextPacket,
	RawPeer,
	relayClient,
	SECRET,
	tokenFor,
	waitFor,
} from "./helpers.js";

const mainJs = fileURLToPath(new URL("../dist/main.js", import.meta.url));

function runWithEnv(env: Record<string, string>) {
	return spawnSync(process.execPath, [mainJs], {
		env: { PATH: process.env.PATH ?? "", ...env },
		encoding: "utf8",
		timeout: 10_000,
	});
}

interface RelayProcess {
	child: ChildProcess;
	port: number;
	logs: Record<string, unknown>[];
	exited: Promise<number | null>;
}

async function startRelayProcess(env: Record<string, string>): Promise<RelayProcess> {
	const child = spawn(process.execPath, [mainJs], {
		env: {
			PATH: process.env.PATH ?? "",
			STARLING_RELAY_LISTEN: "127.0.0.1:0",
			STARLING_RELAY_SECRET: SECRET,
			...env,
		},
		stdio: ["ignore", "pipe", "inherit"],
	});
	const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
	const logs: Record<string, unknown>[] = [];
	const lines = createInterface({ input: child.stdout! });
	const port = await new Promise<number>((resolve, reject) => {
		const timer = setTimeout(() => {
			child.kill("SIGKILL"); // never leave a relay behind
			reject(new Error("relay did not report listening"));
		}, 5_000);
		lines.on("line", (line) => {
			const entry = JSON.parse(line) as Record<string, unknown>;
			logs.push(entry);
			if (entry.msg === "relay listening") {
				clearTimeout(timer);
				resolve(entry.port as number);
			}
		});
	});
	return { child, port, logs, exited };
}

describe("starling-relay executable", () => {
	let relay: RelayProcess | undefined;
	const cleanups: (() => unknown)[] = [];
	afterEach(async () => {
		for (const c of cleanups.splice(0)) await c();
		if (relay && relay.child.exitCode === null) relay.child.kill("SIGKILL");
		relay = undefined;
	});

	it("is built (run `npx tsc -b apps/relay packages/relay-client` first)", () => {
		expect(existsSync(mainJs)).toBe(true);
	});

	it("refuses to start without STARLING_RELAY_SECRET, with one line naming it", () => {
		const result = runWithEnv({});
		expect(result.status).toBe(1);
		expect(result.stdout).toBe("");
		const lines = result.stderr.trim().split("\n");
		expect(lines).toHaveLength(1);
		expect(lines[0]).toBe(
			"starling-relay: STARLING_RELAY_SECRET is required (the secret shared with management)",
		);
	});

	it("refuses a bad variable with one line naming it and exit code 1", () => {
		for (const [name, value] of [
			["STARLING_RELAY_SECRET", "short"],
			["STARLING_RELAY_LISTEN", "no-port-here"],
			["STARLING_RELAY_LISTEN", "127.0.0.1:70000"],
			["STARLING_RELAY_MAX_CONNECTIONS", "0"],
			["STARLING_RELAY_MAX_BUFFERED_BYTES", "lots"],
			["STARLING_RELAY_HELLO_TIMEOUT_MS", "-1"],
			["STARLING_RELAY_PING_INTERVAL_MS", "1.5"],
			["STARLING_RELAY_TLS_CERT_FILE", "/nonexistent/cert.pem"],
			["STARLING_LOG_LEVEL", "chatty"],
		] as const) {
			const result = runWithEnv({ STARLING_RELAY_SECRET: SECRET, [name]: value });
			expect(result.status, `${name}=${value}`).toBe(1);
			const lines = result.stderr.trim().split("\n");
			expect(lines, `${name}=${value}`).toHaveLength(1);
			expect(lines[0]).toContain(name);
			expect(result.stdout).toBe("");
		}
		// The secret's value never appears in the message.
		const short = runWithEnv({ STARLING_RELAY_SECRET: "tiny-secret" });
		expect(short.stderr).not.toContain("tiny-secret");
	});

	it("serves, and on SIGTERM closes connections with 1001 and exits 0", async () => {
		relay = await startRelayProcess({});
		expect(relay.logs[0]).toMatchObject({ service: "relay", level: 30, host: "127.0.0.1" });
		const alice = identity();
		const bob = identity();
		const url = `ws://127.0.0.1:${relay.port}`;
		const a = relayClient({ url }, alice);
		const b = relayClient({ url }, bob);
		cleanups.push(
			() => a.close(),
			() => b.close(),
		);
		await Promise.all([a.connect(), b.connect()]);
		const got = nextPacket(b);
		a.sendTo(bob.publicKey, Buffer.from("through the process"));
		expect((await got).payload.toString()).toBe("through the process");

		const health = await fetch(`http://127.0.0.1:${relay.port}/healthz`);
		expect(await health.json()).toMatchObject({ status: "ok", peers: 2 });

		const closed = new Promise<RelayError | undefined>((resolve) => a.once("closed", resolve));
		relay.child.kill("SIGTERM");
		expect((await closed)?.code).toBe(CloseCode.GoingAway);
		expect(await relay.exited).toBe(0);
		expect(relay.logs.map((l) => l.msg)).toEqual(
			expect.arrayContaining(["shutting down", "relay stopped"]),
		);
		// Tokens never reach the log.
		expect(JSON.stringify(relay.logs)).not.toContain(tokenFor(alice).slice(0, 20));
	});

	it("drops packets for a stalled receiver instead of buffering them", async () => {
		const limit = 256 * 1024;
		relay = await startRelayProcess({
			STARLING_RELAY_MAX_BUFFERED_BYTES: String(limit),
		});
		const url = `ws://127.0.0.1:${relay.port}`;
		const metrics = async () => (await fetch(`http://127.0.0.1:${relay?.port}/metrics`)).text();

		const receiver = await RawPeer.admitted(url, tokenFor(identity()));
		cleanups.push(() => receiver.close());
		const receiverId = receiver.frames.find((f) => f.type === "welcome");
		if (receiverId?.type !== "welcome") throw new Error("no welcome");
		receiver.ws.pause(); // stop reading: TCP fills, then the relay's queue

		const sender = relayClient({ url }, identity());
		cleanups.push(() => sender.close());
		await sender.connect();
		const rssBefore = metricValue(await metrics(), "process_resident_memory_bytes");

		// 150 MB of 1200-byte packets, as fast as the sender's own socket takes them.
		const packet = Buffer.alloc(1200, 0xab);
		const total = 125_000;
		let sent = 0;
		let maxBuffered = 0;
		const sampler = setInterval(async () => {
			const text = await metrics().catch(() => "");
			if (text)
				maxBuffered = Math.max(maxBuffered, metricValue(text, "starling_relay_buffered_bytes"));
		}, 50);
		cleanups.push(() => clearInterval(sampler));
		while (sent < total) {
			if (sender.bufferedAmount > 512 * 1024) {
				await new Promise((resolve) => setImmediate(resolve));
				continue;
			}
			if (sender.send(receiverId.peerId, packet)) sent++;
		}
		clearInterval(sampler);
		let text = "";
		await waitFor(
			() => {
				void metrics().then((t) => {
					text = t;
				});
				return (
					text !== "" && metricValue(text, "starling_relay_frames_received_total") >= total + 2
				);
			},
			"relay to read everything",
			30_000,
		);
		const forwarded = metricValue(text, "starling_relay_frames_forwarded_total");
		const slow = metricValue(text, 'starling_relay_frames_dropped_total{reason="receiver_slow"}');
		const rssAfter = metricValue(text, "process_resident_memory_bytes");
		console.log(
			`slow receiver: sent ${total} packets (${(total * 1233) / 1e6} MB), forwarded ${forwarded}, dropped ${slow}, ` +
				`max sampled queue ${maxBuffered} B (limit ${limit}), relay RSS ${(rssBefore / 1e6).toFixed(1)} -> ${(rssAfter / 1e6).toFixed(1)} MB`,
		);
		expect(forwarded + slow).toBe(total);
		expect(slow).toBeGreaterThan(total / 2);
		expect(maxBuffered).toBeLessThanOrEqual(limit);
		expect(rssAfter - rssBefore).toBeLessThan(64 * 1024 * 1024);

		// The receiver, reading again, gets what was queued, then fresh packets.
		receiver.ws.resume();
		await waitFor(() => receiver.data().length === forwarded, "queued packets", 10_000);
		sender.send(receiverId.peerId, Buffer.from("fresh"));
		await waitFor(() => receiver.data().length === forwarded + 1, "fresh packet");
	});

	it("serves wss:// with the configured certificate", async () => {
		const dir = mkdtempSync(join(tmpdir(), "starling-relay-tls-"));
		cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
		const cert = join(dir, "cert.pem");
		const key = join(dir, "key.pem");
		const made = spawnSync(
			"openssl",
			[
				"req",
				"-x509",
				"-newkey",
				"ec",
				"-pkeyopt",
				"ec_paramgen_curve:prime256v1",
				"-nodes",
				"-days",
				"1",
				"-subj",
				"/CN=relay.test",
				"-addext",
				"subjectAltName=DNS:relay.test,IP:127.0.0.1",
				"-keyout",
				key,
				"-out",
				cert,
			],
			{ encoding: "utf8" },
		);
		if (made.status !== 0) throw new Error(`openssl failed: ${made.stderr}`);
		relay = await startRelayProcess({
			STARLING_RELAY_TLS_CERT_FILE: cert,
			STARLING_RELAY_TLS_KEY_FILE: key,
		});
		expect(relay.logs[0]).toMatchObject({ tls: true });
		const url = `wss://127.0.0.1:${relay.port}`;
		const { readFileSync } = await import("node:fs");
		const ca = readFileSync(cert);
		const alice = identity();
		const bob = identity();
		const a = relayClient({ url }, alice, { tls: { ca } });
		const b = relayClient({ url }, bob, { tls: { ca } });
		cleanups.push(
			() => a.close(),
			() => b.close(),
		);
		await Promise.all([a.connect(), b.connect()]);
		const got = nextPacket(b);
		a.sendTo(bob.publicKey, Buffer.from("over TLS"));
		expect((await got).payload.toString()).toBe("over TLS");
		// Without trusting the certificate the client refuses to talk.
		const untrusting = relayClient({ url }, identity());
		cleanups.push(() => untrusting.close());
		await expect(untrusting.connect()).rejects.toThrow(/self-signed|certificate/);
	});
});
