import { execFile } from "node:child_process";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export interface TestCertificates {
	/** The test CA's certificate (PEM): what clients trust, e.g. through NODE_EXTRA_CA_CERTS. */
	caFile: string;
	/** The server certificate (PEM), signed by the CA. */
	certFile: string;
	/** Its private key (PEM, mode 0600). */
	keyFile: string;
	/** Certificate and key in one file, as HAProxy's `crt` wants them. */
	pemFile: string;
}

/**
 * A throwaway CA and one server certificate it signed for `names` (DNS) and
 * `ips`, made with openssl in `dir` (EC P-256, valid 2 days). For tests and
 * the compose test only: the CA's key stays in `dir`.
 */
export async function createTestCertificates(
	dir: string,
	subject: { names: string[]; ips: string[] },
): Promise<TestCertificates> {
	const path = (name: string) => join(dir, name);
	const openssl = async (args: string[]) => {
		await execFileAsync("openssl", args).catch((err: unknown) => {
			const e = err as { stderr?: string; message: string };
			throw new Error(`openssl ${args[0]} failed: ${(e.stderr ?? e.message).trim()}`);
		});
	};
	const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
	await openssl([
		"req",
		"-x509",
		...ecKey,
		"-keyout",
		path("ca.key"),
		"-out",
		path("ca.crt"),
		"-days",
		"2",
		"-subj",
		"/CN=Starling test CA",
		"-addext",
		"basicConstraints=critical,CA:TRUE",
		"-addext",
		"keyUsage=critical,keyCertSign,cRLSign",
	]);
	const cn = subject.names[0] ?? subject.ips[0] ?? "localhost";
	await openssl([
		"req",
		...ecKey,
		"-keyout",
		path("server.key"),
		"-out",
		path("server.csr"),
		"-subj",
		`/CN=${cn}`,
	]);
	const altNames = [
		...subject.names.map((n) => `DNS:${n}`),
		...subject.ips.map((ip) => `IP:${ip}`),
	].join(",");
	writeFileSync(
		path("server.ext"),
		[
			`subjectAltName=${altNames}`,
			"basicConstraints=CA:FALSE",
			"keyUsage=critical,digitalSignature",
			"extendedKeyUsage=serverAuth",
			"",
		].join("\n"),
	);
	await openssl([
		"x509",
		"-req",
		"-in",
		path("server.csr"),
		"-CA",
		path("ca.crt"),
		"-CAkey",
		path("ca.key"),
		"-CAcreateserial",
		"-days",
		"2",
		"-extfile",
		path("server.ext"),
		"-out",
		path("server.crt"),
	]);
	chmodSync(path("ca.key"), 0o600);
	chmodSync(path("server.key"), 0o600);
	writeFileSync(
		path("server.pem"),
		readFileSync(path("server.crt"), "utf8") + readFileSync(path("server.key"), "utf8"),
		{ mode: 0o600 },
	);
	return {
		caFile: path("ca.crt"),
		certFile: path("server.crt"),
		keyFile: path("server.key"),
		pemFile: path("server.pem"),
	};
}
