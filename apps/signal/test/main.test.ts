import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { status } from "@grpc/grpc-js";
import { generateKeyPair } from "@starling/crypto";
import { freeLoopbackPort } from "@starling/lab";
import { SignalClient, type SignalError } from "@starling/signal-client";
import { afterEach, describe, expect, it } from "vitest";

const mainJs = fileURLToPath(new URL("../dist/main.js", import.meta.url));

function runWithEnv(env: Record<string, string>) {
	return spawnSync(process.execPath, [mainJs], {
		env: { PATH: process.env.PATH ?? "", ...env },
		encoding: "utf8",
		timeout: 10_000,
	});
}

describe("starling-signal executable", () => {
	let child: ChildProcess | undefined;
	afterEach(() => {
		if (child && child.exitCode === null) child.kill("SIGKILL");
	});

	it("is built (run `npx tsc -b apps/signal packages/signal-client` first)", () => {
		expect(existsSync(mainJs)).toBe(true);
	});

	it("refuses a bad variable with one line naming it and exit code 1", () => {
		for (const [name, value] of [
			["STARLING_SIGNAL_LISTEN", "no-port-here"],
			["STARLING_LOG_LEVEL", "chatty"],
			["STARLING_SIGNAL_HEARTBEAT_MS", "-1"],
			["STARLING_SIGNAL_METRICS_LISTEN", "9091"],
			["STARLING_NATS_URL", "http://nats.example:4222"],
			["STARLING_NATS_URL", " , "],
		] as const) {
			const result = runWithEnv({ [name]: value });
			expect(result.status).toBe(1);
			const lines = result.stderr.trim().split("\n");
			expect(lines).toHaveLength(1);
			expect(lines[0]).toContain(name);
			expect(result.stdout).toBe("");
		}
	});

	it("never echoes a password from a bad STARLING_NATS_URL", () => {
		const result = runWithEnv({ STARLING_NATS_URL: "nats://signal:hunter2@nats.example/path" });
		expect(result.status).toBe(1);
		expect(result.stderr).toContain("STARLING_NATS_URL");
		expect(result.stderr).not.toContain("hunter2");
	});

	it("exits 1 with one line naming STARLING_NATS_URL and the server when NATS is unreachable", async () => {
		const port = await freeLoopbackPort();
		const result = runWithEnv({
			STARLING_SIGNAL_LISTEN: "127.0.0.1:0",
			STARLING_SIGNAL_METRICS_LISTEN: "off",
			STARLING_LOG_FORMAT: "json",
			STARLING_NATS_URL: `nats://signal:hunter2@127.0.0.1:${port}`,
		});
		expect(result.status).toBe(1);
		const lines = `${result.stdout}${result.stderr}`.trim().split("\n");
		expect(lines).toHaveLength(1);
		expect(lines[0]).toContain("STARLING_NATS_URL");
		expect(lines[0]).toContain(`nats://***@127.0.0.1:${port}`);
		expect(lines[0]).not.toContain("hunter2");
		expect(lines[0]).not.toContain("signal server listening");
	});

	it("serves on the configured address and shuts down cleanly on SIGTERM", async () => {
		const started = spawn(process.execPath, [mainJs], {
			env: {
				PATH: process.env.PATH ?? "",
				STARLING_SIGNAL_LISTEN: "127.0.0.1:0",
				STARLING_SIGNAL_METRICS_LISTEN: "127.0.0.1:0",
			},
			stdio: ["ignore", "pipe", "inherit"],
		});
		child = started;
		const logs: Record<string, unknown>[] = [];
		const lines = createInterface({ input: started.stdout });
		const { port, metricsPort } = await new Promise<{ port: number; metricsPort: number }>(
			(resolve, reject) => {
				const timer = setTimeout(() => reject(new Error("server did not report listening")), 5_000);
				lines.on("line", (line) => {
					const entry = JSON.parse(line) as Record<string, unknown>;
					logs.push(entry);
					if (entry.msg === "signal server listening") {
						clearTimeout(timer);
						resolve({ port: entry.port as number, metricsPort: entry.metricsPort as number });
					}
				});
			},
		);
		expect(logs[0]).toMatchObject({ service: "signal", level: 30, host: "127.0.0.1" });
		const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
		expect(ready.status).toBe(200);
		expect(await ready.json()).toEqual({ status: "ok", checks: { grpc: "ok" } });

		const peer = generateKeyPair();
		const client = new SignalClient({
			url: `http://127.0.0.1:${port}`,
			keyPair: peer,
			reconnect: false,
		});
		await client.connect();
		const closed = new Promise<SignalError | undefined>((resolve) =>
			client.once("closed", resolve),
		);
		const exited = new Promise<number | null>((resolve) => started.once("exit", resolve));
		started.kill("SIGTERM");
		expect((await closed)?.code).toBe(status.UNAVAILABLE);
		expect(await exited).toBe(0);
		await client.close();

		const messages = logs.map((entry) => entry.msg);
		expect(messages).toContain("peer connected");
		expect(messages).toContain("signal server stopped");
		// Logs name peers by public key only; no secret or private material.
		const text = JSON.stringify(logs);
		expect(text).toContain(Buffer.from(peer.publicKey).toString("base64"));
		expect(text).not.toContain(Buffer.from(peer.privateKey).toString("base64"));
	});
});
