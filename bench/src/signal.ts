// Signal server benchmark: throughput and latency between two clients, and
// latency again while 1,000 other authenticated streams are connected.
//
//   node bench/run.mjs signal [--messages N] [--idle N] [--samples N] [--heartbeat-ms N]
//
// The server runs as its own process (apps/signal/dist/main.js) on loopback;
// the two measuring clients run here; the idle streams run in a child process
// (this file again, with --idle-streams) so that keeping them alive does not
// steal time from the measurement. Progress goes to stderr; the last stdout
// line is one JSON object with the figures.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { generateKeyPair } from "@starling/crypto";
import { SignalClient } from "@starling/signal-client";
import {
	connectedClient,
	measureLatency,
	measureThroughput,
	OWN_CONNECTION,
	percentile,
	round,
	sleep,
} from "./lib-signal-measure.js";

const here = dirname(fileURLToPath(import.meta.url));
const signalMain = join(here, "..", "..", "apps", "signal", "dist", "main.js");

/** The whole run stops by itself after this, whatever state it is in. */
const RUN_DEADLINE_MS = 180_000;

interface Settings {
	messages: number;
	bodyBytes: number;
	window: number;
	samples: number;
	idleStreams: number;
	heartbeatMs: number;
}

function readSettings(argv: string[]): Settings {
	const value = (name: string, fallback: number, min: number, max: number): number => {
		const index = argv.indexOf(`--${name}`);
		if (index < 0) return fallback;
		const parsed = Number(argv[index + 1]);
		if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
			throw new Error(`--${name} must be an integer from ${min} to ${max}`);
		}
		return parsed;
	};
	return {
		messages: value("messages", 20_000, 1, 1_000_000),
		bodyBytes: value("body-bytes", 500, 8, 65_536),
		window: value("window", 64, 1, 4_096),
		samples: value("samples", 5_000, 10, 100_000),
		idleStreams: value("idle", 1_000, 0, 10_000),
		heartbeatMs: value("heartbeat-ms", 15_000, 10, 3_600_000),
	};
}

function progress(message: string): void {
	process.stderr.write(`signal bench: ${message}\n`);
}

function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const probe = createServer();
		probe.once("error", reject);
		probe.listen(0, "127.0.0.1", () => {
			const address = probe.address();
			const port = typeof address === "object" && address ? address.port : 0;
			probe.close(() => resolve(port));
		});
	});
}

function serverRssMb(pid: number | undefined): number | null {
	if (pid === undefined) return null;
	try {
		const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
		return match?.[1] ? round(Number(match[1]) / 1024, 1) : null;
	} catch {
		return null;
	}
}

/** Starts the idle-stream holder and resolves once all its streams are ready. */
function startIdleStreams(url: string, count: number): Promise<ChildProcess> {
	return new Promise((resolve, reject) => {
		const child = spawn(
			process.execPath,
			[fileURLToPath(import.meta.url), "--idle-streams", String(count), "--url", url],
			{ stdio: ["pipe", "pipe", "inherit"] },
		);
		const timer = setTimeout(
			() => reject(new Error("idle streams did not connect within 120 s")),
			120_000,
		);
		child.once("exit", (code) => reject(new Error(`idle-stream process exited early (${code})`)));
		createInterface({ input: child.stdout! }).on("line", (line) => {
			if (line === `ready ${count}`) {
				clearTimeout(timer);
				resolve(child);
			}
		});
	});
}

/** Child mode: hold `count` authenticated streams open until stdin closes. */
async function holdIdleStreams(url: string, count: number): Promise<void> {
	// Bounded like the parent, in case the parent dies without closing our stdin.
	const selfDestruct = setTimeout(() => process.exit(2), RUN_DEADLINE_MS);
	selfDestruct.unref();
	const clients: SignalClient[] = [];
	const concurrency = 50;
	let connected = 0;
	const worker = async (): Promise<void> => {
		while (clients.length < count) {
			const client = new SignalClient({
				url,
				keyPair: generateKeyPair(),
				reconnect: false,
				channelOptions: OWN_CONNECTION,
			});
			clients.push(client);
			await client.connect();
			connected += 1;
			if (connected % 250 === 0) progress(`idle streams connected: ${connected}`);
		}
	};
	await Promise.all(Array.from({ length: concurrency }, worker));
	process.stdout.write(`ready ${count}\n`);
	process.stdin.resume();
	await new Promise((resolve) => process.stdin.once("end", resolve));
	await Promise.all(clients.map((client) => client.close()));
	process.exit(0);
}

