import { createSocket } from "node:dgram";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { isUdpPortFree, waitForUdpPortRelease } from "./udp-port.js";

async function bindAnyPort() {
	const socket = createSocket("udp4");
	socket.bind(0, "0.0.0.0");
	await once(socket, "listening");
	return { socket, port: socket.address().port };
}

describe("UDP port release", () => {
	it("sees a bound port as taken and a closed one as free", async () => {
		const { socket, port } = await bindAnyPort();
		expect(await isUdpPortFree(port)).toBe(false);
		socket.close();
		await once(socket, "close");
		expect(await isUdpPortFree(port)).toBe(true);
	});

	it("waits until the holder lets go, and gives up after the time limit", async () => {
		const { socket, port } = await bindAnyPort();
		expect(await waitForUdpPortRelease(port, { timeoutMs: 30 })).toBe(false);
		setTimeout(() => socket.close(), 40);
		const started = Date.now();
		expect(await waitForUdpPortRelease(port, { timeoutMs: 500 })).toBe(true);
		expect(Date.now() - started).toBeGreaterThanOrEqual(30);
	});
});
