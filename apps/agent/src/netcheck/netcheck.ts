import { networkInterfaces } from "node:os";
import type {
	NetcheckPeer,
	NetcheckRelayProbe,
	NetcheckReport,
	NetcheckStunProbe,
	PeerStatus,
} from "@starling/proto";
import { probeRelay, type RelayProbeResult } from "@starling/relay-client";
import { probeStun } from "./stun-probe.js";
import {
	computeVerdict,
	endpointText,
	parseStunServer,
	type StunProbeResult,
	type StunServerSpec,
} from "./verdict.js";

export interface NetcheckInputs {
	/** "daemon": servers from the network map; "cli": from flags. */
	source: "daemon" | "cli";
	/** STUN servers: "stun:host:port" (as management sends them) or "host:port". */
	stunServers: readonly string[];
	relayUrls: readonly string[];
	/** The daemon's own relay connection (admitted with its token, or why not). */
	relayAdmission?: (url: string) => { admitted: boolean; error: string } | undefined;
	/** The daemon's peers; those without a direct path are listed with the reason. */
	peers?: readonly PeerStatus[];
	stunTimeoutMs?: number;
	relayTimeoutMs?: number;
}

/** Runs the STUN and relay probes side by side and sums them up. */
export async function runNetcheck(inputs: NetcheckInputs): Promise<NetcheckReport> {
	const startedAt = performance.now();
	const specs: StunServerSpec[] = [];
	const unparsable: NetcheckStunProbe[] = [];
	for (const text of inputs.stunServers) {
		const parsed = parseStunServer(text);
		if ("error" in parsed) unparsable.push(stunProbeOut({ server: text, error: parsed.error }));
		else specs.push(parsed);
	}
	const [stun, relays] = await Promise.all([
		probeStun({ servers: specs, timeoutMs: inputs.stunTimeoutMs || undefined }),
		Promise.all(
			inputs.relayUrls.map((url) => probeRelay(url, { timeoutMs: inputs.relayTimeoutMs })),
		),
	]);
	const verdict = computeVerdict({
		localPort: stun.localPort,
		localAddresses: localAddresses(),
		probes: stun.probes,
	});
	return {
		source: inputs.source,
		udpReachable: verdict.udpReachable,
		mappedAddress: verdict.mappedAddress,
		localPort: stun.localPort,
		behindNat: verdict.behindNat,
		mapping: verdict.mapping,
		mappingDetail: verdict.mappingDetail,
		portPreserved: verdict.portPreserved,
		stun: [...stun.probes.map(stunProbeFromResult), ...unparsable],
		relays: relays.map((r) => relayProbeOut(r, inputs.relayAdmission?.(r.url))),
		peers: (inputs.peers ?? []).filter((p) => p.pathType !== "p2p").map(peerOut),
		durationMs: Math.round(performance.now() - startedAt),
	};
}

function localAddresses(): string[] {
	return Object.values(networkInterfaces())
		.flatMap((list) => list ?? [])
		.map((i) => i.address);
}

function stunProbeOut(p: Partial<NetcheckStunProbe>): NetcheckStunProbe {
	return {
		server: "",
		address: "",
		origin: "configured",
		answered: false,
		latencyMs: 0,
		mappedAddress: "",
		error: "",
		...p,
	};
}

function stunProbeFromResult(r: StunProbeResult): NetcheckStunProbe {
	return stunProbeOut({
		server: r.server,
		address: endpointText(r.destination),
		origin: r.origin,
		answered: r.mapped !== undefined,
		latencyMs: r.rttMs ?? 0,
		mappedAddress: r.mapped ? endpointText(r.mapped) : "",
		error: r.error ?? "",
	});
}

function relayProbeOut(
	r: RelayProbeResult,
	admission: { admitted: boolean; error: string } | undefined,
): NetcheckRelayProbe {
	return {
		url: r.url,
		reachable: r.reachable,
		connectMs: r.connectMs ?? 0,
		latencyMs: r.rttMs ?? 0,
		error: r.error ?? "",
		admitted: admission?.admitted,
		admissionError: admission?.error ?? "",
	};
}

function peerOut(p: PeerStatus): NetcheckPeer {
	return {
		name: p.name,
		fqdn: p.fqdn,
		overlayIp: p.overlayIp,
		connectionState: p.connectionState,
		pathType: p.pathType,
		reason: p.reason,
	};
}
