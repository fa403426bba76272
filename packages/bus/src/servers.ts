/**
 * A NATS server URL fit for a log line or an error message: the user name
 * and password (or token) a URL may carry (`nats://user:secret@host:4222`)
 * are replaced by `***`, so configuration errors never print a secret.
 */
export function redactServerUrl(url: string): string {
	// Up to the last "@": a password may hold an unescaped "@" or "/", and a
	// NATS URL has no path where an "@" could legitimately appear.
	return url.replace(/^([a-z][a-z0-9+.-]*:\/\/).*@/i, "$1***@");
}

/** Credentials taken out of server URLs, in the form the NATS client wants them. */
export type NatsCredentials = { user: string; pass: string } | { token: string };

/**
 * Takes credentials out of server URLs (`nats://user:password@host:4222`, or
 * `nats://token@host:4222`), which the NATS client would otherwise drop
 * silently, and returns the bare servers beside them. All URLs that carry
 * credentials must carry the same ones (one cluster, one account).
 */
export function splitCredentials(urls: string[]): {
	servers: string[];
	credentials: NatsCredentials | undefined;
} {
	let credentials: NatsCredentials | undefined;
	let seen: string | undefined;
	const servers = urls.map((url) => {
		const match = /^([a-z][a-z0-9+.-]*:\/\/)(.*)@(.*)$/i.exec(url);
		if (!match) return url;
		const [, scheme, userinfo = "", rest] = match;
		if (seen !== undefined && seen !== userinfo) {
			throw new Error(
				`the NATS server URLs carry different credentials (${urls.map(redactServerUrl).join(", ")})`,
			);
		}
		seen = userinfo;
		const colon = userinfo.indexOf(":");
		credentials =
			colon < 0
				? { token: decodeURIComponent(userinfo) }
				: {
						user: decodeURIComponent(userinfo.slice(0, colon)),
						pass: decodeURIComponent(userinfo.slice(colon + 1)),
					};
		return `${scheme}${rest}`;
	});
	return { servers, credentials };
}

/**
 * Why `server` is not a NATS server URL Starling takes, or undefined: one
 * `nats://host:port`, with optional `user:password@` or `token@` (never
 * echoed back), no path. No `tls://`: the bus does not configure TLS.
 * Management and signal check STARLING_NATS_URL with it.
 */
export function natsServerProblem(server: string): string | undefined {
	let url: URL | undefined;
	try {
		url = new URL(server);
	} catch {
		url = undefined;
	}
	const shown = JSON.stringify(redactServerUrl(server));
	if (url?.protocol !== "nats:" || !url.hostname)
		return `expected comma-separated nats://host:port URLs; got ${shown}`;
	if (url.pathname !== "" && url.pathname !== "/") return `a NATS URL has no path; got ${shown}`;
	return undefined;
}
