// Which certificate authorities the agent trusts, and the one line it stops
// with when management or signal presents a certificate it does not trust.
import { connect, getCACertificates, setDefaultCACertificates } from "node:tls";

/**
 * Makes this process trust the system's CA store in addition to Node's
 * bundled CAs and NODE_EXTRA_CA_CERTS (Node trusts the system store only
 * with --use-system-ca or NODE_USE_SYSTEM_CA=1). On Debian the system store
 * is /etc/ssl/certs, filled by update-ca-certificates, so a company CA
 * installed there works for the daemon under systemd with no environment.
 * Every TLS client of the process (management and signal over gRPC, relays
 * over wss://) builds on this default. Returns how many CAs are trusted, or
 * the reason the system store could not be read (the defaults then stay).
 */
export function trustSystemCertificates(): { trusted: number } | { error: string } {
	try {
		const all = new Set([...getCACertificates("default"), ...getCACertificates("system")]);
		setDefaultCACertificates([...all]);
		return { trusted: all.size };
	} catch (err) {
		return { error: err instanceof Error ? err.message : String(err) };
	}
}

/** OpenSSL's verification codes that mean "this CA is not trusted here". */
const UNTRUSTED_CODES = new Set([
	"SELF_SIGNED_CERT_IN_CHAIN",
	"DEPTH_ZERO_SELF_SIGNED_CERT",
	"UNABLE_TO_GET_ISSUER_CERT",
	"UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
	"UNABLE_TO_VERIFY_LEAF_SIGNATURE",
	"CERT_UNTRUSTED",
]);

/** Why a server's certificate was refused, as the TLS handshake said. */
export interface CertificateRefusal {
	/** OpenSSL's or Node's code, e.g. SELF_SIGNED_CERT_IN_CHAIN, ERR_TLS_CERT_ALTNAME_INVALID. */
	code: string;
	/** The handshake's own words, e.g. "self-signed certificate in certificate chain". */
	reason: string;
}

/**
 * The one line for a refused certificate: names the service, its URL and
 * the reason, and says what fixes it.
 */
export function describeRefusal(
	service: "management" | "signal",
	url: string,
	refusal: CertificateRefusal,
): string {
	const reason = refusal.reason.split(";")[0]?.trim() || refusal.code;
	if (refusal.code === "ERR_TLS_CERT_ALTNAME_INVALID") {
		return `${service} ${url} presented a certificate for another name (${reason}): use the name the certificate is for in the URL, or fix the server's certificate`;
	}
	if (UNTRUSTED_CODES.has(refusal.code)) {
		return `${service} ${url} presented a certificate this machine does not trust (${reason}): add its CA to the system store (update-ca-certificates) or NODE_EXTRA_CA_CERTS`;
	}
	return `${service} ${url} presented a certificate this machine refuses (${reason}): fix the server's certificate`;
}

/**
 * Connects to an https:// URL's host and port, does the TLS handshake with
 * this process's trust, and says whether the certificate was refused.
 * Undefined for a trusted certificate, a URL that is not https://, and a
 * server that cannot be reached (that is not a certificate problem; the
 * caller's own error says it). `timeoutMs` bounds the whole attempt.
 */
export function probeCertificate(
	url: string,
	timeoutMs = 5_000,
): Promise<CertificateRefusal | undefined> {
	const target = httpsTarget(url);
	if (!target) return Promise.resolve(undefined);
	return new Promise((resolve) => {
		const socket = connect({
			host: target.host,
			port: target.port,
			// SNI only for names; the certificate check covers IP addresses either way.
			servername: /^[\d.]+$|:/.test(target.host) ? undefined : target.host,
			ALPNProtocols: ["h2"],
		});
		const done = (result: CertificateRefusal | undefined) => {
			clearTimeout(timer);
			socket.destroy();
			resolve(result);
		};
		const timer = setTimeout(() => done(undefined), timeoutMs);
		socket.once("secureConnect", () => done(undefined));
		socket.once("error", (err: NodeJS.ErrnoException) => {
			const code = err.code ?? "";
			const isCertificate = UNTRUSTED_CODES.has(code) || /CERT|SIGNATURE|ISSUER/.test(code);
			done(isCertificate ? { code, reason: err.message } : undefined);
		});
	});
}

/** host and port of an https:// URL (port 443 when omitted), else undefined. */
export function httpsTarget(url: string): { host: string; port: number } | undefined {
	let parsed: URL;
	try {
		parsed = new URL(url.trim());
	} catch {
		return undefined;
	}
	if (parsed.protocol !== "https:" || !parsed.hostname) return undefined;
	return {
		host: parsed.hostname.replace(/^\[|\]$/g, ""),
		port: parsed.port === "" ? 443 : Number(parsed.port),
	};
}
