/**
 * IP address, CIDR and endpoint text in one canonical spelling, so that what `wg` and `ip`
 * print can be compared with what we asked for by plain string equality. Pure.
 */

export type IpFamily = 4 | 6;

export interface IpAddress {
	readonly family: IpFamily;
	/** 4 or 16 bytes, network order. */
	readonly bytes: Uint8Array;
}

export class InvalidAddressError extends Error {
	override name = "InvalidAddressError";
}

const IPV4_TEXT = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseIpv4(text: string): Uint8Array | undefined {
	const match = IPV4_TEXT.exec(text);
	if (!match) return undefined;
	const bytes = new Uint8Array(4);
	for (let index = 0; index < 4; index++) {
		const part = match[index + 1] ?? "";
		// A leading zero reads as octal to some tools (inet_aton): refuse rather than guess.
		if (part.length > 1 && part.startsWith("0")) return undefined;
		const value = Number(part);
		if (value > 255) return undefined;
		bytes[index] = value;
	}
	return bytes;
}

function parseIpv6(text: string): Uint8Array | undefined {
	const halves = text.split("::");
	if (halves.length > 2) return undefined;
	const parseGroups = (part: string): number[] | undefined => {
		if (part === "") return [];
		const words: number[] = [];
		const groups = part.split(":");
		for (const [index, group] of groups.entries()) {
			if (index === groups.length - 1 && group.includes(".")) {
				const v4 = parseIpv4(group);
				if (!v4) return undefined;
				words.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
			} else if (HEX_GROUP.test(group)) {
				words.push(Number.parseInt(group, 16));
			} else {
				return undefined;
			}
		}
		return words;
	};
	const head = parseGroups(halves[0] ?? "");
	const tail = halves.length === 2 ? parseGroups(halves[1] ?? "") : [];
	if (!head || !tail) return undefined;
	let words: number[];
	if (halves.length === 2) {
		const missing = 8 - head.length - tail.length;
		// "::" stands for at least one zero group.
		if (missing < 1) return undefined;
		words = [...head, ...new Array<number>(missing).fill(0), ...tail];
	} else {
		words = head;
	}
	if (words.length !== 8) return undefined;
	const bytes = new Uint8Array(16);
	for (const [index, word] of words.entries()) {
		bytes[index * 2] = word >> 8;
		bytes[index * 2 + 1] = word & 0xff;
	}
	return bytes;
}

/** Parses a literal IPv4 or IPv6 address (no zone, no brackets); undefined when it is not one. */
export function parseIp(text: string): IpAddress | undefined {
	if (text.includes(":")) {
		const bytes = parseIpv6(text);
		return bytes ? { family: 6, bytes } : undefined;
	}
	const bytes = parseIpv4(text);
	return bytes ? { family: 4, bytes } : undefined;
}

/** Formats like inet_ntop/`ip`: dotted quad, or RFC 5952 lowercase IPv6 with "::". */
export function formatIp(address: IpAddress): string {
	const { bytes } = address;
	if (address.family === 4) return Array.from(bytes).join(".");
	const words: number[] = [];
	for (let index = 0; index < 16; index += 2) {
		words.push(((bytes[index] ?? 0) << 8) | (bytes[index + 1] ?? 0));
	}
	// IPv4-mapped addresses are printed with the dotted tail by inet_ntop and Go alike.
	if (words.slice(0, 5).every((word) => word === 0) && words[5] === 0xffff) {
		return `::ffff:${Array.from(bytes.subarray(12)).join(".")}`;
	}
	let bestStart = -1;
	let bestLength = 0;
	for (let start = 0; start < 8; ) {
		if (words[start] !== 0) {
			start++;
			continue;
		}
		let end = start;
		while (end < 8 && words[end] === 0) end++;
		if (end - start > bestLength) {
			bestStart = start;
			bestLength = end - start;
		}
		start = end;
	}
	const hex = words.map((word) => word.toString(16));
	// RFC 5952: a single zero group is not shortened.
	if (bestLength < 2) return hex.join(":");
	const head = hex.slice(0, bestStart).join(":");
	const tail = hex.slice(bestStart + bestLength).join(":");
	return `${head}::${tail}`;
}

export interface Cidr {
	readonly address: IpAddress;
	readonly prefixLength: number;
}

/** Parses "a.b.c.d/n", "x::y/n", or a bare address (meaning a host prefix: /32 or /128). */
export function parseCidr(text: string): Cidr | undefined {
	const slash = text.indexOf("/");
	const addressText = slash === -1 ? text : text.slice(0, slash);
	const address = parseIp(addressText);
	if (!address) return undefined;
	const maxLength = address.family === 4 ? 32 : 128;
	if (slash === -1) return { address, prefixLength: maxLength };
	const lengthText = text.slice(slash + 1);
	if (!/^\d{1,3}$/.test(lengthText)) return undefined;
	const prefixLength = Number(lengthText);
	if (prefixLength > maxLength) return undefined;
	return { address, prefixLength };
}

function maskHostBits(address: IpAddress, prefixLength: number): IpAddress {
	const bytes = Uint8Array.from(address.bytes);
	for (let index = 0; index < bytes.length; index++) {
		const bitsKept = Math.min(8, Math.max(0, prefixLength - index * 8));
		bytes[index] = (bytes[index] ?? 0) & ((0xff << (8 - bitsKept)) & 0xff);
	}
	return { family: address.family, bytes };
}

function requireCidr(text: string, what: string): Cidr {
	const cidr = parseCidr(text);
	if (!cidr)
		throw new InvalidAddressError(`${what} ${JSON.stringify(text)} is not an IP address or CIDR`);
	return cidr;
}

/**
 * An interface address keeps its host bits ("100.64.0.7/16" is not "100.64.0.0/16"); only the
 * spelling is made canonical. A bare address becomes a host prefix.
 */
export function canonicalInterfaceAddress(text: string): string {
	const cidr = requireCidr(text, "address");
	return `${formatIp(cidr.address)}/${cidr.prefixLength}`;
}

/**
 * A prefix as WireGuard's allowed-ips and the routing table store it: host bits cleared
 * (both `wg` and the kernel silently clear them, so comparing unmasked text would never settle).
 */
export function canonicalPrefix(text: string): string {
	const cidr = requireCidr(text, "prefix");
	return `${formatIp(maskHostBits(cidr.address, cidr.prefixLength))}/${cidr.prefixLength}`;
}

/** The family of a CIDR or address text; throws InvalidAddressError when it is neither. */
export function familyOf(text: string): IpFamily {
	return requireCidr(text, "address").address.family;
}

/**
 * "a.b.c.d:port" or "[v6]:port", spelled as `wg show dump` prints it. Host names are refused:
 * WireGuard resolves them once and then reports the address, so a name would never compare equal.
 */
export function canonicalEndpoint(text: string): string {
	const match = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text);
	const address = match ? parseIp(match[1] ?? "") : undefined;
	const port = match ? Number(match[2]) : Number.NaN;
	if (!address || !(port >= 1 && port <= 65535)) {
		throw new InvalidAddressError(
			`endpoint ${JSON.stringify(text)} must be "ip:port" or "[ipv6]:port" with a literal address`,
		);
	}
	const host = formatIp(address);
	return address.family === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
