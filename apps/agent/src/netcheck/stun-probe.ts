/**
 * The UDP adapter of netcheck: asks every STUN server what address it sees,
 * all from ONE local socket (the comparison that tells a NAT's mapping
 * behaviour needs exactly that), and also asks the alternate address a
 * server names in OTHER-ADDRESS (RFC 5780), so one coturn with two IPs is
 * enough. Every retransmission is its own transaction, so a round trip is
 * measured against the request that was actually answered.
 */
import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { lookup } from "node:dns/promises";
import { isIPv4 } from "node:net";
import {
	decodeStunMessage,
	encodeBindingRequest,
	MessageType,
	reflexiveAddress,
	TRANSACTION_ID_BYTES,
} from "./stun-codec.js";
import { endpointText, type StunProbeResult, type StunServerSpec } from "./verdict.js";

export interface StunProbeOptions {
	servers: readonly StunServerSpec[];
	/** How long each destination gets to answer. Default 2500 ms. */
	timeoutMs?: number;
	/** Send times of the retransmissions after the first request (RFC 5389 doubles from ~500 ms). */
	retransmitAtMs?: readonly number[];
	/** Follow OTHER-ADDRESS in answers (RFC 5780). Default true. */
	followOtherAddress?: boolean;
	/** Local address to bind (default all). */
	bindAddress?: string;
}

export interface StunProbeReport {
	localPort: number;
	probes: StunProbeResult[];
}

const DEFAULT_TIMEOUT_MS = 2_500;
const DEFAULT_RETRANSMITS = [250, 750, 1_500];

interface Pending {
	result: StunProbeResult;
	startedAt: number;
	timers: NodeJS.Timeout[];
	done: boolean;
}

/** Resolves names to IPv4 (the agent's paths are IPv4 for now). */
async function resolveServer(
	spec: StunServerSpec,
): Promise<{ address: string } | { error: string }> {
	if (isIPv4(spec.host)) return { address: spec.host };
	if (spec.host.includes(":")) return { error: "IPv6 STUN servers are not probed yet" };
	try {
		const r = await lookup(spec.host, { family: 4 });
		return { address: r.address };
	} catch (err) {
		return { error: `cannot resolve ${spec.host}: ${(err as NodeJS.ErrnoException).code ?? err}` };
	}
}

export async function probeStun(options: StunProbeOptions): Promise<StunProbeReport> {
	const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
	const retransmits = (options.retransmitAtMs ?? DEFAULT_RETRANSMITS).filter((t) => t < timeoutMs);
	const follow = options.followOtherAddress ?? true;
	const socket: Socket = createSocket({ type: "udp4" });
	const results: StunProbeResult[] = [];
	const pendingByDestination = new Map<string, Pending>();
	const byTransaction = new Map<string, { pending: Pending; sentAt: number }>();
	let open = 0;
	let finish: () => void = () => {};
	const allDone = new Promise<void>((resolve) => {
		finish = resolve;
	});

	const complete = (pending: Pending) => {
		if (pending.done) return;
		pending.done = true;
		for (const t of pending.timers) clearTimeout(t);
		if (--open === 0) finish();
	};

	const send = (pending: Pending) => {
		if (pending.done) return;
		const id = randomBytes(TRANSACTION_ID_BYTES);
		byTransaction.set(id.toString("hex"), { pending, sentAt: performance.now() });
		const { address, port } = pending.result.destination;
		socket.send(encodeBindingRequest(id, { fingerprint: true }), port, address, (err) => {
			// Unreachable networks and the like: the timeout reports it if nothing answers.
			if (err) pending.result.error = `send failed: ${err.message}`;
		});
	};

	const start = (result: StunProbeResult) => {
		const key = endpointText(result.destination);
		if (pendingByDestination.has(key)) return;
		const pending: Pending = { result, startedAt: performance.now(), timers: [], done: false };
		pendingByDestination.set(key, pending);
		results.push(result);
		open++;
		send(pending);
		for (const at of retransmits) pending.timers.push(setTimeout(() => send(pending), at));
		pending.timers.push(
			setTimeout(() => {
				if (!result.mapped) result.error ??= `no answer within ${timeoutMs} ms`;
				complete(pending);
			}, timeoutMs),
		);
	};

	socket.on("message", (data) => {
		const decoded = decodeStunMessage(data);
		if (!decoded.ok) return;
		const message = decoded.message;
		const sent = byTransaction.get(Buffer.from(message.transactionId).toString("hex"));
		if (!sent || sent.pending.done) return;
		const { pending } = sent;
		const result = pending.result;
		if (message.type === MessageType.BindingError) {
			const e = message.errorCode;
			result.error = e ? `STUN error ${e.code}${e.reason ? ` ${e.reason}` : ""}` : "STUN error";
			complete(pending);
			return;
		}
		if (message.type !== MessageType.BindingSuccess) return;
		const mapped = reflexiveAddress(message);
		if (!mapped) {
			result.error = "answer without a mapped address";
			complete(pending);
			return;
		}
		result.mapped = { address: mapped.address, port: mapped.port };
		result.rttMs = Math.round((performance.now() - sent.sentAt) * 100) / 100;
		delete result.error;
		const other = message.otherAddress;
		if (follow && other && other.family === 4 && result.origin === "configured") {
			start({
				server: `other-address of ${result.server}`,
				destination: { address: other.address, port: other.port },
				origin: "other-address",
			});
		}
		complete(pending);
	});
	// Errors on an unconnected UDP socket (ICMP unreachable) are reported per send.
	socket.on("error", () => {});

	try {
		await new Promise<void>((resolve, reject) => {
			socket.once("error", reject);
			socket.bind({ port: 0, address: options.bindAddress }, () => {
				socket.off("error", reject);
				resolve();
			});
		});
		const localPort = socket.address().port;
		const resolved = await Promise.all(
			options.servers.map(async (spec) => ({ spec, r: await resolveServer(spec) })),
		);
		for (const { spec, r } of resolved) {
			if ("error" in r) {
				results.push({
					server: spec.text,
					destination: { address: spec.host, port: spec.port },
					origin: "configured",
					error: r.error,
				});
				continue;
			}
			start({
				server: spec.text,
				destination: { address: r.address, port: spec.port },
				origin: "configured",
			});
		}
		if (open > 0) await allDone;
		return { localPort, probes: results };
	} finally {
		for (const p of pendingByDestination.values()) for (const t of p.timers) clearTimeout(t);
		socket.close();
	}
}
