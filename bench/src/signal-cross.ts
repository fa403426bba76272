// Cross-instance signal benchmark: messages per second and latency from a
// peer on signal instance A to a peer on instance B (routed over NATS),
// against the same from A to another peer on A (the baseline: the local
// path, which never touches the bus), in the same run.
//
//   pnpm bench signal-cross [--messages N] [--samples N] [--window N] [--body-bytes N] [--rounds N]
//
// nats-server and the two signal instances (apps/signal/dist/main.js) run
// as their own processes on loopback; the measuring clients run here. The
// two kinds of delivery alternate in rounds so that load from elsewhere on
// the machine falls on both alike. Progress goes to stderr; the last stdout
// line is one JSON object with the figures.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { type NatsServer, startNatsServer } from "@starling/lab";
import type { SignalClient } from "@starling/signal-client";
import {
	connectedClient,
	measureLatency,
	measureThroughput,
	percentile,
	round,
} from "./lib-signal-measure.js";

const here = dirname(fileURLToPath(import.meta.url));
const signalMain = join(here, "..", "..", "apps", "signal", "dist", "main.js");

/** The whole run stops by itself after this, whatever state it is in. */
const RUN_DEADLINE_MS = 300_000;
/** Issue 12's target for cross-instance delivery. */
const TARGET_P99_MS = 50;

interface Settings {
	messages: number;
	bodyBytes: number;
	window: number;
	samples: number;
	rounds: number;
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
		messages: value("messages", 20_000, 100, 1_000_000),
		bodyBytes: value("body-bytes", 500, 8, 65_536),
		window: value("window", 64, 1, 4_096),
		samples: value("samples", 5_000, 10, 100_000),
		rounds: value("rounds", 2, 1, 20),
	};
}

function progress(message: string): void {
	process.stderr.write(`signal-cross bench: ${message}\n`);
}

/** Starts a signal instance on the bus and resolves with its gRPC port once it listens. */
function startSignal(natsUrl: string, children: ChildProcess[]): Promise<number> {
	const child = spawn(process.execPath, [signalMain], {
		env: {
			...process.env,
			STARLING_SIGNAL_LISTEN: "127.0.0.1:0",
			STARLING_SIGNAL_METRICS_LISTEN: "off",
			STARLING_LOG_LEVEL: "info",
			STARLING_LOG_FORMAT: "json",
			STARLING_NATS_URL: natsUrl,
		},
		stdio: ["ignore", "pipe", 2],
	});
	children.push(child);
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error("signal did not start within 15 s")), 15_000);
		child.once("exit", (code) => reject(new Error(`signal exited early (${code})`)));
		createInterface({ input: child.stdout! }).on("line", (line) => {
			// Only the start line matters; the rest (peer connected ...) is noise here.
			if (!line.includes('"signal server listening"')) return;
			clearTimeout(timer);
			resolve((JSON.parse(line) as { port: number }).port);
		});
	});
}

interface Figures {
	messagesPerSecond: number;
	refused: number;
	latencies: number[];
}

function summarise(figures: Figures) {
	const sorted = [...figures.latencies].sort((x, y) => x - y);
	return {
		messages_per_second: Math.round(figures.messagesPerSecond),
		sends_refused: figures.refused,
		p50_ms: round(percentile(sorted, 0.5), 3),
		p99_ms: round(percentile(sorted, 0.99), 3),
		max_ms: round(sorted[sorted.length - 1] ?? Number.NaN, 3),
	};
}

function natsServerVersion(): string {
	const out = spawnSync("nats-server", ["--version"], { encoding: "utf8" });
	return (out.stdout || out.stderr || "unknown").trim();
}

