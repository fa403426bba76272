/**
 * A small sans-IO STUN codec (RFC 5389 Binding, with the RFC 5780 address
 * attributes): enough for a client to ask "what address do you see?" and
 * for tests to answer. Decoding never throws: bad input is a result.
 */

import { crc32 } from "@starling/crypto";

export const MAGIC_COOKIE = 0x2112a442;
export const HEADER_BYTES = 20;
export const TRANSACTION_ID_BYTES = 12;
const FINGERPRINT_XOR = 0x5354554e;

export const MessageType = {
	BindingRequest: 0x0001,
	BindingSuccess: 0x0101,
	BindingError: 0x0111,
} as const;

export const AttributeType = {
	MappedAddress: 0x0001,
	ErrorCode: 0x0009,
	XorMappedAddress: 0x0020,
	Software: 0x8022,
	Fingerprint: 0x8028,
	ResponseOrigin: 0x802b,
	OtherAddress: 0x802c,
} as const;

export interface TransportAddress {
	family: 4 | 6;
	/** Dotted quad, or the canonical lower-case IPv6 text. */
	address: string;
	port: number;
}

export interface StunMessage {
	type: number;
	transactionId: Uint8Array;
	mappedAddress?: TransportAddress;
	xorMappedAddress?: TransportAddress;
	/** RFC 5780: the server's other IP and port, for behaviour discovery. */
	otherAddress?: TransportAddress;
	/** RFC 5780: where the response was sent from. */
	responseOrigin?: TransportAddress;
	errorCode?: { code: number; reason: string };
	software?: string;
	/** Whether a FINGERPRINT attribute was present (a wrong one fails decoding). */
	fingerprint: boolean;
	/** Comprehension-required attributes we do not know (0x0000-0x7fff). */
	unknownRequired: number[];
}

export type DecodeResult = { ok: true; message: StunMessage } | { ok: false; error: string };

/** True when `data` looks like a STUN message at all (RFC 5389 §8: first bits and cookie). */
export function isStunMessage(data: Uint8Array): boolean {
	if (data.length < HEADER_BYTES) return false;
	const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
	return (data[0]! & 0xc0) === 0 && view.getUint32(4) === MAGIC_COOKIE;
}

// --- decoding ---

function decodeAddress(
	value: Uint8Array,
	xor: Uint8Array | undefined,
): TransportAddress | undefined {
	if (value.length < 4) return undefined;
	const family = value[1];
	const length = family === 0x01 ? 4 : family === 0x02 ? 16 : 0;
	if (length === 0 || value.length !== 4 + length) return undefined;
	let port = (value[2]! << 8) | value[3]!;
	const bytes = Uint8Array.from(value.subarray(4));
	if (xor) {
		port ^= MAGIC_COOKIE >>> 16;
		for (let i = 0; i < bytes.length; i++) bytes[i]! ^= xor[i]!;
	}
	return { family: family === 0x01 ? 4 : 6, address: addressText(bytes), port };
}