async function runBenchmark(settings: Settings): Promise<void> {
	const children: ChildProcess[] = [];
	const killChildren = (): void => {
		for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
	};
	process.once("exit", killChildren);
	const deadline = setTimeout(() => {
		progress(`gave up after ${RUN_DEADLINE_MS / 1_000} s`);
		killChildren();
		process.exit(1);
	}, RUN_DEADLINE_MS);
	deadline.unref();

	const port = await freePort();
	const url = `127.0.0.1:${port}`;
	progress(`starting ${signalMain} on ${url}`);
	const server = spawn(process.execPath, [signalMain], {
		env: {
			...process.env,
			STARLING_SIGNAL_LISTEN: url,
			STARLING_LOG_LEVEL: "warn",
			STARLING_SIGNAL_HEARTBEAT_MS: String(settings.heartbeatMs),
		},
		// Its log lines go to our stderr so that stdout stays ours.
		stdio: ["ignore", 2, 2],
	});
	children.push(server);

	const a = await connectedClient(url);
	const b = await connectedClient(url);
	const template = new Uint8Array(randomBytes(settings.bodyBytes));

	// Until the JIT has compiled the hot paths on both sides the first thousands run several times slower.
	progress("warming up");
	await measureThroughput(a, b, Math.min(10_000, settings.messages), settings.window, template);
	await measureLatency(a, b, Math.min(500, settings.samples), template);

	progress(
		`throughput: ${settings.messages} messages of ${settings.bodyBytes} bytes, window ${settings.window}`,
	);
	const throughput = await measureThroughput(a, b, settings.messages, settings.window, template);
	const messagesPerSecond = (settings.messages - throughput.refused) / throughput.seconds;
	progress(`${Math.round(messagesPerSecond)} messages/s (${throughput.refused} refused)`);

	progress(`baseline latency: ${settings.samples} messages one at a time, no other streams`);
	const baseline = await measureLatency(a, b, settings.samples, template);
	const rssBaseline = serverRssMb(server.pid);
	progress(
		`baseline p50 ${percentile(baseline, 0.5).toFixed(3)} ms, p99 ${percentile(baseline, 0.99).toFixed(3)} ms`,
	);

	let loaded = baseline;
	let rssLoaded = rssBaseline;
	if (settings.idleStreams > 0) {
		progress(`connecting ${settings.idleStreams} idle streams from a child process`);
		const idle = await startIdleStreams(url, settings.idleStreams);
		children.push(idle);
		// A thousand handshakes leave garbage and cold paths behind; measure the steady state.
		await sleep(1_000);
		await measureLatency(a, b, Math.min(500, settings.samples), template);
		progress(
			`latency: ${settings.samples} messages one at a time, ${settings.idleStreams} idle streams`,
		);
		loaded = await measureLatency(a, b, settings.samples, template);
		rssLoaded = serverRssMb(server.pid);
		progress(
			`p50 ${percentile(loaded, 0.5).toFixed(3)} ms, p99 ${percentile(loaded, 0.99).toFixed(3)} ms`,
		);
		idle.stdin?.end();
		await new Promise((resolve) => idle.once("exit", resolve));
	}

	await Promise.all([a.close(), b.close()]);
	server.kill("SIGTERM");
	await new Promise((resolve) => server.once("exit", resolve));

	const p99 = percentile(loaded, 0.99);
	const baselineP99 = percentile(baseline, 0.99);
	const result = {
		bench: "signal",
		messages: settings.messages,
		body_bytes: settings.bodyBytes,
		window: settings.window,
		messages_per_second: Math.round(messagesPerSecond),
		sends_refused: throughput.refused,
		latency_samples: settings.samples,
		p50_ms: round(percentile(loaded, 0.5), 3),
		p99_ms: round(p99, 3),
		idle_streams: settings.idleStreams,
		baseline_p50_ms: round(percentile(baseline, 0.5), 3),
		baseline_p99_ms: round(baselineP99, 3),
		p99_ratio: round(p99 / baselineP99, 2),
		heartbeat_interval_ms: settings.heartbeatMs,
		server_rss_mb_baseline: rssBaseline,
		server_rss_mb_with_idle: rssLoaded,
	};
	process.stdout.write(`${JSON.stringify(result)}\n`);
	process.exit(0);
}

const argv = process.argv.slice(2);
const idleIndex = argv.indexOf("--idle-streams");
try {
	if (idleIndex >= 0) {
		const url = argv[argv.indexOf("--url") + 1];
		if (!url) throw new Error("--idle-streams needs --url");
		await holdIdleStreams(url, Number(argv[idleIndex + 1]));
	} else {
		await runBenchmark(readSettings(argv));
	}
} catch (err) {
	progress(`failed: ${err instanceof Error ? err.message : String(err)}`);
	process.exit(1);
}
