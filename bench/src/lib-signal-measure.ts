// Measuring helpers shared by the signal benchmarks: clients that connect
// while a server process starts, windowed throughput and one-at-a-time
// latency between two clients, percentiles.
import { performance } from "node:perf_hooks";
import { generateKeyPair } from "@starling/crypto";
import { SignalClient, type SignalMessage } from "@starling/signal-client";

/** Each measuring or idle client gets its own TCP connection, as separate agents would. */
export const OWN_CONNECTION = { "grpc.use_local_subchannel_pool": 1 };

export function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Connects, retrying while the server process is still starting. */
export async function connectedClient(url: string, patienceMs = 10_000): Promise<SignalClient> {
	const deadline = Date.now() + patienceMs;
	for (;;) {
		const client = new SignalClient({
			url,
			keyPair: generateKeyPair(),
			reconnect: false,
			channelOptions: OWN_CONNECTION,
		});
		try {
			await client.connect();
			return client;
		} catch (err) {
			await client.close();
			if (Date.now() > deadline) throw err;
			await sleep(100);
		}
	}
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: number[], q: number): number {
	if (sorted.length === 0) return Number.NaN;
	const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
	return sorted[rank - 1] ?? Number.NaN;
}

export function round(value: number, digits: number): number {
	const factor = 10 ** digits;
	return Math.round(value * factor) / factor;
}

/** A body of the given size carrying a sequence number in its first 4 bytes. */
export function numberedBody(template: Uint8Array, sequence: number): Uint8Array {
	const body = Uint8Array.from(template);
	new DataView(body.buffer).setUint32(0, sequence);
	return body;
}

export function sequenceOf(message: SignalMessage): number {
	return new DataView(message.body.buffer, message.body.byteOffset, 4).getUint32(0);
}

/**
 * Sends `total` bodies from a to b keeping at most `window` sends awaiting
 * their result, and resolves once b has received every accepted one.
 */
export async function measureThroughput(
	a: SignalClient,
	b: SignalClient,
	total: number,
	window: number,
	template: Uint8Array,
): Promise<{ seconds: number; refused: number }> {
	let received = 0;
	let settled = 0;
	let refused = 0;
	let started = 0;
	const start = performance.now();
	await new Promise<void>((resolve) => {
		const check = (): void => {
			if (settled === total && received === total - refused) {
				b.off("message", onMessage);
				resolve();
			}
		};
		const onMessage = (): void => {
			received += 1;
			check();
		};
		b.on("message", onMessage);
		const pump = (): void => {
			while (started - settled < window && started < total) {
				const body = numberedBody(template, started);
				started += 1;
				a.send(b.publicKey, body).then(
					() => {
						settled += 1;
						pump();
						check();
					},
					() => {
						settled += 1;
						refused += 1;
						pump();
						check();
					},
				);
			}
		};
		pump();
	});
	return { seconds: (performance.now() - start) / 1_000, refused };
}

/** One message at a time from a to b; the time from send() to b's message event. */
export async function measureLatency(
	a: SignalClient,
	b: SignalClient,
	samples: number,
	template: Uint8Array,
): Promise<number[]> {
	const latencies: number[] = [];
	for (let sequence = 0; sequence < samples; sequence++) {
		const body = numberedBody(template, sequence);
		const arrived = new Promise<number>((resolve, reject) => {
			const timer = setTimeout(() => {
				b.off("message", onMessage);
				reject(new Error(`message ${sequence} did not arrive within 5 s`));
			}, 5_000);
			const onMessage = (message: SignalMessage): void => {
				if (sequenceOf(message) !== sequence) return;
				clearTimeout(timer);
				b.off("message", onMessage);
				resolve(performance.now());
			};
			b.on("message", onMessage);
		});
		const sentAt = performance.now();
		await a.send(b.publicKey, body);
		latencies.push((await arrived) - sentAt);
	}
	return latencies.sort((x, y) => x - y);
}
