import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";

/** prom-client's registry, for services that only use the helpers below. */
export type MetricsRegistry = Registry;

/**
 * A registry of one service instance, with the process's own metrics
 * (CPU, memory, event loop, GC) already in it. Each server gets its own
 * registry rather than prom-client's global one, so that tests can run
 * several servers in one process and each /metrics shows only its server.
 */
export function createMetricsRegistry(): Registry {
	const registry = new Registry();
	collectDefaultMetrics({ register: registry });
	return registry;
}

/** The Prometheus text exposition of a registry, with its content type. */
export async function exposeMetrics(
	registry: Registry,
): Promise<{ contentType: string; body: string }> {
	return { contentType: registry.contentType, body: await registry.metrics() };
}

interface FromStats {
	registry: Registry;
	name: string;
	help: string;
}

/**
 * A counter whose value is read from a service's own statistics at scrape
 * time: the service counts in plain fields (no metrics library in its core)
 * and this exposes them.
 */
export function counterFromStats(options: FromStats & { read: () => number }): void {
	const { read } = options;
	new Counter({
		name: options.name,
		help: options.help,
		registers: [options.registry],
		collect() {
			this.reset();
			this.inc(read());
		},
	});
}

/** A counter with one label, read like counterFromStats from a record of counts. */
export function labelledCounterFromStats<L extends string>(
	options: FromStats & { label: L; read: () => Record<string, number> },
): void {
	const { read, label } = options;
	new Counter({
		name: options.name,
		help: options.help,
		labelNames: [label],
		registers: [options.registry],
		collect() {
			this.reset();
			for (const [value, count] of Object.entries(read())) {
				this.inc({ [label]: value } as Partial<Record<L, string>>, count);
			}
		},
	});
}

/** A gauge with one label, read like gaugeFromStats from a record of values. */
export function labelledGaugeFromStats<L extends string>(
	options: FromStats & { label: L; read: () => Record<string, number> },
): void {
	const { read, label } = options;
	new Gauge({
		name: options.name,
		help: options.help,
		labelNames: [label],
		registers: [options.registry],
		collect() {
			for (const [value, current] of Object.entries(read())) {
				this.set({ [label]: value } as Partial<Record<L, string>>, current);
			}
		},
	});
}

/** A gauge read from a service's own state at scrape time. */
export function gaugeFromStats(options: FromStats & { read: () => number }): void {
	const { read } = options;
	new Gauge({
		name: options.name,
		help: options.help,
		registers: [options.registry],
		collect() {
			this.set(read());
		},
	});
}
