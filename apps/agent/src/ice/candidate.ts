/**
 * ICE candidate lines (RFC 8839 `candidate-attribute`) as libjuice writes them,
 * and filtering of candidates out of an SDP. Pure.
 */

import { type AddressPrefix, isAddressExcluded } from "./address-prefix.js";

export type CandidateType = "host" | "srflx" | "prflx" | "relay";

export interface ParsedCandidate {
	foundation: string;
	component: number;
	/** "udp" or "tcp", lower case. */
	transport: string;
	priority: number;
	address: string;
	port: number;
	type: CandidateType;
	/** For srflx/relay: the base (local socket) address and port, if given. */
	relatedAddress?: string;
	relatedPort?: number;
}

const CANDIDATE_TYPES: ReadonlySet<string> = new Set(["host", "srflx", "prflx", "relay"]);

/**
 * Parses "candidate:1 1 UDP 2114977791 198.18.0.2 43138 typ host" (with or
 * without the "a=" prefix). Returns undefined for anything else, including
 * the empty end-of-candidates marker.
 */
export function parseCandidate(line: string): ParsedCandidate | undefined {
	const text = line.trim().replace(/^a=/, "");
	if (!text.startsWith("candidate:")) return undefined;
	const fields = text.slice("candidate:".length).split(/\s+/);
	const [foundation, componentText, transport, priorityText, address, portText, typ, type] = fields;
	if (
		foundation === undefined ||
		transport === undefined ||
		address === undefined ||
		typ !== "typ" ||
		type === undefined ||
		!CANDIDATE_TYPES.has(type)
	) {
		return undefined;
	}
	const component = Number(componentText);
	const priority = Number(priorityText);
	const port = Number(portText);
	if (!Number.isInteger(component) || !Number.isInteger(priority) || !isPort(port)) {
		return undefined;
	}
	const candidate: ParsedCandidate = {
		foundation,
		component,
		transport: transport.toLowerCase(),
		priority,
		address,
		port,
		type: type as CandidateType,
	};
	// Extension attributes come as name/value pairs after the type.
	for (let index = 8; index + 1 < fields.length; index += 2) {
		const name = fields[index];
		const value = fields[index + 1] ?? "";
		if (name === "raddr") candidate.relatedAddress = value;
		if (name === "rport" && isPort(Number(value))) candidate.relatedPort = Number(value);
	}
	return candidate;
}

function isPort(value: number): boolean {
	// Port 0 appears as rport of some srflx candidates; candidates themselves never have it.
	return Number.isInteger(value) && value >= 0 && value <= 65_535;
}

/**
 * True when a candidate must not be offered: its address (or, for a
 * server-reflexive/relay candidate, its related base address) lies in an
 * excluded prefix. A candidate we cannot parse is excluded too: we only
 * forward what we understand.
 */
export function isCandidateExcluded(line: string, prefixes: readonly AddressPrefix[]): boolean {
	const candidate = parseCandidate(line);
	if (candidate === undefined) return true;
	if (isAddressExcluded(candidate.address, prefixes)) return true;
	return (
		candidate.relatedAddress !== undefined && isAddressExcluded(candidate.relatedAddress, prefixes)
	);
}

/**
 * Removes excluded `a=candidate` lines from an SDP, and blanks a default
 * connection address (`c=`) that is excluded, so an overlay address never
 * reaches the peer by way of the description either.
 */
export function filterSdpCandidates(sdp: string, prefixes: readonly AddressPrefix[]): string {
	const lineEnd = sdp.includes("\r\n") ? "\r\n" : "\n";
	return sdp
		.split(lineEnd)
		.filter((line) => !line.startsWith("a=candidate:") || !isCandidateExcluded(line, prefixes))
		.map((line) => {
			const connection = /^c=IN (IP4|IP6) (\S+)$/.exec(line);
			if (connection === null) return line;
			const [, family, address = ""] = connection;
			if (!isAddressExcluded(address, prefixes)) return line;
			return family === "IP4" ? "c=IN IP4 0.0.0.0" : "c=IN IP6 ::";
		})
		.join(lineEnd);
}

/** The `a=candidate` lines of an SDP, without the "a=" prefix. */
export function sdpCandidates(sdp: string): string[] {
	return sdp
		.split(/\r?\n/)
		.filter((line) => line.startsWith("a=candidate:"))
		.map((line) => line.slice(2));
}
