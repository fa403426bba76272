// Signal serving TLS itself from certificate files: the real SignalClient
// over https:// with a test CA made by openssl, and the one-line refusals of
// a bad TLS configuration.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getCACertificates, setDefaultCACertificates } from "node:tls";
import { fileURLToPath } from "node:url";
import { generateKeyPair } from "@starling/crypto";
import { createTestPki } from "@starling/lab";
import { afterAll, describe, expect, it } from "vitest";
import { closedAfterEach, nextMessage } from "./helpers.js";

const mainJs = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "starling-signal-tls-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pki = createTestPki(join(dir, "pki"));
const tls = { cert: readFileSync(pki.certFile), key: readFileSync(pki.keyFile) };

describe("signal over TLS", () => {
	const { server, client } = closedAfterEach();

	it("carries messages between clients over https:// once the CA is trusted", async () => {
		const srv = await server({ tls });
		const alice = generateKeyPair();
		const untrusting = client(srv, alice, { url: `https://localhost:${srv.port}` });
		// This process does not trust the test CA yet: the handshake fails.
		await expect(untrusting.connect()).rejects.toThrow(/certificate/i);
		await untrusting.close();

		// As NODE_EXTRA_CA_CERTS would at start: the CA joins this process's defaults.
		setDefaultCACertificates([...getCACertificates("default"), readFileSync(pki.caFile, "utf8")]);
		const bob = generateKeyPair();
		const a = client(srv, alice, { url: `https://localhost:${srv.port}` });
		const b = client(srv, bob, { url: `https://localhost:${srv.port}` });
		await Promise.all([a.connect(), b.connect()]);
		const atBob = nextMessage(b);
		await a.send(bob.publicKey, new Uint8Array([1, 2, 3]));
		expect((await atBob).body).toEqual(new Uint8Array([1, 2, 3]));
	});
});

describe("bad TLS configuration", () => {
	it("exits 1 with one line naming the variable", () => {
		for (const [env, message] of [
			[
				{ STARLING_SIGNAL_TLS_CERT_FILE: pki.certFile },
				/STARLING_SIGNAL_TLS_KEY_FILE is not set but STARLING_SIGNAL_TLS_CERT_FILE is/,
			],
			[
				{
					STARLING_SIGNAL_TLS_CERT_FILE: pki.certFile,
					STARLING_SIGNAL_TLS_KEY_FILE: pki.otherKeyFile,
				},
				/STARLING_SIGNAL_TLS_KEY_FILE \(.*other\.key\) is not the key of the certificate/,
			],
			[
				{
					STARLING_SIGNAL_TLS_CERT_FILE: pki.certFile,
					STARLING_SIGNAL_TLS_KEY_FILE: join(dir, "missing.key"),
				},
				/STARLING_SIGNAL_TLS_KEY_FILE cannot be read/,
			],
		] as const) {
			const result = spawnSync(process.execPath, [mainJs], {
				env: { PATH: process.env.PATH ?? "", STARLING_SIGNAL_LISTEN: "127.0.0.1:0", ...env },
				encoding: "utf8",
				timeout: 10_000,
			});
			expect(result.status, result.stderr).toBe(1);
			const lines = result.stderr.trim().split("\n");
			expect(lines).toHaveLength(1);
			expect(lines[0]).toMatch(message);
		}
	});
});
