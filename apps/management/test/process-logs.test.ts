// The management binary's log output: JSON lines when stdout is a pipe (each key
// once), readable lines when stdout is a terminal (a pseudo-terminal from
// util-linux `script`, in Debian's essential bsdutils), STARLING_LOG_FORMAT
// forcing JSON.
import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { tempDir } from "./helpers.js";
import { testStoreEnv } from "./test-store.js";

const MAIN = resolve(__dirname, "../dist/main.js");

const children: ChildProcess[] = [];
const dirs: ReturnType<typeof tempDir>[] = [];

afterEach(async () => {
	for (const c of children.splice(0)) {
		if (c.exitCode === null && c.signalCode === null) {
			// Started detached: the group holds `script` and the management process under it.
			if (c.pid !== undefined) process.kill(-c.pid, "SIGKILL");
			await new Promise((r) => c.once("exit", r));
		}
	}
	for (const d of dirs.splice(0)) d.remove();
});

/**
 * Starts management on a free port (port 0; the port is read from its first
 * log line), optionally inside a pseudo-terminal, and returns its output so far.
 */
async function start(env: Record<string, string>, terminal: boolean) {
	const dir = tempDir();
	dirs.push(dir);
	const childEnv = {
		...process.env,
		STARLING_DATA_DIR: dir.path,
		STARLING_MANAGEMENT_LISTEN: "127.0.0.1:0",
		// Its own log lines name the API's address first; no second listener.
		STARLING_MANAGEMENT_METRICS_LISTEN: "off",
		...(await testStoreEnv(dir.path)),
		...env,
	};
	delete childEnv.NO_COLOR;
	const command = terminal
		? spawn("script", ["-qfec", `${process.execPath} ${MAIN}`, "/dev/null"], {
				env: childEnv,
				stdio: ["ignore", "pipe", "pipe"],
				detached: true,
			})
		: spawn(process.execPath, [MAIN], {
				env: childEnv,
				stdio: ["ignore", "pipe", "pipe"],
				detached: true,
			});
	children.push(command);
	let output = "";
	command.stdout?.on("data", (d: Buffer) => {
		output += d.toString();
	});
	const deadline = Date.now() + 20_000;
	let port: string | undefined;
	while (port === undefined) {
		if (command.exitCode !== null) throw new Error(`management exited early: ${output}`);
		if (Date.now() > deadline) throw new Error(`management did not start: ${output}`);
		port = /127\.0\.0\.1:(\d+)/.exec(output.replace(/127\.0\.0\.1:0\b/g, ""))?.[1];
		await new Promise((r) => setTimeout(r, 25));
	}
	return { url: `http://127.0.0.1:${port}`, output: () => output };
}

/** One REST request that logs, then waits until its "request completed" line is out. */
async function requestAndWait(server: { url: string; output(): string }): Promise<void> {
	const res = await fetch(`${server.url}/api/peers`);
	expect(res.status).toBe(401);
	const deadline = Date.now() + 10_000;
	while (!server.output().includes("request completed") && Date.now() < deadline) {
		await new Promise((r) => setTimeout(r, 25));
	}
}

describe("management logs", () => {
	it("writes JSON to a pipe, and each REST line carries component once", async () => {
		const server = await start({}, false);
		await requestAndWait(server);
		const lines = server.output().trim().split("\n");
		const rest = lines.filter((l) => l.includes('"reqId"'));
		expect(rest.length).toBeGreaterThanOrEqual(2);
		for (const line of rest) {
			// JSON.parse keeps the last of duplicate keys: count them in the raw text.
			expect(line.match(/"component":/g)).toHaveLength(1);
			expect(line.match(/"service":/g)).toHaveLength(1);
			expect(JSON.parse(line)).toMatchObject({ service: "management", component: "rest" });
		}
		for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
	});

	it("writes readable lines to a terminal, and JSON when forced", async () => {
		const server = await start({}, true);
		await requestAndWait(server);
		// Colour codes aside, e.g. "[17:30:09.970] INFO: management/rest: incoming request {...}".
		// biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colour codes
		const text = server.output().replace(/\u001b\[[0-9;]*m/g, "");
		expect(text).toMatch(
			/\[\d\d:\d\d:\d\d\.\d{3}\] INFO: management: management is serving gRPC and REST \{"listen":"127\.0\.0\.1:\d+"/,
		);
		expect(text).toMatch(/INFO: management\/rest: incoming request \{"reqId":"req-1"/);
		expect(text).not.toContain('"level":30');

		const forced = await start({ STARLING_LOG_FORMAT: "json" }, true);
		await requestAndWait(forced);
		const jsonLines = forced
			.output()
			.split(/\r?\n/)
			.filter((l) => l.startsWith("{"));
		expect(jsonLines.length).toBeGreaterThanOrEqual(3);
		for (const line of jsonLines) expect(JSON.parse(line)).toHaveProperty("service", "management");
	});
});
