/** Parses the JSON that `ip -j` prints for one interface's link, addresses and routes. Pure. */

import { canonicalInterfaceAddress, canonicalPrefix, type IpFamily } from "./cidr.js";

export class IpJsonParseError extends Error {
	override name = "IpJsonParseError";
}

function parseJsonArray(text: string, what: string): unknown[] {
	// `ip -j` prints nothing at all (not "[]") for some empty results.
	if (text.trim() === "") return [];
	let value: unknown;
	try {
		value = JSON.parse(text);
	} catch {
		throw new IpJsonParseError(`${what}: output is not JSON`);
	}
	if (!Array.isArray(value)) throw new IpJsonParseError(`${what}: expected a JSON array`);
	return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === "object" && value !== null && !Array.isArray(value);
}

export interface LinkState {
	mtu: number;
	/** Administratively up (the UP flag), whatever the carrier. */
	up: boolean;
}

/** `ip -j link show dev IF`. */
export function parseIpLinkJson(text: string): LinkState {
	const [link] = parseJsonArray(text, "ip link");
	if (!isRecord(link) || typeof link.mtu !== "number" || !Array.isArray(link.flags)) {
		throw new IpJsonParseError("ip link: no link with mtu and flags in the output");
	}
	return { mtu: link.mtu, up: link.flags.includes("UP") };
}

/**
 * `ip -j addr show dev IF` → the interface's addresses as canonical "address/prefix". Link-scope
 * addresses are left out: the kernel assigns the IPv6 link-local one itself and we never manage it.
 */
export function parseIpAddrJson(text: string): string[] {
	const cidrs: string[] = [];
	for (const link of parseJsonArray(text, "ip addr")) {
		if (!isRecord(link) || !Array.isArray(link.addr_info)) continue;
		for (const info of link.addr_info) {
			if (!isRecord(info) || typeof info.local !== "string" || typeof info.prefixlen !== "number") {
				continue;
			}
			if (info.scope === "link" || info.scope === "host") continue;
			cidrs.push(canonicalInterfaceAddress(`${info.local}/${info.prefixlen}`));
		}
	}
	return cidrs;
}

export interface CurrentRoute {
	/** Canonical prefix, e.g. "100.64.0.7/32". */
	destination: string;
	/**
	 * "kernel" for the route the kernel adds with an address (never removed by us: it goes with
	 * the address); other values, or undefined, for routes someone added.
	 */
	protocol: string | undefined;
}

/** `ip -j [-6] route show dev IF` (main table). Only unicast routes: other types aren't ours. */
export function parseIpRouteJson(text: string, family: IpFamily): CurrentRoute[] {
	const routes: CurrentRoute[] = [];
	for (const route of parseJsonArray(text, "ip route")) {
		if (!isRecord(route) || typeof route.dst !== "string") continue;
		if (route.type !== undefined && route.type !== "unicast") continue;
		const destination =
			route.dst === "default" ? (family === 4 ? "0.0.0.0/0" : "::/0") : canonicalPrefix(route.dst);
		routes.push({
			destination,
			protocol: typeof route.protocol === "string" ? route.protocol : undefined,
		});
	}
	return routes;
}
