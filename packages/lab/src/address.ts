/**
 * IPv4 helpers for lab subnets. Every address a lab assigns lies in 198.18.0.0/15
 * (RFC 2544 benchmarking range), checked here before any command runs.
 */

export const LAB_RANGE = "198.18.0.0/15";

const LAB_NETWORK = 0xc6120000; // 198.18.0.0
const LAB_PREFIX = 15;

export class AddressError extends Error {
	override name = "AddressError";
}

export function parseIPv4(text: string): number {
	const parts = text.split(".");
	if (parts.length !== 4) throw new AddressError(`not an IPv4 address: ${JSON.stringify(text)}`);
	let value = 0;
	for (const part of parts) {
		if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) {
			throw new AddressError(`not an IPv4 address: ${JSON.stringify(text)}`);
		}
		const octet = Number(part);
		if (octet > 255) throw new AddressError(`not an IPv4 address: ${JSON.stringify(text)}`);
		value = value * 256 + octet;
	}
	return value >>> 0;
}

export function formatIPv4(value: number): string {
	const v = value >>> 0;
	return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join(".");
}

function maskOf(prefix: number): number {
	return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** True when the address lies in 198.18.0.0/15. */
export function isLabAddress(address: string | number): boolean {
	const value = typeof address === "string" ? parseIPv4(address) : address;
	return (value & maskOf(LAB_PREFIX)) >>> 0 === LAB_NETWORK;
}

export interface Subnet {
	/** Canonical text, e.g. "198.18.1.0/24". */
	readonly text: string;
	readonly network: number;
	readonly prefix: number;
	/** First and last usable host address (network and broadcast excluded). */
	readonly first: number;
	readonly last: number;
}

/** Parses "a.b.c.d/n"; the subnet must lie inside 198.18.0.0/15, have no host bits set, and n ≤ 30. */
export function parseLabSubnet(text: string): Subnet {
	const match = /^([0-9.]+)\/([0-9]{1,2})$/.exec(text);
	if (!match) throw new AddressError(`not a subnet (want a.b.c.d/n): ${JSON.stringify(text)}`);
	const network = parseIPv4(match[1]!);
	const prefix = Number(match[2]);
	if (prefix < LAB_PREFIX || prefix > 30) {
		throw new AddressError(`subnet ${text}: prefix must be between /${LAB_PREFIX} and /30`);
	}
	const mask = maskOf(prefix);
	if ((network & mask) >>> 0 !== network) {
		throw new AddressError(
			`subnet ${text}: host bits are set (did you mean ${formatIPv4((network & mask) >>> 0)}/${prefix}?)`,
		);
	}
	if (!isLabAddress(network)) {
		throw new AddressError(`subnet ${text} is outside the lab range ${LAB_RANGE}`);
	}
	const broadcast = (network | (~mask >>> 0)) >>> 0;
	return {
		text: `${formatIPv4(network)}/${prefix}`,
		network,
		prefix,
		first: network + 1,
		last: broadcast - 1,
	};
}

export function subnetContains(subnet: Subnet, address: number): boolean {
	return (address & maskOf(subnet.prefix)) >>> 0 === subnet.network;
}

/** Hands out host addresses of one subnet: the lowest free one, or a requested one. */
export class AddressPool {
	readonly #used = new Set<number>();
	constructor(readonly subnet: Subnet) {}

	/** Reserves `requested` (checked: in the subnet, a host address, free) or the lowest free address. */
	allocate(requested?: string): string {
		if (requested !== undefined) {
			const value = parseIPv4(requested);
			if (
				!subnetContains(this.subnet, value) ||
				value < this.subnet.first ||
				value > this.subnet.last
			) {
				throw new AddressError(`${requested} is not a host address of ${this.subnet.text}`);
			}
			if (this.#used.has(value))
				throw new AddressError(`${requested} is already in use in ${this.subnet.text}`);
			this.#used.add(value);
			return formatIPv4(value);
		}
		for (let value = this.subnet.first; value <= this.subnet.last; value++) {
			if (!this.#used.has(value)) {
				this.#used.add(value);
				return formatIPv4(value);
			}
		}
		throw new AddressError(`no free address left in ${this.subnet.text}`);
	}

	release(address: string): void {
		this.#used.delete(parseIPv4(address));
	}
}
