import { createServer } from "node:net";
import { CloseCode } from "@starling/relay-protocol";
import { describe, expect, it } from "vitest";
import { RelayClient } from "./client.js";
import { ABNORMAL_CLOSURE, RelayError } from "./errors.js";

const token = "A".repeat(98);

async function closedPort(): Promise<number> {
	return new Promise((resolve) => {
		const server = createServer();
		server.listen(0, "127.0.0.1", () => {
			const address = server.address();
			const port = typeof address === "object" && address ? address.port : 0;
			server.close(() => resolve(port));
		});
	});
}

describe("RelayClient", () => {
	it("checks its options", () => {
		expect(() => new RelayClient({ url: "http://relay:33080", token })).toThrow(/ws:\/\//);
		expect(() => new RelayClient({ url: "not a url", token })).toThrow();
		expect(() => new RelayClient({ url: "ws://relay:33080", token: "" })).toThrow(/token/);
		expect(() => new RelayClient({ url: "ws://relay:33080", token: "a b" })).toThrow(/token/);
		const client = new RelayClient({ url: "wss://relay.example/relay", token });
		expect(client.state).toBe("idle");
		expect(() => client.setToken("x".repeat(2000))).toThrow(/token/);
	});

	it("connect() rejects when nothing listens, and the client is idle again", async () => {
		const port = await closedPort();
		const client = new RelayClient({ url: `ws://127.0.0.1:${port}`, token });
		const err = await client.connect().catch((e: unknown) => e);
		expect(err).toBeInstanceOf(RelayError);
		expect((err as RelayError).code).toBe(ABNORMAL_CLOSURE);
		expect((err as RelayError).reason).toMatch(/ECONNREFUSED/);
		expect(client.state).toBe("idle");
		await client.close();
		expect(client.state).toBe("closed");
		await expect(client.connect()).rejects.toMatchObject({ code: CloseCode.Normal });
	});

	it("start() keeps retrying with backoff until closed", async () => {
		const port = await closedPort();
		const client = new RelayClient({
			url: `ws://127.0.0.1:${port}`,
			token,
			reconnect: { initialDelayMs: 20, maxDelayMs: 40, jitter: 0 },
		});
		const states = new Set<string>();
		const timer = setInterval(() => states.add(client.state), 2);
		client.start();
		await new Promise((resolve) => setTimeout(resolve, 300));
		clearInterval(timer);
		expect(states).toContain("waiting");
		expect(client.state === "waiting" || client.state === "connecting").toBe(true);
		const closed = new Promise((resolve) => client.once("closed", resolve));
		await client.close();
		expect(await closed).toBeUndefined();
		expect(client.send(new Uint8Array(32), new Uint8Array(1))).toBe(false);
	});

	it("describes errors by close code", () => {
		expect(new RelayError(CloseCode.TokenExpired, "token expired").message).toBe(
			"token expired (4002): token expired",
		);
		expect(new RelayError(1006, "").message).toBe("connection lost (1006)");
	});
});
