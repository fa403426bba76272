// Management serving TLS itself from certificate files: gRPC (ALPN h2) and
// REST (ALPN http/1.1) on the one port, over real sockets, with a test CA
// made by openssl; and the one-line refusals of a bad TLS configuration.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join, resolve } from "node:path";
import { connect } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { createTestPki, type TestPki } from "@starling/lab";
import { ManagementServiceClient } from "@starling/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chooseAlpn } from "../src/api-listener.js";
import type { RunningManagement } from "../src/server.js";
import { startTestManagement, tempDir } from "./helpers.js";

const MAIN = resolve(__dirname, "../dist/main.js");

let dir: ReturnType<typeof tempDir>;
let pki: TestPki;
let management: RunningManagement;

beforeAll(async () => {
	dir = tempDir("starling-mgmt-tls-");
	pki = createTestPki(join(dir.path, "pki"));
	management = await startTestManagement(join(dir.path, "data"), {
		STARLING_MANAGEMENT_TLS_CERT_FILE: pki.certFile,
		STARLING_MANAGEMENT_TLS_KEY_FILE: pki.keyFile,
	});
});

afterAll(async () => {
	await management?.close();
	dir?.remove();
});

function ca(): Buffer {
	return readFileSync(pki.caFile);
}

function restGet(
	path: string,
	alpn: string[] | undefined,
): Promise<{ status: number; body: string }> {
	return new Promise((resolveAnswer, reject) => {
		const req = request(
			{
				host: "127.0.0.1",
				servername: "localhost",
				port: management.port,
				path,
				ca: ca(),
				ALPNProtocols: alpn,
				headers: { authorization: `Token ${management.bootstrap?.plainToken}` },
			},
			(res) => {
				let body = "";
				res.on("data", (d: Buffer) => {
					body += d.toString();
				});
				res.on("end", () => resolveAnswer({ status: res.statusCode ?? 0, body }));
			},
		);
		req.on("error", reject);
		req.end();
	});
}

describe("management over TLS", () => {
	it("answers gRPC over h2 to a client trusting the test CA", async () => {
		const client = new ManagementServiceClient(
			`localhost:${management.port}`,
			grpc.credentials.createSsl(ca()),
		);
		try {
			const key = await new Promise<Uint8Array>((ok, fail) =>
				client.getServerKey({}, (err, res) => (err ? fail(err) : ok(res.publicKey))),
			);
			expect(Buffer.from(key).equals(Buffer.from(management.serverKey.publicKey))).toBe(true);
		} finally {
			client.close();
		}
	});

	it("answers REST to HTTP/1.1 clients, also those offering h2 first (curl, browsers)", async () => {
		for (const alpn of [undefined, ["http/1.1"], ["h2", "http/1.1"]]) {
			const res = await restGet("/api/peers", alpn);
			expect(res.status, JSON.stringify(alpn)).toBe(200);
			expect(JSON.parse(res.body)).toEqual([]);
		}
	});

	it("gives h2 only to clients that offer nothing else, and refuses unknown protocols", async () => {
		expect(chooseAlpn(["h2"])).toBe("h2");
		expect(chooseAlpn(["h2", "http/1.1"])).toBe("http/1.1");
		expect(chooseAlpn(["spdy/3"])).toBeUndefined();
		const negotiated = await new Promise<string | false>((ok, fail) => {
			const socket = connect({
				host: "127.0.0.1",
				servername: "localhost",
				port: management.port,
				ca: ca(),
				ALPNProtocols: ["h2"],
			});
			socket.once("secureConnect", () => {
				ok(socket.alpnProtocol ?? false);
				socket.destroy();
			});
			socket.once("error", fail);
		});
		expect(negotiated).toBe("h2");
	});

	it("fails the handshake of a client that does not trust the CA, and keeps serving", async () => {
		const error = await new Promise<NodeJS.ErrnoException>((ok) => {
			const socket = connect({
				host: "127.0.0.1",
				servername: "localhost",
				port: management.port,
				ca: [],
			});
			socket.once("secureConnect", () => socket.destroy());
			socket.once("error", ok);
		});
		expect(error.code).toMatch(/SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY/);
		expect((await restGet("/api/peers", undefined)).status).toBe(200);
	});
});

describe("bad TLS configuration", () => {
	function run(env: Record<string, string>) {
		return spawnSync(process.execPath, [MAIN], {
			env: {
				PATH: process.env.PATH ?? "",
				STARLING_DATA_DIR: join(dir.path, "never"),
				STARLING_MANAGEMENT_LISTEN: "127.0.0.1:0",
				STARLING_MANAGEMENT_METRICS_LISTEN: "off",
				...env,
			},
			encoding: "utf8",
			timeout: 15_000,
		});
	}

	it("exits 1 with one line naming the variable and the file", () => {
		const notPem = join(dir.path, "not-pem.txt");
		writeFileSync(notPem, "hello\n");
		const cases: [Record<string, string>, RegExp][] = [
			[
				{ STARLING_MANAGEMENT_TLS_CERT_FILE: pki.certFile },
				/STARLING_MANAGEMENT_TLS_KEY_FILE is not set but STARLING_MANAGEMENT_TLS_CERT_FILE is/,
			],
			[
				{ STARLING_MANAGEMENT_TLS_KEY_FILE: pki.keyFile },
				/STARLING_MANAGEMENT_TLS_CERT_FILE is not set but STARLING_MANAGEMENT_TLS_KEY_FILE is/,
			],
			[
				{
					STARLING_MANAGEMENT_TLS_CERT_FILE: join(dir.path, "missing.pem"),
					STARLING_MANAGEMENT_TLS_KEY_FILE: pki.keyFile,
				},
				/STARLING_MANAGEMENT_TLS_CERT_FILE cannot be read: .*missing\.pem/,
			],
			[
				{
					STARLING_MANAGEMENT_TLS_CERT_FILE: notPem,
					STARLING_MANAGEMENT_TLS_KEY_FILE: pki.keyFile,
				},
				/STARLING_MANAGEMENT_TLS_CERT_FILE \(.*not-pem\.txt\) is not a PEM certificate/,
			],
			[
				{
					STARLING_MANAGEMENT_TLS_CERT_FILE: pki.certFile,
					STARLING_MANAGEMENT_TLS_KEY_FILE: pki.otherKeyFile,
				},
				/STARLING_MANAGEMENT_TLS_KEY_FILE \(.*other\.key\) is not the key of the certificate in STARLING_MANAGEMENT_TLS_CERT_FILE/,
			],
		];
		for (const [env, message] of cases) {
			const result = run(env);
			expect(result.status, result.stderr).toBe(1);
			const lines = result.stderr.trim().split("\n");
			expect(lines, result.stderr).toHaveLength(1);
			expect(lines[0]).toMatch(message);
		}
	});
});
