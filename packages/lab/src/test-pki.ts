import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A test certificate authority and one server certificate it signed, as PEM files. */
export interface TestPki {
	/** The CA certificate: what a client trusts (NODE_EXTRA_CA_CERTS). */
	caFile: string;
	/** The server certificate, signed by the CA, for `names`. */
	certFile: string;
	keyFile: string;
	/** A second key that does not belong to certFile (for "mismatched key" cases). */
	otherKeyFile: string;
}

export interface TestPkiOptions {
	/** DNS names and IP addresses the server certificate is valid for (default localhost, 127.0.0.1). */
	names?: string[];
}

/**
 * Makes a throwaway CA and a server certificate with Debian's `openssl`
 * in `dir` (EC P-256 keys: fast to make). Nothing is installed anywhere:
 * a client trusts the CA only when the test says so.
 */
export function createTestPki(dir: string, options: TestPkiOptions = {}): TestPki {
	const names = options.names ?? ["localhost", "127.0.0.1"];
	mkdirSync(dir, { recursive: true });
	const path = (name: string) => join(dir, name);
	const openssl = (...args: string[]) =>
		execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
	const newKey = (file: string) =>
		openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", file);

	newKey(path("ca.key"));
	openssl(
		"req",
		"-x509",
		"-new",
		"-key",
		path("ca.key"),
		"-subj",
		"/CN=Starling test CA",
		"-days",
		"2",
		"-addext",
		"basicConstraints=critical,CA:TRUE",
		"-addext",
		"keyUsage=critical,keyCertSign,cRLSign",
		"-out",
		path("ca.pem"),
	);
	newKey(path("server.key"));
	newKey(path("other.key"));
	openssl(
		"req",
		"-new",
		"-key",
		path("server.key"),
		"-subj",
		`/CN=${names[0] ?? "localhost"}`,
		"-out",
		path("server.csr"),
	);
	const altNames = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
	writeFileSync(
		path("server.ext"),
		[
			`subjectAltName=${altNames}`,
			"basicConstraints=CA:FALSE",
			"keyUsage=digitalSignature",
			"extendedKeyUsage=serverAuth",
			"",
		].join("\n"),
	);
	openssl(
		"x509",
		"-req",
		"-in",
		path("server.csr"),
		"-CA",
		path("ca.pem"),
		"-CAkey",
		path("ca.key"),
		"-CAcreateserial",
		"-days",
		"2",
		"-extfile",
		path("server.ext"),
		"-out",
		path("server.pem"),
	);
	return {
		caFile: path("ca.pem"),
		certFile: path("server.pem"),
		keyFile: path("server.key"),
		otherKeyFile: path("other.key"),
	};
}
