import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { ConfigError } from "./config-file.js";

/** A PEM certificate chain and its private key, as read from their files. */
export interface TlsFiles {
	cert: Buffer;
	key: Buffer;
}

/** The two settings naming a server's certificate and key files, and their values. */
export interface TlsFileSettings {
	/** e.g. STARLING_SIGNAL_TLS_CERT_FILE */
	certVariable: string;
	certFile: string | undefined;
	/** e.g. STARLING_SIGNAL_TLS_KEY_FILE */
	keyVariable: string;
	keyFile: string | undefined;
}

/**
 * Reads a server's certificate and key files, or undefined when neither is
 * set (plaintext). Throws ConfigError with one line naming the variable and
 * the file when only one is set, a file cannot be read, a file is not PEM
 * that OpenSSL accepts, or the key does not belong to the certificate: a
 * server must not start half-configured and fail at the first handshake.
 * The files are read once: a renewed certificate needs a restart.
 */
export function loadTlsFiles(settings: TlsFileSettings): TlsFiles | undefined {
	const { certVariable, certFile, keyVariable, keyFile } = settings;
	if (certFile === undefined && keyFile === undefined) return undefined;
	if (certFile === undefined || keyFile === undefined) {
		const missing = certFile === undefined ? certVariable : keyVariable;
		const set = certFile === undefined ? keyVariable : certVariable;
		throw new ConfigError(`${missing} is not set but ${set} is: set both or neither`);
	}
	const cert = readOrFail(certVariable, certFile);
	const key = readOrFail(keyVariable, keyFile);
	checkOpenSsl(certVariable, certFile, "a PEM certificate", () => createSecureContext({ cert }));
	checkOpenSsl(keyVariable, keyFile, "a PEM private key", () => createSecureContext({ key }));
	checkOpenSsl(
		keyVariable,
		keyFile,
		`the key of the certificate in ${certVariable} (${certFile})`,
		() => createSecureContext({ cert, key }),
	);
	return { cert, key };
}

function readOrFail(variable: string, path: string): Buffer {
	try {
		return readFileSync(path);
	} catch (err) {
		const why = err instanceof Error ? err.message : String(err);
		throw new ConfigError(`${variable} cannot be read: ${why}`);
	}
}

function checkOpenSsl(variable: string, path: string, expected: string, test: () => void): void {
	try {
		test();
	} catch (err) {
		const why = err instanceof Error ? err.message.split("\n")[0] : String(err);
		throw new ConfigError(`${variable} (${path}) is not ${expected}: ${why}`);
	}
}
