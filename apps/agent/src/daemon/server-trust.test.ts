import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, getCACertificates, type Server, setDefaultCACertificates } from "node:tls";
import { createTestPki } from "@starling/lab";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeRefusal, httpsTarget, probeCertificate } from "./server-trust.js";

describe("describeRefusal", () => {
	it("names the service, the URL, the reason and the fix in one line", () => {
		const line = describeRefusal("management", "https://mgmt.example:443", {
			code: "SELF_SIGNED_CERT_IN_CHAIN",
			reason: "self-signed certificate in certificate chain",
		});
		expect(line).toBe(
			"management https://mgmt.example:443 presented a certificate this machine does not trust (self-signed certificate in certificate chain): add its CA to the system store (update-ca-certificates) or NODE_EXTRA_CA_CERTS",
		);
		expect(line).not.toContain("\n");
	});

	it("says a hostname mismatch is one, and drops Node's advice after ';'", () => {
		const line = describeRefusal("signal", "https://10.0.0.1:10000", {
			code: "ERR_TLS_CERT_ALTNAME_INVALID",
			reason:
				"Hostname/IP does not match certificate's altnames: IP: 10.0.0.1 is not in the cert's list: ",
		});
		expect(line).toMatch(
			/^signal https:\/\/10\.0\.0\.1:10000 presented a certificate for another name/,
		);
		const advice = describeRefusal("signal", "https://x", {
			code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
			reason:
				"unable to verify the first certificate; if the root CA is installed locally, try running Node.js with --use-system-ca",
		});
		expect(advice).toContain("(unable to verify the first certificate)");
	});
});

describe("httpsTarget", () => {
	it("reads host and port of https URLs only", () => {
		expect(httpsTarget("https://a.example")).toEqual({ host: "a.example", port: 443 });
		expect(httpsTarget("https://[::1]:8443")).toEqual({ host: "::1", port: 8443 });
		expect(httpsTarget("http://a.example:80")).toBeUndefined();
		expect(httpsTarget("a.example:443")).toBeUndefined();
		expect(httpsTarget("")).toBeUndefined();
	});
});

describe("probeCertificate against a real TLS server", () => {
	const dir = mkdtempSync(join(tmpdir(), "starling-trust-"));
	const pki = createTestPki(join(dir, "pki"), { names: ["localhost"] });
	let server: Server;
	let port = 0;
	beforeAll(async () => {
		server = createServer(
			{ cert: readFileSync(pki.certFile), key: readFileSync(pki.keyFile) },
			(s) => s.end(),
		);
		await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
		const address = server.address();
		port = typeof address === "object" && address ? address.port : 0;
	});
	afterAll(() => {
		server.close();
		rmSync(dir, { recursive: true, force: true });
	});

	it("reports an untrusted CA, a wrong name, and nothing for an unreachable port", async () => {
		const untrusted = await probeCertificate(`https://localhost:${port}`);
		expect(untrusted?.code).toBe("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
		// Trust the CA as NODE_EXTRA_CA_CERTS would: then the name is what is wrong.
		setDefaultCACertificates([...getCACertificates("default"), readFileSync(pki.caFile, "utf8")]);
		expect(await probeCertificate(`https://localhost:${port}`)).toBeUndefined();
		// The certificate is for "localhost", not for the address.
		const wrongName = await probeCertificate(`https://127.0.0.1:${port}`);
		expect(wrongName?.code).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
		const closed = await new Promise<number>((ok) => {
			const s = createServer().listen(0, "127.0.0.1", () => {
				const a = s.address();
				s.close(() => ok(typeof a === "object" && a ? a.port : 0));
			});
		});
		expect(await probeCertificate(`https://localhost:${closed}`)).toBeUndefined();
		expect(await probeCertificate(`http://localhost:${port}`)).toBeUndefined();
	});
});
