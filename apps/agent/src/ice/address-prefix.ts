/**
 * IP prefixes (CIDR) and membership tests, for deciding which ICE candidates
 * must never be offered to a peer. Pure; IPv4 and IPv6.
 */

/** The overlay (CGNAT) range Starling assigns peer addresses from. */
export const OVERLAY_PREFIX = "100.64.0.0/10";

export interface AddressPrefix {
	family: 4 | 6;
	/** The network address as an integer (32 or 128 bits). */
	network: bigint;
	length: number;
}

/** An IPv4 address as a 32-bit integer, or undefined if `text` is not a dotted quad. */
export function parseIpv4(text: string): bigint | undefined {
	const parts = text.split(".");
	if (parts.length !== 4) return undefined;
	let value = 0n;
	for (const part of parts) {
		if (!/^\d{1,3}$/.test(part)) return undefined;
		const octet = Number(part);
		if (octet > 255) return undefined;
		value = (value << 8n) | BigInt(octet);
	}
	return value;
}

/**
 * An IPv6 address as a 128-bit integer, or undefined if `text` is not one.
 * Accepts `::` compression, an embedded IPv4 tail and a `%zone` suffix
 * (link-local candidates carry one).
 */
export function parseIpv6(text: string): bigint | undefined {
	const withoutZone = text.split("%")[0] ?? "";
	if (!withoutZone.includes(":")) return undefined;
	const halves = withoutZone.split("::");
	if (halves.length > 2) return undefined;
	const parseGroups = (part: string): bigint[] | undefined => {
		if (part === "") return [];
		const groups: bigint[] = [];
		const pieces = part.split(":");
		for (const [index, piece] of pieces.entries()) {
			if (index === pieces.length - 1 && piece.includes(".")) {
				const v4 = parseIpv4(piece);
				if (v4 === undefined) return undefined;
				groups.push(v4 >> 16n, v4 & 0xffffn);
			} else {
				if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return undefined;
				groups.push(BigInt(`0x${piece}`));
			}
		}
		return groups;
	};
	const head = parseGroups(halves[0] ?? "");
	const tail = halves.length === 2 ? parseGroups(halves[1] ?? "") : [];
	if (head === undefined || tail === undefined) return undefined;
	const missing = 8 - head.length - tail.length;
	if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
	const groups = [...head, ...Array<bigint>(missing).fill(0n), ...tail];
	return groups.reduce((value, group) => (value << 16n) | group, 0n);
}

/** Parses "a.b.c.d/n" or "x::y/n"; a bare address is a host prefix. Throws on nonsense. */
export function parsePrefix(text: string): AddressPrefix {
	const [addressText = "", lengthText] = text.trim().split("/");
	const v4 = parseIpv4(addressText);
	const v6 = v4 === undefined ? parseIpv6(addressText) : undefined;
	const family = v4 !== undefined ? 4 : v6 !== undefined ? 6 : undefined;
	const address = v4 ?? v6;
	if (family === undefined || address === undefined) {
		throw new Error(`not an IP prefix: ${JSON.stringify(text)}`);
	}
	const bits = family === 4 ? 32 : 128;
	const length = lengthText === undefined ? bits : Number(lengthText);
	if (!/^\d{1,3}$/.test(lengthText ?? String(bits)) || length > bits) {
		throw new Error(`not an IP prefix: ${JSON.stringify(text)}`);
	}
	const hostBits = BigInt(bits - length);
	// Normalise 10.1.2.3/8 to 10.0.0.0/8 so membership only compares network bits.
	return { family, network: (address >> hostBits) << hostBits, length };
}

/** True when `address` (a literal IPv4/IPv6 address) lies inside `prefix`. */
export function prefixContains(prefix: AddressPrefix, address: string): boolean {
	const value = prefix.family === 4 ? parseIpv4OrMapped(address) : parseIpv6(address);
	if (value === undefined) return false;
	const hostBits = BigInt((prefix.family === 4 ? 32 : 128) - prefix.length);
	return value >> hostBits === prefix.network >> hostBits;
}

/** An IPv4 address, also when written IPv4-mapped (::ffff:a.b.c.d), as dual-stack sockets report it. */
function parseIpv4OrMapped(address: string): bigint | undefined {
	const v4 = parseIpv4(address);
	if (v4 !== undefined) return v4;
	const v6 = parseIpv6(address);
	if (v6 === undefined || v6 >> 32n !== 0xffffn) return undefined;
	return v6 & 0xffffffffn;
}

/** True when `address` lies in any of `prefixes`. */
export function isAddressExcluded(address: string, prefixes: readonly AddressPrefix[]): boolean {
	return prefixes.some((prefix) => prefixContains(prefix, address));
}
