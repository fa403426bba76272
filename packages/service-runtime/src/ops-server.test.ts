import { createLogger } from "@starling/log";
import { Counter } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { parseListenAddress } from "./listen-address.js";
import {
	counterFromStats,
	createMetricsRegistry,
	exposeMetrics,
	gaugeFromStats,
	labelledCounterFromStats,
} from "./metrics.js";
import { check, evaluateHealth, type OpsServer, startOpsServer } from "./ops-server.js";
import { parsePrometheusText } from "./prometheus-text.js";

const logger = createLogger("ops-test", { level: "silent" });

describe("evaluateHealth", () => {
	it("is 200 when every check passes and 503 naming the failed ones otherwise", async () => {
		expect(await evaluateHealth(() => ({ a: { ok: true } }))).toEqual({
			status: 200,
			body: { status: "ok", checks: { a: "ok" } },
		});
		expect(
			await evaluateHealth(async () => ({
				a: { ok: true },
				store: await check(() => Promise.reject(new Error("database is closed"))),
			})),
		).toEqual({
			status: 503,
			body: {
				status: "unavailable",
				checks: { a: "ok", store: "database is closed" },
				message: "store: database is closed",
				code: 503,
			},
		});
	});

	it("turns checks that throw into a 503", async () => {
		const answer = await evaluateHealth(() => {
			throw new Error("boom");
		});
		expect(answer.status).toBe(503);
		expect(answer.body.message).toBe("checks: boom");
	});
});

describe("parseListenAddress", () => {
	it("reads host:port and [v6]:port and explains what it refuses", () => {
		expect(parseListenAddress("0.0.0.0:9090", "x")).toEqual({ host: "0.0.0.0", port: 9090 });
		expect(parseListenAddress("[::1]:0", "x")).toEqual({ host: "::1", port: 0 });
		expect(parseListenAddress("metrics.internal:1", "x")).toEqual({
			host: "metrics.internal",
			port: 1,
		});
		expect(parseListenAddress("9090", "127.0.0.1:9090")).toBe(
			"must be host:port (e.g. 127.0.0.1:9090)",
		);
		expect(parseListenAddress("[nope]:1", "x")).toBe("nope is not an IPv6 address");
		expect(parseListenAddress("a_b:1", "x")).toBe("a_b is not an IPv4 address or host name");
		expect(parseListenAddress("h:99999", "x")).toBe("port 99999 is out of range");
	});
});

describe("parsePrometheusText", () => {
	it("reads samples with and without labels, special values and timestamps", () => {
		const parsed = parsePrometheusText(
			[
				"# HELP a_total help",
				"# TYPE a_total counter",
				"a_total 3",
				'b{reason="x",kind="y"} 1.5',
				'c_bucket{le="+Inf"} +Inf',
				"d NaN",
				"e 7 1700000000000",
				"",
			].join("\n"),
		);
		expect(parsed.get("a_total")).toBe(3);
		expect(parsed.get('b{reason="x",kind="y"}')).toBe(1.5);
		expect(parsed.get('c_bucket{le="+Inf"}')).toBe(Number.POSITIVE_INFINITY);
		expect(parsed.get("d")).toBeNaN();
		expect(parsed.get("e")).toBe(7);
	});

	it("refuses lines that are not samples", () => {
		expect(() => parsePrometheusText("not a sample")).toThrow("not a Prometheus sample line");
		expect(() => parsePrometheusText("a x")).toThrow("not a sample value");
	});
});

describe("metrics from statistics", () => {
	it("reads the current values at every scrape, per registry", async () => {
		const stats = { sent: 0, connected: 0, refused: { slow: 0, gone: 0 } };
		const registry = createMetricsRegistry();
		counterFromStats({ registry, name: "t_sent_total", help: "h", read: () => stats.sent });
		gaugeFromStats({ registry, name: "t_connected", help: "h", read: () => stats.connected });
		labelledCounterFromStats({
			registry,
			name: "t_refused_total",
			help: "h",
			label: "reason",
			read: () => stats.refused,
		});
		const other = createMetricsRegistry();
		new Counter({ name: "t_sent_total", help: "another server's", registers: [other] }).inc(9);

		const scrape = async () => parsePrometheusText((await exposeMetrics(registry)).body);
		const before = await scrape();
		expect(before.get("t_sent_total")).toBe(0);
		expect(before.get('t_refused_total{reason="slow"}')).toBe(0);
		expect(before.has("process_cpu_seconds_total")).toBe(true);

		stats.sent = 5;
		stats.connected = 2;
		stats.refused.gone = 3;
		const after = await scrape();
		expect(after.get("t_sent_total")).toBe(5);
		expect(after.get("t_connected")).toBe(2);
		expect(after.get('t_refused_total{reason="gone"}')).toBe(3);
		expect((await exposeMetrics(registry)).contentType).toMatch(/^text\/plain; version=0\.0\.4/);
	});
});

describe("startOpsServer", () => {
	let server: OpsServer | undefined;
	afterEach(async () => {
		await server?.close();
		server = undefined;
	});

	it("serves /healthz, /readyz and /metrics over HTTP, JSON errors otherwise", async () => {
		let ready = true;
		server = await startOpsServer({
			host: "127.0.0.1",
			port: 0,
			logger,
			live: () => ({ process: { ok: true } }),
			ready: () => ({ store: ready ? { ok: true } : { ok: false, reason: "closed" } }),
			metrics: async () => ({ contentType: "text/plain; version=0.0.4", body: "x_total 1\n" }),
		});
		const base = `http://127.0.0.1:${server.port}`;

		const live = await fetch(`${base}/healthz`);
		expect(live.status).toBe(200);
		expect(await live.json()).toEqual({ status: "ok", checks: { process: "ok" } });

		expect((await fetch(`${base}/readyz`)).status).toBe(200);
		ready = false;
		const notReady = await fetch(`${base}/readyz`);
		expect(notReady.status).toBe(503);
		expect(notReady.headers.get("content-type")).toBe("application/json");
		expect(await notReady.json()).toMatchObject({ code: 503, message: "store: closed" });

		const metrics = await fetch(`${base}/metrics?x=1`);
		expect(metrics.status).toBe(200);
		expect(metrics.headers.get("content-type")).toBe("text/plain; version=0.0.4");
		expect(await metrics.text()).toBe("x_total 1\n");

		const missing = await fetch(`${base}/api/peers`);
		expect(missing.status).toBe(404);
		expect(await missing.json()).toEqual({ message: "not found", code: 404 });
		const post = await fetch(`${base}/metrics`, { method: "POST" });
		expect(post.status).toBe(405);
		expect(post.headers.get("allow")).toBe("GET, HEAD");
	});

	it("names the address it cannot bind", async () => {
		server = await startOpsServer({
			host: "127.0.0.1",
			port: 0,
			logger,
			live: () => ({}),
			ready: () => ({}),
			metrics: async () => ({ contentType: "text/plain", body: "" }),
		});
		await expect(
			startOpsServer({
				host: "127.0.0.1",
				port: server.port,
				logger,
				live: () => ({}),
				ready: () => ({}),
				metrics: async () => ({ contentType: "text/plain", body: "" }),
			}),
		).rejects.toThrow(`cannot listen on 127.0.0.1:${server.port}`);
	});
});
