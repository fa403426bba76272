// Relay tokens are HMACs under STARLING_RELAY_SECRET, not state of one
// management instance: two management processes configured alike (each
// with its own store) hand agents tokens that both of two relay processes
// admit; a management with another secret hands out tokens they refuse.
// Real processes on loopback ports; the tokens come through real logins and
// Sync streams, and real relay clients present them.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPair } from "@starling/crypto";
import { freeLoopbackPort } from "@starling/lab";
import { createLogger } from "@starling/log";
import { ManagementClient } from "@starling/management-client";
import type { RelayConfig } from "@starling/proto";
import { RelayClient } from "@starling/relay-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MANAGEMENT, NODE, RELAY } from "./fixture.js";

const SECRET = "relay-tokens-test-secret-0123456789abcdef";
const OTHER_SECRET = "another-secret-entirely-9876543210fedcba";
const quiet = createLogger("relay-tokens-test", { level: "silent" });

const children: ChildProcess[] = [];
let dir: string;

/** Starts a process and resolves when a line of its output matches `ready`. */
function start(script: string, env: Record<string, string>, ready: RegExp): Promise<ChildProcess> {
	const child = spawn(NODE, [script], {
		env: { PATH: process.env.PATH ?? "", STARLING_LOG_FORMAT: "json", ...env },
		stdio: ["ignore", "pipe", "pipe"],
	});
	children.push(child);
	return new Promise((resolve, reject) => {
		let output = "";
		// Generous: on a loaded 2-core machine three management processes start at once.
		const timer = setTimeout(() => reject(new Error(`${script} did not start: ${output}`)), 45_000);
		const onData = (d: Buffer) => {
			output += d.toString();
			if (ready.test(output)) {
				clearTimeout(timer);
				resolve(child);
			}
		};
		child.stdout?.on("data", onData);
		child.stderr?.on("data", onData);
		child.once("exit", (code) => {
			clearTimeout(timer);
			reject(new Error(`${script} exited with ${code}: ${output}`));
		});
	});
}

const relayUrls: string[] = [];

/** Fails with the step's name when it takes longer than `ms` (a hang says where it is). */
function within<T>(ms: number, step: string, work: Promise<T>): Promise<T> {
	let timer: NodeJS.Timeout | undefined;
	const timeout = new Promise<never>((_, reject) => {
		timer = setTimeout(() => reject(new Error(`${step}: no answer within ${ms} ms`)), ms);
	});
	return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

async function startManagement(name: string, secret: string): Promise<string> {
	const port = await freeLoopbackPort();
	const dataDir = join(dir, name);
	await start(
		MANAGEMENT,
		{
			STARLING_DATA_DIR: dataDir,
			STARLING_MANAGEMENT_LISTEN: `127.0.0.1:${port}`,
			STARLING_MANAGEMENT_METRICS_LISTEN: "off",
			STARLING_ADMIN_TOKEN_FILE: join(dir, `${name}-admin-token`),
			STARLING_RELAY_URLS: relayUrls.join(","),
			STARLING_RELAY_SECRET: secret,
		},
		/management is serving/,
	);
	return `http://127.0.0.1:${port}`;
}

/** A new peer registers on management at `url` and returns the relay part of its first map. */
async function relayConfigFrom(name: string, url: string): Promise<RelayConfig> {
	const admin = readFileSync(join(dir, `${name}-admin-token`), "utf8").trim();
	const res = await fetch(`${url}/api/setup-keys`, {
		method: "POST",
		headers: { authorization: `Token ${admin}`, "content-type": "application/json" },
		body: JSON.stringify({
			name: "k",
			type: "reusable",
			expires_in: 3600,
			auto_groups: [],
			usage_limit: 0,
		}),
	});
	expect(res.status).toBe(200);
	const { key } = (await res.json()) as { key: string };
	const client = new ManagementClient({ url, keyPair: generateKeyPair(), timeoutMs: 30_000 });
	try {
		await client.login(key, {
			hostname: "t",
			os: "linux",
			kernelVersion: "",
			agentVersion: "test",
			osVersion: "",
		});
		let stream: { close(): void } | undefined;
		const relay = await new Promise<RelayConfig>((resolve, reject) => {
			client
				.sync(undefined, {
					onMap: (map) =>
						map.relay ? resolve(map.relay) : reject(new Error("no relay in the map")),
					onEnd: (error) => reject(new Error(`sync ended before a map: ${error?.message}`)),
				})
				.then((opened) => {
					stream = opened;
				}, reject);
		});
		stream?.close();
		return relay;
	} finally {
		client.close();
	}
}

/** Whether the relay at `url` admits `token` (a real RelayClient's first connect). */
async function admits(url: string, token: string): Promise<boolean | string> {
	const client = new RelayClient({ url, token, logger: quiet, reconnect: false });
	try {
		await client.connect();
		return true;
	} catch (err) {
		return (err as Error).message;
	} finally {
		await client.close();
	}
}

describe("relay tokens across management instances", () => {
	const management: Record<string, string> = {};

	beforeAll(async () => {
		dir = mkdtempSync(join(tmpdir(), "starling-relay-tokens-"));
		for (let i = 0; i < 2; i++) {
			const port = await freeLoopbackPort();
			relayUrls.push(`ws://127.0.0.1:${port}`);
			await start(
				RELAY,
				{ STARLING_RELAY_LISTEN: `127.0.0.1:${port}`, STARLING_RELAY_SECRET: SECRET },
				/listening/,
			);
		}
		const [a, b, other] = await Promise.all([
			startManagement("a", SECRET),
			startManagement("b", SECRET),
			startManagement("other", OTHER_SECRET),
		]);
		Object.assign(management, { a, b, other });
	}, 120_000);

	afterAll(async () => {
		for (const c of children.splice(0)) {
			if (c.exitCode === null && c.signalCode === null) {
				c.kill("SIGKILL");
				await new Promise((r) => c.once("exit", r));
			}
		}
		if (dir) rmSync(dir, { recursive: true, force: true });
	});

	it("tokens from either of two instances configured alike are admitted by every relay", async () => {
		for (const name of ["a", "b"]) {
			const relay = await within(
				25_000,
				`relay config from ${name}`,
				relayConfigFrom(name, management[name]!),
			);
			expect(relay.urls).toEqual(relayUrls);
			for (const url of relayUrls) {
				expect(await within(10_000, `${name}'s token on ${url}`, admits(url, relay.token))).toBe(
					true,
				);
			}
		}
	});

	it("a token from an instance with another secret is refused by every relay", async () => {
		const relay = await within(
			25_000,
			"relay config from other",
			relayConfigFrom("other", management.other!),
		);
		for (const url of relayUrls) {
			expect(await within(10_000, `other's token on ${url}`, admits(url, relay.token))).toMatch(
				/token|signature|auth/i,
			);
		}
	});
});
