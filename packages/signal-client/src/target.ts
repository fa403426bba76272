/** Where to reach the signal server, as grpc-js wants it. */
export interface SignalTarget {
	/** "host:port", with IPv6 literals in brackets. */
	address: string;
	/** Whether to use TLS (https:// URLs). */
	secure: boolean;
}

export const DEFAULT_SIGNAL_PORT = 10000;

/**
 * Accepts "host:port", "host" (port 10000), "http://host[:port]" and
 * "https://host[:port]" (ports 80 / 443 when omitted). Throws an Error
 * saying what is wrong otherwise.
 */
export function parseSignalUrl(url: string): SignalTarget {
	const text = url.trim();
	const quoted = JSON.stringify(url);
	const hasScheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text);
	let parsed: URL;
	try {
		parsed = new URL(hasScheme ? text : `http://${text}`);
	} catch {
		throw new Error(`signal url ${quoted} is not host:port or an http(s) URL`);
	}
	if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
		throw new Error(
			`signal url ${quoted} has scheme ${parsed.protocol.slice(0, -1)}; use http or https`,
		);
	}
	if (!parsed.hostname) {
		throw new Error(`signal url ${quoted} has no host`);
	}
	if (parsed.pathname !== "/" || parsed.search || parsed.hash) {
		throw new Error(`signal url ${quoted} must not have a path, query or fragment`);
	}
	if (parsed.username || parsed.password) {
		throw new Error(`signal url ${quoted} must not carry credentials`);
	}
	const secure = parsed.protocol === "https:";
	let port: number;
	if (hasScheme) {
		// URL reports "" both for no port and for the scheme's default port.
		port = parsed.port === "" ? (secure ? 443 : 80) : Number(parsed.port);
	} else {
		// Bare host:port went through http://, which would hide an explicit ":80".
		const explicit = /:(\d+)$/.exec(text)?.[1];
		port = explicit === undefined ? DEFAULT_SIGNAL_PORT : Number(explicit);
	}
	if (port < 1 || port > 65535) {
		throw new Error(`signal url ${quoted} has port ${port}; it must be 1 to 65535`);
	}
	return { address: `${parsed.hostname}:${port}`, secure };
}