function addressText(bytes: Uint8Array): string {
	if (bytes.length === 4) return Array.from(bytes).join(".");
	const groups: string[] = [];
	for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
	// Canonical form (RFC 5952): the longest run (>1) of zero groups becomes "::".
	let best = -1;
	let bestLen = 1;
	for (let i = 0; i < 8; ) {
		if (groups[i] !== "0") {
			i++;
			continue;
		}
		let j = i;
		while (j < 8 && groups[j] === "0") j++;
		if (j - i > bestLen) {
			best = i;
			bestLen = j - i;
		}
		i = j;
	}
	if (best < 0) return groups.join(":");
	return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

/** The XOR key of XOR-MAPPED-ADDRESS: the cookie, then the transaction id (for IPv6). */
function xorKey(transactionId: Uint8Array): Uint8Array {
	const key = new Uint8Array(16);
	new DataView(key.buffer).setUint32(0, MAGIC_COOKIE);
	key.set(transactionId, 4);
	return key;
}

/** Decodes one STUN message (the whole datagram). */
export function decodeStunMessage(data: Uint8Array): DecodeResult {
	if (data.length < HEADER_BYTES) return { ok: false, error: "shorter than a STUN header" };
	const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
	const type = view.getUint16(0);
	if ((type & 0xc000) !== 0) return { ok: false, error: "not a STUN message (first bits set)" };
	const length = view.getUint16(2);
	if (length % 4 !== 0) return { ok: false, error: "message length is not a multiple of 4" };
	if (HEADER_BYTES + length !== data.length) {
		return { ok: false, error: "message length does not match the datagram" };
	}
	if (view.getUint32(4) !== MAGIC_COOKIE) {
		return { ok: false, error: "no magic cookie (not RFC 5389)" };
	}
	const transactionId = Uint8Array.from(data.subarray(8, HEADER_BYTES));
	const message: StunMessage = { type, transactionId, fingerprint: false, unknownRequired: [] };
	const key = xorKey(transactionId);
	let offset = HEADER_BYTES;
	while (offset < data.length) {
		if (message.fingerprint) return { ok: false, error: "attribute after FINGERPRINT" };
		if (offset + 4 > data.length) return { ok: false, error: "truncated attribute header" };
		const attrType = view.getUint16(offset);
		const attrLength = view.getUint16(offset + 2);
		const start = offset + 4;
		const padded = start + Math.ceil(attrLength / 4) * 4;
		if (padded > data.length) return { ok: false, error: "attribute runs past the message" };
		const value = data.subarray(start, start + attrLength);
		switch (attrType) {
			case AttributeType.MappedAddress:
			case AttributeType.XorMappedAddress:
			case AttributeType.OtherAddress:
			case AttributeType.ResponseOrigin: {
				const xor = attrType === AttributeType.XorMappedAddress ? key : undefined;
				const address = decodeAddress(value, xor);
				if (!address) return { ok: false, error: `malformed address attribute 0x${hex(attrType)}` };
				if (attrType === AttributeType.MappedAddress) message.mappedAddress ??= address;
				else if (attrType === AttributeType.XorMappedAddress) message.xorMappedAddress ??= address;
				else if (attrType === AttributeType.OtherAddress) message.otherAddress ??= address;
				else message.responseOrigin ??= address;
				break;
			}
			case AttributeType.ErrorCode: {
				if (attrLength < 4) return { ok: false, error: "malformed ERROR-CODE" };
				const code = (value[2]! & 0x07) * 100 + value[3]!;
				message.errorCode ??= { code, reason: utf8(value.subarray(4)) };
				break;
			}
			case AttributeType.Software:
				message.software ??= utf8(value);
				break;
			case AttributeType.Fingerprint: {
				if (attrLength !== 4) return { ok: false, error: "malformed FINGERPRINT" };
				// The CRC covers the message up to this attribute, with the header's
				// length counting it (which it does here: it is the last one).
				const expected = (crc32(data.subarray(0, offset)) ^ FINGERPRINT_XOR) >>> 0;
				if (view.getUint32(start) !== expected) return { ok: false, error: "wrong FINGERPRINT" };
				message.fingerprint = true;
				break;
			}
			default:
				if (attrType < 0x8000) message.unknownRequired.push(attrType);
		}
		offset = padded;
	}
	return { ok: true, message };
}

const decoder = new TextDecoder("utf-8", { fatal: false });
function utf8(bytes: Uint8Array): string {
	return decoder.decode(bytes);
}

function hex(n: number): string {
	return n.toString(16).padStart(4, "0");
}

// --- encoding ---

function addressBytes(a: TransportAddress): Uint8Array {
	if (a.family === 4) {
		const parts = a.address.split(".").map(Number);
		if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
			throw new RangeError(`not an IPv4 address: ${a.address}`);
		}
		return Uint8Array.from(parts);
	}
	return ipv6Bytes(a.address);
}

function ipv6Bytes(text: string): Uint8Array {
	const halves = text.split("::");
	if (halves.length > 2) throw new RangeError(`not an IPv6 address: ${text}`);
	const head = halves[0] ? halves[0].split(":") : [];
	const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
	const missing = 8 - head.length - tail.length;
	if ((halves.length === 1 && missing !== 0) || missing < 0) {
		throw new RangeError(`not an IPv6 address: ${text}`);
	}
	const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
	const bytes = new Uint8Array(16);
	groups.forEach((g, i) => {
		if (!/^[0-9a-f]{1,4}$/i.test(g)) throw new RangeError(`not an IPv6 address: ${text}`);
		const v = Number.parseInt(g, 16);
		bytes[2 * i] = v >> 8;
		bytes[2 * i + 1] = v & 0xff;
	});
	return bytes;
}

function encodeAddress(a: TransportAddress, xor: Uint8Array | undefined): Uint8Array {
	if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) {
		throw new RangeError(`not a port: ${a.port}`);
	}
	const bytes = addressBytes(a);
	const out = new Uint8Array(4 + bytes.length);
	out[1] = a.family === 4 ? 0x01 : 0x02;
	const port = xor ? a.port ^ (MAGIC_COOKIE >>> 16) : a.port;
	out[2] = port >> 8;
	out[3] = port & 0xff;
	for (let i = 0; i < bytes.length; i++) out[4 + i] = xor ? bytes[i]! ^ xor[i]! : bytes[i]!;
	return out;
}

