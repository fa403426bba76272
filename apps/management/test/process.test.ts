// The real management binary: first-start bootstrap, the token CLI, config
// errors, graceful shutdown, and two instances sharing one database.
import { execFile } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { generateKeyPair } from "@starling/crypto";
import { type ManagementCallError, ManagementClient } from "@starling/management-client";
import { describe, expect, it } from "vitest";
import { meta } from "./helpers.js";
import { MAIN, trackManagementProcesses } from "./helpers-process.js";
import { testStoreEnv } from "./test-store.js";

const run = promisify(execFile);
const processes = trackManagementProcesses();

/** The binary on the test's store (SQLite in `dataDir`, or a PostgreSQL database), up once REST answers. */
async function startProcess(dataDir: string, env: Record<string, string> = {}) {
	return processes.spawn({
		STARLING_DATA_DIR: dataDir,
		...(await testStoreEnv(dataDir)),
		...env,
	});
}

async function createKey(url: string, token: string, type: "one-off" | "reusable") {
	const res = await fetch(`${url}/api/setup-keys`, {
		method: "POST",
		headers: { authorization: `Token ${token}`, "content-type": "application/json" },
		body: JSON.stringify({ name: "k", type, expires_in: 86400, auto_groups: [], usage_limit: 0 }),
	});
	expect(res.status).toBe(200);
	return ((await res.json()) as { key: string }).key;
}

describe("management process", () => {
	it("prints the first admin token once, writes it 0600 when asked, and never logs it", async () => {
		const dir = processes.dir();
		const tokenFile = join(dir.path, "admin-token");
		const p = await startProcess(dir.path, { STARLING_ADMIN_TOKEN_FILE: tokenFile });
		const token = /Admin token[^:]*: (stp_\S+)/.exec(p.output().stderr)?.[1];
		expect(token).toBeDefined();
		expect(readFileSync(tokenFile, "utf8").trim()).toBe(token);
		expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
		const me = await fetch(`${p.url}/api/users/current`, {
			headers: { authorization: `Token ${token}` },
		});
		expect(me.status).toBe(200);
		expect(((await me.json()) as { role: string }).role).toBe("owner");
		// JSON log lines carry no token.
		for (const line of p.output().stdout.split("\n").filter(Boolean)) {
			expect(line).not.toContain(token!);
			expect(() => JSON.parse(line)).not.toThrow();
		}
		// The metrics listener named in the serving line answers, without a token.
		const serving = p
			.output()
			.stdout.split("\n")
			.filter(Boolean)
			.map((line) => JSON.parse(line) as { msg?: string; metrics?: string })
			.find((entry) => entry.msg === "management is serving gRPC and REST");
		expect(serving?.metrics).toMatch(/^127\.0\.0\.1:\d+$/);
		const metrics = await fetch(`http://${serving?.metrics}/metrics`);
		expect(metrics.status).toBe(200);
		expect(await metrics.text()).toContain("starling_management_connected_agents 0");
		expect((await fetch(`http://${serving?.metrics}/readyz`)).status).toBe(200);
		// Graceful stop on SIGTERM; a second start does not bootstrap again.
		p.child.kill("SIGTERM");
		const code = await new Promise((r) => p.child.once("exit", r));
		expect(code).toBe(0);
		const again = await startProcess(dir.path);
		expect(again.output().stderr).not.toContain("Admin token");
		// The CLI mints a working token for the owner (recovery path).
		const { stdout } = await run(
			process.execPath,
			[MAIN, "token", "create", "--name", "recovery"],
			{
				env: { ...process.env, STARLING_DATA_DIR: dir.path, ...(await testStoreEnv(dir.path)) },
			},
		);
		const minted = stdout.trim();
		expect(minted).toMatch(/^stp_/);
		const ok = await fetch(`${again.url}/api/peers`, {
			headers: { authorization: `Token ${minted}` },
		});
		expect(ok.status).toBe(200);
	});

	it("refuses a bad configuration with one line naming the variable", async () => {
		const dir = processes.dir();
		for (const [name, value] of [
			["STARLING_MANAGEMENT_LISTEN", "nonsense"],
			["STARLING_NETWORK_RANGE", "100.64.0.1/10"],
			["STARLING_SIGNAL_URL", "not a url"],
			["STARLING_STORE", "mysql"],
			["STARLING_POSTGRES_POOL_SIZE", "0"],
			["STARLING_MANAGEMENT_METRICS_LISTEN", "9090"],
		] as const) {
			const err = await run(process.execPath, [MAIN], {
				env: { ...process.env, STARLING_DATA_DIR: dir.path, [name]: value },
			}).then(
				() => undefined,
				(e: { code: number; stderr: string }) => e,
			);
			expect(err?.code).toBe(1);
			const lines = err!.stderr.trim().split("\n");
			expect(lines).toHaveLength(1);
			expect(lines[0]).toContain(name);
		}
		const unknown = await run(process.execPath, [MAIN, "frobnicate"]).catch(
			(e: { code: number }) => e,
		);
		expect((unknown as { code: number }).code).toBe(1);
	});

	it("two instances on one database (SQLite file or PostgreSQL): a one-off key registers exactly one peer across both", async () => {
		const dir = processes.dir();
		const tokenFile = join(dir.path, "admin-token");
		const a = await startProcess(dir.path, { STARLING_ADMIN_TOKEN_FILE: tokenFile });
		const b = await startProcess(dir.path);
		expect(existsSync(tokenFile)).toBe(true);
		const token = readFileSync(tokenFile, "utf8").trim();
		const key = await createKey(a.url, token, "one-off");
		const clients = Array.from(
			{ length: 24 },
			(_, i) => new ManagementClient({ url: i % 2 ? a.url : b.url, keyPair: generateKeyPair() }),
		);
		// Fetch server keys first so the logins race as closely as possible.
		const keys = await Promise.all(clients.map((c) => c.getServerKey()));
		expect(new Set(keys.map((k) => Buffer.from(k).toString("hex"))).size).toBe(1);
		const results = await Promise.allSettled(clients.map((c, i) => c.login(key, meta(`p${i}`))));
		expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
		for (const r of results) {
			if (r.status === "rejected") {
				expect((r.reason as ManagementCallError).code).toBe(grpc.status.PERMISSION_DENIED);
			}
		}
		const peers = await fetch(`${b.url}/api/peers`, {
			headers: { authorization: `Token ${token}` },
		});
		expect(((await peers.json()) as unknown[]).length).toBe(1);
		for (const c of clients) c.close();

		// Concurrent registrations with a reusable key through both instances get unique addresses.
		const reusable = await createKey(b.url, token, "reusable");
		const more = Array.from(
			{ length: 30 },
			(_, i) => new ManagementClient({ url: i % 2 ? a.url : b.url, keyPair: generateKeyPair() }),
		);
		const logins = await Promise.all(more.map((c, i) => c.login(reusable, meta(`r${i}`))));
		expect(new Set(logins.map((l) => l.self?.address)).size).toBe(30);
		for (const c of more) c.close();
	});
});
