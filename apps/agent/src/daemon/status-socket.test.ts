// The status socket on a real unix socket: what it answers to bad input, and
// that closing it neither waits for its clients nor leaves the socket file.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@starling/log";
import { DaemonStatus } from "@starling/proto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fetchStatus } from "../cli/status-call.js";
import { type StatusSocket, startStatusSocket } from "./status-socket.js";
import { encodeFrame, FRAME_ERROR, statusSocketPath, takeFrame } from "./status-wire.js";

const logger = createLogger("status-socket-test", { level: "silent" });
const status = DaemonStatus.fromPartial({ wgPublicKey: "key-of-this-peer" });
let dir: string;
let grpcSocket: string;
let path: string;
let served: StatusSocket | undefined;

beforeEach(async () => {
	dir = mkdtempSync(join(tmpdir(), "starling-status-socket-"));
	grpcSocket = join(dir, "daemon.sock");
	path = statusSocketPath(grpcSocket);
	served = await startStatusSocket(path, async () => status, logger);
});

afterEach(async () => {
	await served?.close();
	rmSync(dir, { recursive: true, force: true });
});

/** Sends `bytes` and reads what the socket answers until it closes the connection. */
function exchange(bytes: Buffer): Promise<Buffer> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		const c = connect(path);
		c.on("connect", () => c.write(bytes));
		c.on("data", (chunk: Buffer) => chunks.push(chunk));
		c.on("close", () => resolve(Buffer.concat(chunks)));
		c.on("error", reject);
	});
}

describe("startStatusSocket", () => {
	it("answers a request of an unknown kind or a body that is no StatusRequest with one error line, and keeps serving", async () => {
		for (const bad of [
			encodeFrame(7, Buffer.alloc(0)),
			encodeFrame(0, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])),
		]) {
			const frame = takeFrame(await exchange(bad));
			expect(frame?.kind).toBe(FRAME_ERROR);
			expect(frame?.body.toString("utf8")).toMatch(/^bad status request: [^\n]+$/);
		}
		expect((await fetchStatus(grpcSocket, false))?.wgPublicKey).toBe("key-of-this-peer");
	});

	it("closes at once while a client that sent nothing is still connected, and removes its socket", async () => {
		const client = connect(path);
		client.on("error", () => undefined);
		await new Promise<void>((resolve) => client.on("connect", () => resolve()));
		const started = Date.now();
		await served?.close();
		served = undefined;
		// Without closing its connections, close() waits out the client's 10 s timeout.
		expect(Date.now() - started).toBeLessThan(2_000);
		expect(existsSync(path)).toBe(false);
		client.destroy();
	});
});
