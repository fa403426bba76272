import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

// Runs against dist: `pnpm build` first.
const FIXTURE = resolve(__dirname, "../test/fixture-service.mjs");
const dir = mkdtempSync(join(tmpdir(), "starling-run-service-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runOnce(env: Record<string, string>) {
	return spawnSync(process.execPath, [FIXTURE], {
		env: { PATH: process.env.PATH ?? "", ...env },
		encoding: "utf8",
		timeout: 10_000,
	});
}

describe("runService", () => {
	it("stops a bad configuration with one line naming the variable and exit code 1", () => {
		const badFile = join(dir, "bad.json");
		writeFileSync(badFile, JSON.stringify({ STARLING_TEST_PORT: "eighty" }));
		const cases: [Record<string, string>, string][] = [
			[{ STARLING_TEST_PORT: "x" }, "starling-fixture: STARLING_TEST_PORT must be a number"],
			[{ STARLING_CONFIG_FILE: badFile }, "starling-fixture: STARLING_TEST_PORT must be a number"],
			[
				{ STARLING_CONFIG_FILE: join(dir, "missing.json") },
				"starling-fixture: STARLING_CONFIG_FILE cannot be read",
			],
			[
				{ STARLING_TEST_PORT: "8080", STARLING_LOG_FORMAT: "yaml" },
				'starling-fixture: invalid STARLING_LOG_FORMAT: expected json or pretty, got "yaml"',
			],
		];
		for (const [env, expected] of cases) {
			const result = runOnce(env);
			expect(result.status, result.stderr).toBe(1);
			const lines = result.stderr.trim().split("\n");
			expect(lines).toHaveLength(1);
			expect(lines[0]).toContain(expected);
			expect(result.stdout).toBe("");
		}
	});

	it("takes values from the file, and the environment over the file", () => {
		const file = join(dir, "good.json");
		writeFileSync(file, JSON.stringify({ STARLING_TEST_PORT: 8080 }));
		// The file's value is valid, the environment's is not: the environment must win.
		const result = runOnce({ STARLING_CONFIG_FILE: file, STARLING_TEST_PORT: "bad" });
		expect(result.status).toBe(1);
		expect(result.stderr).toContain('got "bad"');
	});

	it("closes gracefully on SIGTERM and exits 0", async () => {
		const file = join(dir, "port.json");
		writeFileSync(file, JSON.stringify({ STARLING_TEST_PORT: 8080 }));
		const child = spawn(process.execPath, [FIXTURE], {
			env: { PATH: process.env.PATH ?? "", STARLING_CONFIG_FILE: file },
			stdio: ["ignore", "pipe", "pipe"],
		});
		let stdout = "";
		child.stdout.on("data", (d: Buffer) => {
			stdout += d.toString();
		});
		const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
		const deadline = Date.now() + 10_000;
		while (!stdout.includes("fixture running") && Date.now() < deadline) {
			await new Promise((r) => setTimeout(r, 20));
		}
		const running = JSON.parse(stdout.trim().split("\n")[0]!) as { port: number };
		expect(running.port).toBe(8080);
		child.kill("SIGTERM");
		expect(await exited).toBe(0);
		const messages = stdout
			.trim()
			.split("\n")
			.map((l) => (JSON.parse(l) as { msg: string }).msg);
		expect(messages).toEqual(["fixture running", "shutting down", "fixture closed", "stopped"]);
	});
});
