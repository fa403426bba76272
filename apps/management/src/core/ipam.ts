// IP address management over IPv4 CIDRs, without I/O. Randomness is injected
// so callers choose between crypto randomness and deterministic tests.

export type RandomInt = (maxExclusive: number) => number;

export interface Cidr {
	/** Network address as an unsigned 32-bit integer. */
	base: number;
	prefix: number;
}

export class IpamError extends Error {
	override name = "IpamError";
}

export function ipToInt(ip: string): number {
	const parts = ip.split(".");
	if (parts.length !== 4) throw new IpamError(`not an IPv4 address: ${ip}`);
	let n = 0;
	for (const part of parts) {
		if (!/^\d{1,3}$/.test(part)) throw new IpamError(`not an IPv4 address: ${ip}`);
		const octet = Number(part);
		if (octet > 255) throw new IpamError(`not an IPv4 address: ${ip}`);
		n = n * 256 + octet;
	}
	return n;
}

export function intToIp(n: number): string {
	return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

export function parseCidr(text: string): Cidr {
	const [ip, prefixText, extra] = text.split("/");
	if (ip === undefined || prefixText === undefined || extra !== undefined) {
		throw new IpamError(`not a CIDR: ${text}`);
	}
	if (!/^\d{1,2}$/.test(prefixText) || Number(prefixText) > 32) {
		throw new IpamError(`bad prefix length in ${text}`);
	}
	const prefix = Number(prefixText);
	const addr = ipToInt(ip);
	const base = prefix === 0 ? 0 : (addr & maskOf(prefix)) >>> 0;
	if (base !== addr)
		throw new IpamError(`${text} has host bits set; did you mean ${formatCidr({ base, prefix })}?`);
	return { base, prefix };
}

export function formatCidr(c: Cidr): string {
	return `${intToIp(c.base)}/${c.prefix}`;
}

function maskOf(prefix: number): number {
	return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function cidrSize(c: Cidr): number {
	return 2 ** (32 - c.prefix);
}

export function cidrContains(outer: Cidr, inner: Cidr): boolean {
	return inner.prefix >= outer.prefix && (inner.base & maskOf(outer.prefix)) >>> 0 === outer.base;
}

export function cidrContainsIp(c: Cidr, ip: number): boolean {
	return (ip & maskOf(c.prefix)) >>> 0 === c.base;
}

/**
 * Picks a subnet of `prefix` bits inside `pool` that no existing account
 * network overlaps, at random (as NetBird does, so that two self-hosted
 * installs rarely collide when later joined).
 */
export function allocateSubnet(
	pool: Cidr,
	prefix: number,
	taken: readonly Cidr[],
	random: RandomInt,
): Cidr {
	if (prefix < pool.prefix || prefix > 30) {
		throw new IpamError(`subnet prefix /${prefix} does not fit in ${formatCidr(pool)}`);
	}
	const count = 2 ** (prefix - pool.prefix);
	const size = 2 ** (32 - prefix);
	const overlaps = (c: Cidr) => taken.some((t) => cidrContains(t, c) || cidrContains(c, t));
	const start = random(count);
	for (let i = 0; i < count; i++) {
		const candidate = { base: pool.base + ((start + i) % count) * size, prefix };
		if (!overlaps(candidate)) return candidate;
	}
	throw new IpamError(`no free /${prefix} left in ${formatCidr(pool)}`);
}

/**
 * Picks a free host address in `network`: never the network or broadcast
 * address, never one in `used`. Starts at a random offset and probes
 * linearly, so allocation is O(1) expected while the network is sparse and
 * always terminates when it is full.
 */
export function allocateHost(network: Cidr, used: ReadonlySet<number>, random: RandomInt): number {
	const size = cidrSize(network);
	const hosts = size > 2 ? size - 2 : size;
	if (used.size >= hosts) throw new IpamError(`network ${formatCidr(network)} is full`);
	const first = size > 2 ? network.base + 1 : network.base;
	const start = random(hosts);
	for (let i = 0; i < hosts; i++) {
		const ip = first + ((start + i) % hosts);
		if (!used.has(ip)) return ip;
	}
	throw new IpamError(`network ${formatCidr(network)} is full`);
}
