import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { clearPostgresLeftovers, isRunning, startPostgres } from "./postgres.js";

const built = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "index.js");

const alive = isRunning;

describe("startPostgres", () => {
	it("starts a cluster on a loopback port, creates databases, and destroy stops it by PID and removes its folder", async () => {
		const cluster = await startPostgres();
		const pid = cluster.pid();
		let restarted: number | undefined;
		try {
			expect(pid).toBeGreaterThan(0);
			expect(alive(pid!)).toBe(true);
			expect(cluster.port).toBeGreaterThan(0);
			const a = await cluster.createDatabase();
			const b = await cluster.createDatabase();
			expect(a).not.toBe(b);
			expect(a).toMatch(new RegExp(`^postgres://postgres@127\\.0\\.0\\.1:${cluster.port}/`));
			await cluster.stopServer();
			expect(cluster.pid()).toBeUndefined();
			expect(alive(pid!)).toBe(false);
			await cluster.startServer();
			restarted = cluster.pid();
			expect(alive(restarted!)).toBe(true);
		} finally {
			await cluster.destroy();
		}
		expect(existsSync(cluster.dir)).toBe(false);
		expect(alive(restarted!)).toBe(false);
	}, 60_000);

	it("clears a crashed run's leftovers (its folder and its server) and leaves live runs alone", async () => {
		// A test process that starts a cluster and is then killed without any cleanup.
		const child = spawn(
			process.execPath,
			[
				"--input-type=module",
				"-e",
				`const { startPostgres } = await import(${JSON.stringify(built)});
				 const c = await startPostgres();
				 process.stdout.write(JSON.stringify({ dir: c.dir, pid: c.pid() }) + "\\n");
				 setInterval(() => {}, 1000);`,
			],
			{ stdio: ["ignore", "pipe", "inherit"] },
		);
		const line = await new Promise<string>((resolve, reject) => {
			let out = "";
			child.stdout.on("data", (d) => {
				out += String(d);
				if (out.includes("\n")) resolve(out.trim());
			});
			child.once("exit", (code) => reject(new Error(`child exited ${code}`)));
		});
		const leftover = JSON.parse(line) as { dir: string; pid: number };
		const live = await startPostgres();
		try {
			child.kill("SIGKILL");
			await new Promise((r) => child.once("exit", r));
			expect(alive(leftover.pid)).toBe(true);

			const cleared = await clearPostgresLeftovers();
			expect(cleared).toContain(leftover.dir);
			expect(existsSync(leftover.dir)).toBe(false);
			expect(alive(leftover.pid)).toBe(false);
			// This process's own cluster is not a leftover.
			expect(cleared).not.toContain(live.dir);
			expect(alive(live.pid()!)).toBe(true);
		} finally {
			child.kill("SIGKILL");
			await live.destroy();
		}
	}, 60_000);
});
