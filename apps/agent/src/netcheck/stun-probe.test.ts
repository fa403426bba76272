// The UDP adapter against small STUN responders on loopback (the codec's
// own encoder answers). Real NATs and coturn are in test/e2e-netcheck.test.ts.
import { createSocket, type Socket } from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import {
	decodeStunMessage,
	encodeBindingResponse,
	MessageType,
	type TransportAddress,
} from "./stun-codec.js";
import { probeStun } from "./stun-probe.js";
import { computeVerdict } from "./verdict.js";

interface Responder {
	socket: Socket;
	port: number;
	requests: number;
}

const open: Socket[] = [];
afterEach(() => {
	for (const s of open.splice(0)) s.close();
});

/**
 * A responder: answers Binding requests with the sender's address, after
 * `portShift` is added to the port (to play an endpoint-dependent NAT),
 * naming `other` as its RFC 5780 alternate; `dropFirst` requests go unanswered.
 */
async function responder(
	options: {
		portShift?: number;
		other?: () => TransportAddress | undefined;
		dropFirst?: number;
		error?: { code: number; reason: string };
		silent?: boolean;
	} = {},
): Promise<Responder> {
	const socket = createSocket("udp4");
	open.push(socket);
	const r: Responder = { socket, port: 0, requests: 0 };
	socket.on("message", (data, rinfo) => {
		const decoded = decodeStunMessage(data);
		if (!decoded.ok || decoded.message.type !== MessageType.BindingRequest) return;
		r.requests++;
		if (options.silent || r.requests <= (options.dropFirst ?? 0)) return;
		const other = options.other?.();
		const reply = encodeBindingResponse(
			decoded.message.transactionId,
			options.error
				? { errorCode: options.error }
				: {
						xorMappedAddress: {
							family: 4,
							address: rinfo.address,
							port: rinfo.port + (options.portShift ?? 0),
						},
						...(other ? { otherAddress: other } : {}),
					},
			{ fingerprint: true },
		);
		socket.send(reply, rinfo.port, rinfo.address);
	});
	await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
	r.port = socket.address().port;
	return r;
}

const spec = (port: number) => ({ text: `stun:127.0.0.1:${port}`, host: "127.0.0.1", port });

describe("probeStun", () => {
	it("asks every server from one socket and follows OTHER-ADDRESS", async () => {
		const alternate = await responder();
		const primary = await responder({
			other: () => ({ family: 4, address: "127.0.0.1", port: alternate.port }),
		});
		const report = await probeStun({ servers: [spec(primary.port)], timeoutMs: 1_000 });
		expect(report.probes).toHaveLength(2);
		const [first, second] = report.probes;
		expect(first).toMatchObject({
			origin: "configured",
			mapped: { address: "127.0.0.1", port: report.localPort },
		});
		expect(second).toMatchObject({
			origin: "other-address",
			destination: { address: "127.0.0.1", port: alternate.port },
			mapped: { address: "127.0.0.1", port: report.localPort },
		});
		expect(first?.rttMs).toBeGreaterThan(0);
		const verdict = computeVerdict({
			localPort: report.localPort,
			localAddresses: ["127.0.0.1"],
			probes: report.probes,
		});
		expect(verdict).toMatchObject({
			udpReachable: true,
			behindNat: false,
			mapping: "endpoint-independent",
			portPreserved: true,
		});
	});

	it("sees different mappings per server as endpoint-dependent", async () => {
		const a = await responder();
		const b = await responder({ portShift: 7 });
		const report = await probeStun({ servers: [spec(a.port), spec(b.port)], timeoutMs: 1_000 });
		const verdict = computeVerdict({
			localPort: report.localPort,
			localAddresses: ["127.0.0.1"],
			probes: report.probes,
		});
		expect(verdict.mapping).toBe("endpoint-dependent");
		expect(verdict.portPreserved).toBe(false);
	});

	it("retransmits lost requests and times out silent servers", async () => {
		const lossy = await responder({ dropFirst: 2 });
		const silent = await responder({ silent: true });
		const refusing = await responder({ error: { code: 400, reason: "Bad Request" } });
		const startedAt = Date.now();
		const report = await probeStun({
			servers: [spec(lossy.port), spec(silent.port), spec(refusing.port)],
			timeoutMs: 900,
			retransmitAtMs: [100, 300],
		});
		const elapsed = Date.now() - startedAt;
		const [l, s, r] = report.probes;
		expect(l?.mapped?.port).toBe(report.localPort);
		expect(lossy.requests).toBe(3);
		expect(s).toMatchObject({ error: "no answer within 900 ms" });
		expect(s?.mapped).toBeUndefined();
		expect(silent.requests).toBe(3);
		expect(r).toMatchObject({ error: "STUN error 400 Bad Request" });
		expect(elapsed).toBeGreaterThanOrEqual(850);
		expect(elapsed).toBeLessThan(3_000);
	});

	it("resolves names, and says which servers it cannot ask", async () => {
		const server = await responder();
		const report = await probeStun({
			servers: [
				{ text: `localhost:${server.port}`, host: "localhost", port: server.port },
				{ text: "stun:[::1]:3478", host: "::1", port: 3478 },
			],
			timeoutMs: 500,
		});
		expect(report.probes[0]).toMatchObject({ destination: { address: "127.0.0.1" } });
		expect(report.probes[0]?.mapped).toBeDefined();
		expect(report.probes[1]?.error).toBe("IPv6 STUN servers are not probed yet");
	});
});
