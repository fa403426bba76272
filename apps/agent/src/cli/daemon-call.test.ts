// The CLI's status socket client and its small gRPC client against the real daemon server (grpc-js) and a
// real Agent on a unix socket: it must read the same answers and the same
// failures that a grpc-js client reads.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { createLogger } from "@starling/log";
import { DaemonServiceClient, DaemonServiceService, type DaemonStatus } from "@starling/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "../daemon/agent.js";
import { type RunningDaemon, startDaemonServer } from "../daemon/daemon-server.js";
import { StateDir } from "../daemon/state-dir.js";
import { statusSocketPath } from "../daemon/status-wire.js";
import { run } from "../system/exec.js";
import { callDaemon } from "./daemon-call.js";
import { fetchStatus } from "./status-call.js";

const logger = createLogger("daemon-call-test", { level: "silent" });
let dir: string;
let socket: string;
let daemon: RunningDaemon;
let grpcClient: DaemonServiceClient;

beforeAll(async () => {
	dir = mkdtempSync(join(tmpdir(), "starling-daemon-call-"));
	socket = join(dir, "daemon.sock");
	const stateDir = new StateDir(join(dir, "state"));
	stateDir.ensure();
	daemon = await startDaemonServer(new Agent({ stateDir, runner: run, logger }), socket, logger);
	grpcClient = new DaemonServiceClient(`unix:${socket}`, grpc.credentials.createInsecure());
});

afterAll(async () => {
	grpcClient?.close();
	await daemon?.close();
	rmSync(dir, { recursive: true, force: true });
});

function grpcJsCall<Req, Res>(
	method: (req: Req, cb: (err: grpc.ServiceError | null, res: Res) => void) => unknown,
	req: Req,
): Promise<{ res?: Res; err?: grpc.ServiceError }> {
	return new Promise((resolve) => method(req, (err, res) => resolve(err ? { err } : { res })));
}

describe("callDaemon", () => {
	it("reads the daemon's status as grpc-js does", async () => {
		const ours = await callDaemon(socket, DaemonServiceService.status, { detail: true });
		const theirs = await grpcJsCall<{ detail: boolean }, DaemonStatus>(
			grpcClient.status.bind(grpcClient),
			{ detail: true },
		);
		expect(theirs.err).toBeUndefined();
		expect(ours).toEqual(theirs.res);
		expect(ours.wgPublicKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
	});

	it("fails with the daemon's own one-line message", async () => {
		// Nothing listens on port 1: the agent answers UNAVAILABLE with a readable line.
		const request = { managementUrl: "http://127.0.0.1:1", setupKey: "k" };
		const theirs = await grpcJsCall(grpcClient.login.bind(grpcClient), request);
		expect(theirs.err?.details).toBeTruthy();
		await expect(callDaemon(socket, DaemonServiceService.login, request)).rejects.toThrow(
			theirs.err?.details as string,
		);
	});

	it("says in one line that no daemon runs when nothing listens", async () => {
		await expect(
			callDaemon(join(dir, "nobody.sock"), DaemonServiceService.status, { detail: false }),
		).rejects.toThrow(/^the starling daemon is not running \(nothing listens on .*nobody\.sock\)/);
	});

	it("gives up after its deadline", async () => {
		// A listener that accepts and never answers HTTP/2.
		const { createServer } = await import("node:net");
		const silent = createServer(() => undefined);
		const silentSocket = join(dir, "silent.sock");
		await new Promise<void>((resolve) => silent.listen(silentSocket, resolve));
		try {
			await expect(
				callDaemon(silentSocket, DaemonServiceService.status, { detail: false }, 300),
			).rejects.toThrow("the daemon did not answer within 300 ms");
		} finally {
			silent.close();
		}
	});
});

describe("fetchStatus", () => {
	it("reads from the status socket what grpc-js reads from the gRPC socket", async () => {
		for (const detail of [false, true]) {
			const ours = await fetchStatus(socket, detail);
			const theirs = await grpcJsCall<{ detail: boolean }, DaemonStatus>(
				grpcClient.status.bind(grpcClient),
				{ detail },
			);
			expect(ours).toEqual(theirs.res);
		}
	});

	it("finds the status socket only root can open", () => {
		expect(statSync(statusSocketPath(socket)).mode & 0o777).toBe(0o600);
	});

	it("is undefined when no status socket listens (the CLI then asks over gRPC)", async () => {
		expect(await fetchStatus(join(dir, "nobody.sock"), false)).toBeUndefined();
	});

	it("is closed on a request larger than a status request, and keeps serving", async () => {
		const closed = await new Promise<boolean>((resolve) => {
			const c = connect(statusSocketPath(socket));
			c.on("connect", () => c.write(Buffer.from([0, 0, 1, 0, 0])));
			c.on("close", () => resolve(true));
			c.on("error", () => undefined);
		});
		expect(closed).toBe(true);
		expect((await fetchStatus(socket, false))?.wgPublicKey).toBeTruthy();
	});
});