export interface EncodeOptions {
	/** Append a FINGERPRINT (RFC 5389 §15.5). */
	fingerprint?: boolean;
	software?: string;
}

export interface BindingResponseFields {
	xorMappedAddress?: TransportAddress;
	mappedAddress?: TransportAddress;
	otherAddress?: TransportAddress;
	responseOrigin?: TransportAddress;
	errorCode?: { code: number; reason: string };
}

function encodeMessage(
	type: number,
	transactionId: Uint8Array,
	attributes: Array<[number, Uint8Array]>,
	options: EncodeOptions,
): Uint8Array {
	if (transactionId.length !== TRANSACTION_ID_BYTES) {
		throw new RangeError(`a transaction id has ${TRANSACTION_ID_BYTES} bytes`);
	}
	const all = [...attributes];
	if (options.software !== undefined) {
		all.push([AttributeType.Software, new TextEncoder().encode(options.software)]);
	}
	const bodyLength =
		all.reduce((n, [, v]) => n + 4 + Math.ceil(v.length / 4) * 4, 0) +
		(options.fingerprint ? 8 : 0);
	if (bodyLength > 0xffff) throw new RangeError("STUN message too long");
	const out = new Uint8Array(HEADER_BYTES + bodyLength);
	const view = new DataView(out.buffer);
	view.setUint16(0, type);
	view.setUint16(2, bodyLength);
	view.setUint32(4, MAGIC_COOKIE);
	out.set(transactionId, 8);
	let offset = HEADER_BYTES;
	for (const [attrType, value] of all) {
		view.setUint16(offset, attrType);
		view.setUint16(offset + 2, value.length);
		out.set(value, offset + 4);
		offset += 4 + Math.ceil(value.length / 4) * 4;
	}
	if (options.fingerprint) {
		view.setUint16(offset, AttributeType.Fingerprint);
		view.setUint16(offset + 2, 4);
		view.setUint32(offset + 4, (crc32(out.subarray(0, offset)) ^ FINGERPRINT_XOR) >>> 0);
	}
	return out;
}

/** A Binding request with no attributes but an optional FINGERPRINT/SOFTWARE. */
export function encodeBindingRequest(
	transactionId: Uint8Array,
	options: EncodeOptions = {},
): Uint8Array {
	return encodeMessage(MessageType.BindingRequest, transactionId, [], options);
}

/** A Binding success (or, with errorCode, error) response: for tests and the lab's responders. */
export function encodeBindingResponse(
	transactionId: Uint8Array,
	fields: BindingResponseFields,
	options: EncodeOptions = {},
): Uint8Array {
	const key = xorKey(transactionId);
	const attributes: Array<[number, Uint8Array]> = [];
	if (fields.mappedAddress) {
		attributes.push([AttributeType.MappedAddress, encodeAddress(fields.mappedAddress, undefined)]);
	}
	if (fields.xorMappedAddress) {
		attributes.push([AttributeType.XorMappedAddress, encodeAddress(fields.xorMappedAddress, key)]);
	}
	if (fields.responseOrigin) {
		attributes.push([
			AttributeType.ResponseOrigin,
			encodeAddress(fields.responseOrigin, undefined),
		]);
	}
	if (fields.otherAddress) {
		attributes.push([AttributeType.OtherAddress, encodeAddress(fields.otherAddress, undefined)]);
	}
	if (fields.errorCode) {
		const { code, reason } = fields.errorCode;
		if (!Number.isInteger(code) || code < 300 || code > 699) {
			throw new RangeError(`STUN error codes are 300-699, got ${code}`);
		}
		const text = new TextEncoder().encode(reason);
		const value = new Uint8Array(4 + text.length);
		value[2] = Math.floor(code / 100);
		value[3] = code % 100;
		value.set(text, 4);
		attributes.push([AttributeType.ErrorCode, value]);
	}
	const type = fields.errorCode ? MessageType.BindingError : MessageType.BindingSuccess;
	return encodeMessage(type, transactionId, attributes, options);
}

/** The address the server saw us at: XOR-MAPPED-ADDRESS, else the legacy MAPPED-ADDRESS. */
export function reflexiveAddress(message: StunMessage): TransportAddress | undefined {
	return message.xorMappedAddress ?? message.mappedAddress;
}

/** Equal transaction ids (the way a client matches a response to its request). */
export function sameTransaction(a: Uint8Array, b: Uint8Array): boolean {
	if (a.length !== b.length) return false;
	for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
	return true;
}
