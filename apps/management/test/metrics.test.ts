// /metrics, /healthz and /readyz of a real management server, over real
// sockets: each action below is done the way an agent or an admin does it,
// and the scrape shows it.
import * as grpc from "@grpc/grpc-js";
import { ManagementCallError } from "@starling/management-client";
import { parsePrometheusText } from "@starling/service-runtime";
import { describe, expect, it } from "vitest";
import { makeSetupKey, managementPerTest, meta, startSync } from "./helpers.js";

const fixture = managementPerTest();
const agent = () => fixture.agent();

async function scrape(): Promise<Map<string, number>> {
	const res = await fetch(`http://127.0.0.1:${fixture.m.metricsPort}/metrics`);
	expect(res.status).toBe(200);
	expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
	return parsePrometheusText(await res.text());
}

function api(path: string, token: string | null = fixture.m.bootstrap?.plainToken ?? null) {
	return fetch(`http://127.0.0.1:${fixture.m.port}${path}`, {
		headers: token ? { authorization: `Token ${token}` } : {},
	});
}

const requests = (method: string, route: string, status: number) =>
	`starling_management_http_requests_total{method="${method}",route="${route}",status="${status}"}`;
const logins = (result: string) => `starling_management_logins_total{result="${result}"}`;

async function loginError(p: Promise<unknown>): Promise<number | undefined> {
	const err = await p.then(
		() => undefined,
		(e: unknown) => e,
	);
	expect(err).toBeInstanceOf(ManagementCallError);
	return (err as ManagementCallError).code;
}

describe("management metrics", () => {
	it("counts REST requests by route pattern and status, not by URL", async () => {
		const before = await scrape();
		expect(before.get(requests("GET", "/api/peers", 200))).toBeUndefined();

		expect((await api("/api/peers")).status).toBe(200);
		expect((await api("/api/peers")).status).toBe(200);
		expect((await api("/api/peers/nope")).status).toBe(404);
		expect((await api("/api/peers/other")).status).toBe(404);
		expect((await api("/api/peers", null)).status).toBe(401);
		expect((await api("/api/no/such/thing")).status).toBe(404);

		const after = await scrape();
		expect(after.get(requests("GET", "/api/peers", 200))).toBe(2);
		expect(after.get(requests("GET", "/api/peers/:peerId", 404))).toBe(2);
		expect(after.get(requests("GET", "/api/peers", 401))).toBe(1);
		expect(after.get(requests("GET", "unmatched", 404))).toBe(1);
		const series = [...after.keys()].filter((k) => k.startsWith("starling_management_http"));
		expect(series.some((k) => k.includes("nope") || k.includes("other"))).toBe(false);
	});

	it("counts logins by result, Sync traffic, map computation and store transactions", async () => {
		const zero = await scrape();
		for (const result of ["registered", "logged_in", "setup_key_missing", "setup_key_refused"]) {
			expect(zero.get(logins(result))).toBe(0);
		}
		expect(zero.get("starling_management_connected_agents")).toBe(0);

		const key = await makeSetupKey(fixture.m);
		const alpha = agent();
		expect((await alpha.client.login(key, meta("alpha"))).registered).toBe(true);
		expect((await alpha.client.login("", meta("alpha"))).registered).toBe(false);
		expect(await loginError(agent().client.login("", meta("nokey")))).toBe(
			grpc.status.PERMISSION_DENIED,
		);
		expect(await loginError(agent().client.login("NOT-A-REAL-KEY", meta("badkey")))).toBe(
			grpc.status.PERMISSION_DENIED,
		);
		const afterLogins = await scrape();
		expect(afterLogins.get(logins("registered"))).toBe(1);
		expect(afterLogins.get(logins("logged_in"))).toBe(1);
		expect(afterLogins.get(logins("setup_key_missing"))).toBe(1);
		expect(afterLogins.get(logins("setup_key_refused"))).toBe(1);
		const writes = 'starling_management_store_transaction_seconds_count{operation="write"}';
		// Every login is timed as a write transaction, the refused key's too (it
		// was looked up and refused inside one): at least one per login.
		expect((afterLogins.get(writes) ?? 0) - (zero.get(writes) ?? 0)).toBeGreaterThanOrEqual(4);

		const beta = agent();
		await beta.client.login(key, meta("beta"));
		const alphaSync = await startSync(alpha);
		await alpha.waitForMap((map) => map.peers.length === 1);
		await startSync(beta);
		await beta.waitForMap((map) => map.peers.length === 1);
		await alpha.waitForMap((map) => map.peers.some((p) => p.connected));

		const synced = await scrape();
		expect(synced.get("starling_management_connected_agents")).toBe(2);
		expect(synced.get("starling_management_sync_accounts")).toBe(1);
		expect(synced.get('starling_management_sync_messages_total{kind="full"}')).toBe(2);
		expect(synced.get("starling_management_sync_full_maps_total")).toBe(2);
		expect(synced.get('starling_management_sync_messages_total{kind="delta"}')).toBeGreaterThan(0);
		expect(synced.get('starling_management_sync_bytes_total{kind="full"}')).toBeGreaterThan(100);
		expect(synced.get('starling_management_network_map_seconds_count{kind="full"}')).toBe(2);
		expect(
			synced.get('starling_management_network_map_seconds_count{kind="delta"}'),
		).toBeGreaterThan(0);
		// Each agent marked connected is one more write transaction.
		expect((synced.get(writes) ?? 0) - (afterLogins.get(writes) ?? 0)).toBeGreaterThanOrEqual(2);

		// Beta hears that alpha left once management has dropped alpha's stream.
		alphaSync.stream.close();
		await beta.waitForMap((map) => map.peers.length === 1 && !map.peers[0]?.connected);
		expect((await scrape()).get("starling_management_connected_agents")).toBe(1);
	});
});

describe("management health", () => {
	it("answers /healthz and /readyz without a token, on the API port and the metrics port", async () => {
		for (const base of [
			`http://127.0.0.1:${fixture.m.port}`,
			`http://127.0.0.1:${fixture.m.metricsPort}`,
		]) {
			const live = await fetch(`${base}/healthz`);
			expect(live.status).toBe(200);
			expect(await live.json()).toEqual({ status: "ok", checks: { process: "ok" } });
			const ready = await fetch(`${base}/readyz`);
			expect(ready.status).toBe(200);
			expect(await ready.json()).toEqual({
				status: "ok",
				checks: { serving: "ok", store: "ok" },
			});
		}
	});

	it("is not ready, with a JSON 503, when the store cannot answer", async () => {
		await fixture.m.store.close();
		for (const base of [
			`http://127.0.0.1:${fixture.m.port}`,
			`http://127.0.0.1:${fixture.m.metricsPort}`,
		]) {
			const ready = await fetch(`${base}/readyz`);
			expect(ready.status).toBe(503);
			expect(ready.headers.get("content-type")).toMatch(/^application\/json/);
			const body = (await ready.json()) as Record<string, unknown>;
			expect(body).toMatchObject({ code: 503, status: "unavailable", checks: { serving: "ok" } });
			expect(body.message).toMatch(/^store: .*closed/);
			// The process itself still serves.
			expect((await fetch(`${base}/healthz`)).status).toBe(200);
		}
	});

	it("keeps health out of the OpenAPI document", async () => {
		const doc = (await (await api("/api/openapi.json", null)).json()) as {
			paths: Record<string, unknown>;
		};
		expect(Object.keys(doc.paths).filter((p) => !p.startsWith("/api/"))).toEqual([]);
	});
});