async function runBenchmark(settings: Settings): Promise<void> {
	const children: ChildProcess[] = [];
	let nats: NatsServer | undefined;
	const killChildren = (): void => {
		for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
		const natsPid = nats?.pid;
		if (natsPid) {
			try {
				process.kill(natsPid, "SIGKILL");
			} catch {
				// Already gone: it was stopped before we exit.
			}
		}
	};
	process.once("exit", killChildren);
	const deadline = setTimeout(() => {
		progress(`gave up after ${RUN_DEADLINE_MS / 1_000} s`);
		killChildren();
		process.exit(1);
	}, RUN_DEADLINE_MS);
	deadline.unref();

	const loadBefore = loadavg().map((l) => round(l, 2));
	nats = await startNatsServer();
	progress(`nats-server on ${nats.url}`);
	const [portA, portB] = await Promise.all([
		startSignal(nats.url, children),
		startSignal(nats.url, children),
	]);
	progress(`signal A on ${portA}, signal B on ${portB}`);

	const sender = await connectedClient(`127.0.0.1:${portA}`);
	const sameInstance = await connectedClient(`127.0.0.1:${portA}`);
	const otherInstance = await connectedClient(`127.0.0.1:${portB}`);
	const template = new Uint8Array(randomBytes(settings.bodyBytes));
	const recipients: Array<[string, SignalClient]> = [
		["same", sameInstance],
		["cross", otherInstance],
	];

	// Until the JIT has compiled the hot paths on every side the first thousands run several times slower.
	progress("warming up");
	for (const [, to] of recipients) {
		await measureThroughput(
			sender,
			to,
			Math.min(5_000, settings.messages),
			settings.window,
			template,
		);
		await measureLatency(sender, to, Math.min(500, settings.samples), template);
	}

	const figures: Record<
		string,
		{ seconds: number; delivered: number; refused: number; latencies: number[] }
	> = {
		same: { seconds: 0, delivered: 0, refused: 0, latencies: [] },
		cross: { seconds: 0, delivered: 0, refused: 0, latencies: [] },
	};
	const perRoundMessages = Math.ceil(settings.messages / settings.rounds);
	const perRoundSamples = Math.ceil(settings.samples / settings.rounds);
	for (let r = 0; r < settings.rounds; r++) {
		// Alternate which goes first, so neither always runs on a warmer or quieter machine.
		const order = r % 2 === 0 ? recipients : [...recipients].reverse();
		for (const [name, to] of order) {
			const f = figures[name]!;
			const t = await measureThroughput(sender, to, perRoundMessages, settings.window, template);
			f.seconds += t.seconds;
			f.delivered += perRoundMessages - t.refused;
			f.refused += t.refused;
			f.latencies.push(...(await measureLatency(sender, to, perRoundSamples, template)));
			progress(
				`round ${r + 1}/${settings.rounds} ${name}: ${Math.round((perRoundMessages - t.refused) / t.seconds)} messages/s`,
			);
		}
	}

	await Promise.all([sender.close(), sameInstance.close(), otherInstance.close()]);
	for (const child of children) child.kill("SIGTERM");
	await Promise.all(children.map((c) => new Promise((resolve) => c.once("exit", resolve))));
	await nats.stop();
	nats = undefined;
	const loadAfter = loadavg().map((l) => round(l, 2));

	const same = summarise({
		messagesPerSecond: figures.same!.delivered / figures.same!.seconds,
		refused: figures.same!.refused,
		latencies: figures.same!.latencies,
	});
	const cross = summarise({
		messagesPerSecond: figures.cross!.delivered / figures.cross!.seconds,
		refused: figures.cross!.refused,
		latencies: figures.cross!.latencies,
	});
	const result = {
		bench: "signal-cross",
		what:
			"sender on signal A; 'cross' = recipient on signal B (routed over NATS request/reply), " +
			"'same' = recipient on signal A (local path, the baseline); both in this run, alternating rounds",
		messages: perRoundMessages * settings.rounds,
		body_bytes: settings.bodyBytes,
		window: settings.window,
		latency_samples: perRoundSamples * settings.rounds,
		latency_method: "one message at a time, from send() to the recipient's message event",
		rounds: settings.rounds,
		cross_instance: cross,
		same_instance_baseline: same,
		throughput_ratio_cross_to_same: round(cross.messages_per_second / same.messages_per_second, 2),
		p50_ratio_cross_to_same: round(cross.p50_ms / same.p50_ms, 2),
		p99_ratio_cross_to_same: round(cross.p99_ms / same.p99_ms, 2),
		target_cross_p99_ms: TARGET_P99_MS,
		target_met: cross.p99_ms <= TARGET_P99_MS,
		loadavg_before: loadBefore,
		loadavg_after: loadAfter,
		node: process.version,
		nats_server: natsServerVersion(),
	};
	process.stdout.write(`${JSON.stringify(result)}\n`);
	process.exit(0);
}

try {
	await runBenchmark(readSettings(process.argv.slice(2)));
} catch (err) {
	progress(`failed: ${err instanceof Error ? err.message : String(err)}`);
	process.exit(1);
}
