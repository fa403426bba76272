import { isIP } from "node:net";

/** A TCP address to bind. IPv6 literals are kept without brackets. */
export interface ListenAddress {
	host: string;
	port: number;
}

/**
 * Parses "host:port" or "[v6]:port", as every STARLING_*_LISTEN variable is
 * written. Port 0 picks a free port. Returns the reason as a string when the
 * text is not an address; `example` is quoted in it (e.g. "127.0.0.1:10000").
 */
export function parseListenAddress(text: string, example: string): ListenAddress | string {
	const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
	if (!match) return `must be host:port (e.g. ${example})`;
	const v6 = match[1];
	const host = v6 ?? match[2] ?? "";
	if (v6 !== undefined && isIP(v6) !== 6) return `${v6} is not an IPv6 address`;
	if (v6 === undefined && isIP(host) === 0 && !isHostname(host)) {
		return `${host} is not an IPv4 address or host name`;
	}
	const port = Number(match[3]);
	if (port > 65535) return `port ${port} is out of range`;
	return { host, port };
}

function isHostname(text: string): boolean {
	return (
		text.length <= 253 &&
		text.split(".").every((label) => /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label))
	);
}
