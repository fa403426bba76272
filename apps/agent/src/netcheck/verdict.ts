/**
 * What the STUN answers say about this host's NAT: pure logic, no I/O.
 *
 * Mapping behaviour (RFC 4787): a NAT maps endpoint-independently when one
 * local socket keeps the same public address and port whatever it talks to.
 * We can only tell by comparing what two or more *different* server
 * addresses saw from the same local socket; with one, we say "unknown".
 */

export interface Endpoint {
	address: string;
	port: number;
}

/** One STUN destination probed from the shared local socket. */
export interface StunProbeResult {
	/** The server as configured ("stun:host:port"), or as named by another server. */
	server: string;
	/** The address probed. */
	destination: Endpoint;
	/** "configured" (from management or --stun) or "other-address" (RFC 5780 alternate). */
	origin: "configured" | "other-address";
	/** The address and port the server saw us at, when it answered. */
	mapped?: Endpoint;
	/** Round trip of the request that was answered. */
	rttMs?: number;
	/** Why there is no answer (timeout, STUN error, unresolvable name), one line. */
	error?: string;
}

export type MappingBehaviour = "endpoint-independent" | "endpoint-dependent" | "unknown";

export interface NatVerdict {
	/** A STUN answer arrived; undefined when there was nothing to ask. */
	udpReachable: boolean | undefined;
	/** "ip:port" as the first answering server saw us, or "". */
	mappedAddress: string;
	/** The mapped address is not one of ours (or the port differs); undefined without answers. */
	behindNat: boolean | undefined;
	mapping: MappingBehaviour;
	/** One line: how the mapping verdict was reached, or why it is unknown. */
	mappingDetail: string;
	/** Every answer kept the local port; undefined without answers. */
	portPreserved: boolean | undefined;
}

export function endpointText(e: Endpoint): string {
	return e.address.includes(":") ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

export function computeVerdict(input: {
	localPort: number;
	/** The host's own interface addresses (to tell "no NAT" from "NAT"). */
	localAddresses: readonly string[];
	probes: readonly StunProbeResult[];
}): NatVerdict {
	const { probes, localPort } = input;
	const answered = probes.filter(
		(p): p is StunProbeResult & { mapped: Endpoint } => p.mapped !== undefined,
	);
	const udpReachable = probes.length === 0 ? undefined : answered.length > 0;
	const first = answered[0];
	const verdict: NatVerdict = {
		udpReachable,
		mappedAddress: first ? endpointText(first.mapped) : "",
		behindNat: first
			? answered.some(
					(p) => !input.localAddresses.includes(p.mapped.address) || p.mapped.port !== localPort,
				)
			: undefined,
		mapping: "unknown",
		mappingDetail: "",
		portPreserved: first ? answered.every((p) => p.mapped.port === localPort) : undefined,
	};

	if (probes.length === 0) {
		verdict.mappingDetail = "no STUN server to ask";
		return verdict;
	}
	if (!first) {
		verdict.mappingDetail = "no STUN server answered over UDP";
		return verdict;
	}
	// One answer per distinct destination (a server listed twice counts once).
	const byDestination = new Map<string, StunProbeResult & { mapped: Endpoint }>();
	for (const p of answered) {
		const key = endpointText(p.destination);
		if (!byDestination.has(key)) byDestination.set(key, p);
	}
	const distinct = [...byDestination.values()];
	if (distinct.length < 2) {
		verdict.mappingDetail =
			"only one STUN server address answered; comparing needs two (list a second STUN URL in management, or run coturn with two listening IPs for RFC 5780)";
		return verdict;
	}
	const mappedSet = new Set(distinct.map((p) => endpointText(p.mapped)));
	if (mappedSet.size > 1) {
		verdict.mapping = "endpoint-dependent";
		verdict.mappingDetail = `different mapped addresses per destination: ${distinct
			.map((p) => `${endpointText(p.destination)} saw ${endpointText(p.mapped)}`)
			.join(", ")}`;
		return verdict;
	}
	verdict.mapping = "endpoint-independent";
	const serverIps = new Set(distinct.map((p) => p.destination.address));
	verdict.mappingDetail =
		serverIps.size > 1
			? `${distinct.length} server addresses saw the same ${verdict.mappedAddress}`
			: `${distinct.length} ports of one server address saw the same ${verdict.mappedAddress} (a NAT that maps per destination address only would look the same)`;
	return verdict;
}

/** A STUN server from management ("stun:host[:port]") or a flag ("host[:port]"). */
export interface StunServerSpec {
	/** As given, for the report. */
	text: string;
	host: string;
	port: number;
}

export const DEFAULT_STUN_PORT = 3478;

/**
 * Parses "stun:host:port", "stun:[v6]:port", "host:port" or "host". TURN
 * and TLS URIs ("turn:", "stuns:") are not probed: returns an error line.
 */
export function parseStunServer(text: string): StunServerSpec | { error: string } {
	const trimmed = text.trim();
	let rest = trimmed;
	const scheme = /^([a-z]+):(?!\d+$)/i.exec(trimmed);
	if (scheme && !/^\[/.test(trimmed)) {
		const name = scheme[1]!.toLowerCase();
		if (name !== "stun") return { error: `${trimmed}: only stun: URLs are probed` };
		rest = trimmed.slice(scheme[0].length).replace(/^\/\//, "");
	}
	rest = rest.split("?")[0]!;
	let host: string;
	let portText: string | undefined;
	const bracketed = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(rest);
	if (bracketed) {
		host = bracketed[1]!;
		portText = bracketed[2];
	} else {
		const m = /^([^:/\s]+)(?::(\d+))?$/.exec(rest);
		if (!m) return { error: `${trimmed}: not a STUN server (host[:port])` };
		host = m[1]!;
		portText = m[2];
	}
	const port = portText === undefined ? DEFAULT_STUN_PORT : Number(portText);
	if (!Number.isInteger(port) || port < 1 || port > 65535) {
		return { error: `${trimmed}: port must be 1-65535` };
	}
	return { text: trimmed, host, port };
}
