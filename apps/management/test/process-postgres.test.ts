// The real management binary on PostgreSQL: configuration errors of the
// PostgreSQL settings, an unreachable server at start, and the server lost
// and found again under a running management (REST 503, gRPC UNAVAILABLE,
// one log line per change, an open Sync stream kept).
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { generateKeyPair } from "@starling/crypto";
import { freeLoopbackPort, startPostgres } from "@starling/lab";
import { type ManagementCallError, ManagementClient } from "@starling/management-client";
import { describe, expect, it } from "vitest";
import { meta } from "./helpers.js";
import { MAIN, postgresForFile, trackManagementProcesses } from "./helpers-process.js";

const run = promisify(execFile);
const processes = trackManagementProcesses();
const cluster = postgresForFile();

/** Runs the binary to its exit; its exit code and stderr. */
async function runToExit(env: Record<string, string>) {
	const dir = processes.dir();
	return run(process.execPath, [MAIN], {
		env: { ...process.env, STARLING_DATA_DIR: dir.path, ...env },
		timeout: 30_000,
	}).then(
		() => ({ code: 0, stderr: "" }),
		(e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
	);
}

describe("management process on PostgreSQL", () => {
	it("refuses bad PostgreSQL settings with one line naming the variable, never echoing the DSN", async () => {
		for (const [name, env] of [
			["STARLING_STORE", { STARLING_STORE: "mysql" }],
			["STARLING_POSTGRES_DSN", { STARLING_STORE: "postgres" }],
			[
				"STARLING_POSTGRES_DSN",
				{ STARLING_STORE: "postgres", STARLING_POSTGRES_DSN: "not a url s3cret" },
			],
			[
				"STARLING_POSTGRES_DSN",
				{ STARLING_STORE: "postgres", STARLING_POSTGRES_DSN: "mysql://u:s3cret@h/db" },
			],
			[
				"STARLING_POSTGRES_DSN",
				{ STARLING_STORE: "postgres", STARLING_POSTGRES_DSN: "postgres://u:s3cret@h:5432" },
			],
			["STARLING_POSTGRES_POOL_SIZE", { STARLING_POSTGRES_POOL_SIZE: "lots" }],
		] as const) {
			const { code, stderr } = await runToExit(env);
			expect(code, stderr).toBe(1);
			const lines = stderr.trim().split("\n");
			expect(lines).toHaveLength(1);
			expect(lines[0]).toContain(name);
			expect(lines[0]).not.toContain("s3cret");
		}
	});

	it("stops with one line naming host:port when PostgreSQL cannot be reached at start", async () => {
		const port = await freeLoopbackPort();
		const { code, stderr } = await runToExit({
			STARLING_STORE: "postgres",
			STARLING_POSTGRES_DSN: `postgres://postgres:s3cret@127.0.0.1:${port}/starling`,
			STARLING_MANAGEMENT_LISTEN: "127.0.0.1:0",
			STARLING_MANAGEMENT_METRICS_LISTEN: "127.0.0.1:0",
		});
		expect(code).toBe(1);
		const lines = stderr.trim().split("\n");
		expect(lines, stderr).toHaveLength(1);
		expect(lines[0]).toContain(`127.0.0.1:${port}`);
		expect(lines[0]).not.toContain("s3cret");
	});

	it("two instances starting at once on an empty database: migrated once, one first account, one server key both serve", async () => {
		const dsn = await cluster().createDatabase();
		const started = await Promise.all(
			[0, 1].map(async () => {
				const p = await processes.spawn(
					{
						STARLING_DATA_DIR: processes.dir().path,
						STARLING_STORE: "postgres",
						STARLING_POSTGRES_DSN: dsn,
					},
					{ ready: "serving" },
				);
				return { url: p.url, stderr: () => p.output().stderr };
			}),
		);
		const tokens = started.flatMap((s) => [...s.stderr().matchAll(/Admin token[^:]*: (stp_\S+)/g)]);
		expect(tokens).toHaveLength(1);
		const keys = await Promise.all(
			started.map(async (s) => {
				const client = new ManagementClient({ url: s.url, keyPair: generateKeyPair() });
				try {
					return Buffer.from(await client.getServerKey()).toString("hex");
				} finally {
					client.close();
				}
			}),
		);
		expect(keys[0]).toBe(keys[1]);
		// The one admin token works on both.
		for (const s of started) {
			const res = await fetch(`${s.url}/api/users`, {
				headers: { authorization: `Token ${tokens[0]![1]}` },
			});
			expect(res.status).toBe(200);
			expect(((await res.json()) as unknown[]).length).toBe(1);
		}
	}, 90_000);

	it("PostgreSQL lost under a running management: REST 503, gRPC UNAVAILABLE, one log line each way, back without a restart", async () => {
		const dir = processes.dir();
		const tokenFile = join(dir.path, "admin-token");
		// A cluster of its own: it is stopped below.
		const own = await startPostgres();
		try {
			const p = await processes.spawn(
				{
					STARLING_DATA_DIR: dir.path,
					STARLING_STORE: "postgres",
					STARLING_POSTGRES_DSN: await own.createDatabase(),
					STARLING_ADMIN_TOKEN_FILE: tokenFile,
				},
				{ ready: "serving" },
			);
			const { child, url } = p;
			child.once("exit", (code) => {
				if (code !== null && code !== 0)
					console.error(
						`management exited ${code}: ${p.output().stderr}\n${p.output().stdout.slice(-3000)}`,
					);
			});
			const token = readFileSync(tokenFile, "utf8").trim();
			const auth = { authorization: `Token ${token}`, "content-type": "application/json" };
			const keyRes = await fetch(`${url}/api/setup-keys`, {
				method: "POST",
				headers: auth,
				body: JSON.stringify({
					name: "k",
					type: "reusable",
					expires_in: 86400,
					auto_groups: [],
					usage_limit: 0,
				}),
			});
			expect(keyRes.status).toBe(200);
			const setupKey = ((await keyRes.json()) as { key: string }).key;
			const agent = new ManagementClient({ url, keyPair: generateKeyPair() });
			await agent.login(setupKey, meta("steady"));
			let ended = false;
			let endError: unknown;
			let gotMap: () => void = () => undefined;
			const firstMap = new Promise<void>((r) => {
				gotMap = r;
			});
			const stream = await agent.sync(undefined, {
				onMap: () => gotMap(),
				onEnd: (e) => {
					ended = true;
					endError = e;
				},
			});

			// The stream is established (its first map came) before the database goes.
			await firstMap;
			await own.stopServer();
			const logLines = () =>
				p
					.output()
					.stdout.split("\n")
					.filter(Boolean)
					.map((l) => JSON.parse(l) as { msg: string; level: number });
			for (let i = 0; i < 4; i++) {
				const started = Date.now();
				const res = await fetch(`${url}/api/peers`, { headers: auth });
				expect(res.status).toBe(503);
				expect(await res.json()).toEqual({ message: expect.stringMatching(/database/), code: 503 });
				expect(Date.now() - started).toBeLessThan(10_000);
				const write = await fetch(`${url}/api/groups`, {
					method: "POST",
					headers: auth,
					body: JSON.stringify({ name: `g${i}` }),
				});
				expect(write.status).toBe(503);
				const other = new ManagementClient({ url, keyPair: generateKeyPair() });
				const err = await other.login(setupKey, meta(`late${i}`)).then(
					() => undefined,
					(e: ManagementCallError) => e,
				);
				other.close();
				expect(err?.code).toBe(grpc.status.UNAVAILABLE);
			}
			expect(child.exitCode).toBeNull();
			expect(ended, JSON.stringify(endError)).toBe(false);
			const down = logLines().filter((l) => /unreachable/.test(l.msg));
			expect(down).toHaveLength(1);
			expect(down[0]!.msg).toContain(`127.0.0.1:${own.port}`);

			await own.startServer();
			let status = 0;
			for (let i = 0; i < 100 && status !== 200; i++) {
				status = (await fetch(`${url}/api/peers`, { headers: auth })).status;
				if (status !== 200) await new Promise((r) => setTimeout(r, 100));
			}
			expect(status).toBe(200);
			const newcomer = new ManagementClient({ url, keyPair: generateKeyPair() });
			await newcomer.login(setupKey, meta("after"));
			newcomer.close();
			expect(logLines().filter((l) => /reachable again/.test(l.msg))).toHaveLength(1);
			expect(logLines().filter((l) => /unreachable/.test(l.msg))).toHaveLength(1);
			expect(ended).toBe(false);
			stream.close();
			agent.close();
		} finally {
			await own.destroy();
		}
	}, 90_000);
});
