// The harness itself with Debian's haproxy: it starts, stops by PID leaving
// nothing behind, and removes what a crashed run left (a proxy whose owner is
// gone, and its folder).
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startHaproxy } from "./haproxy.js";
import { renderHaproxyConfig } from "./haproxy-config.js";
import { isAlive } from "./leftovers.js";
import { freeLoopbackPort } from "./ports.js";
import { waitFor } from "./wait.js";

/** A backend nobody listens on: the proxy starts, the server is DOWN. */
const unreachable = async () => [
	{
		name: "nobody",
		protocol: "http" as const,
		pathPrefixes: [],
		servers: [{ name: "s1", address: `127.0.0.1:${await freeLoopbackPort()}` }],
		health: { path: "/readyz", protocol: "h1" as const },
	},
];

describe("startHaproxy", () => {
	it("runs haproxy in the foreground and stops it by PID, folder and all", async () => {
		const proxy = await startHaproxy({ backends: await unreachable() });
		expect(isAlive(proxy.pid)).toBe(true);
		await proxy.waitForServer("nobody", "s1", "DOWN");
		// No server up: HAProxy answers 503 itself, in the REST API's error shape.
		const res = await fetch(`${proxy.url}/api/peers`);
		expect(res.status).toBe(503);
		expect(res.headers.get("content-type")).toBe("application/json");
		expect(await res.json()).toEqual({
			message: "no instance of this service is ready; try again shortly",
			code: 503,
		});
		const folder = /stats socket (\S+)\/admin\.sock/.exec(proxy.configText)?.[1];
		expect(folder && existsSync(folder)).toBe(true);
		await proxy.stop();
		expect(isAlive(proxy.pid)).toBe(false);
		expect(existsSync(folder!)).toBe(false);
	});

	it("kills a proxy a crashed run left and removes its folder", async () => {
		// An owner that is gone: a process that already exited.
		const dead = spawn("true");
		await new Promise((r) => dead.once("exit", r));
		const folder = join(tmpdir(), `starling-test-haproxy-${dead.pid}-crashed`);
		mkdirSync(folder, { recursive: true });
		const cfg = join(folder, "haproxy.cfg");
		writeFileSync(
			cfg,
			renderHaproxyConfig({
				listen: { address: "127.0.0.1", port: await freeLoopbackPort() },
				backends: await unreachable(),
			}),
		);
		const orphan = spawn("haproxy", ["-db", "-f", cfg], { stdio: "ignore", detached: true });
		orphan.unref();
		await waitFor("the orphan proxy runs", async () =>
			execFileSync("ps", ["-o", "comm=", "-p", String(orphan.pid)])
				.toString()
				.includes("haproxy")
				? true
				: undefined,
		);

		const proxy = await startHaproxy({ backends: await unreachable() });
		try {
			await waitFor("the orphan is gone", async () => (isAlive(orphan.pid!) ? undefined : true));
			expect(existsSync(folder)).toBe(false);
		} finally {
			await proxy.stop();
		}
	});
});
