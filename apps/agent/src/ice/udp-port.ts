import { createSocket, type SocketType } from "node:dgram";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * True when nobody holds UDP `port` on the wildcard address: we could bind it
 * for IPv4, and for IPv6-only (a dual-stack socket on [::] blocks the IPv4
 * bind already; a separate IPv6 socket only the IPv6 one). A host without
 * IPv6 counts as free for IPv6.
 */
export async function isUdpPortFree(port: number): Promise<boolean> {
	if (!(await canBind("udp4", "0.0.0.0", port))) return false;
	return canBind("udp6", "::", port);
}

function canBind(type: SocketType, address: string, port: number): Promise<boolean> {
	return new Promise((resolve) => {
		const socket = createSocket({ type, ipv6Only: type === "udp6" });
		socket.once("error", (error: NodeJS.ErrnoException) => {
			socket.close();
			// No IPv6 on this host: nothing can hold the port there either.
			resolve(error.code === "EAFNOSUPPORT" || error.code === "EADDRNOTAVAIL");
		});
		socket.bind({ port, address, exclusive: true }, () => {
			socket.close(() => resolve(true));
		});
	});
}

export interface WaitForReleaseOptions {
	/** Give up after this long (the port is released 1–15 ms after pc.close()). */
	timeoutMs?: number;
	intervalMs?: number;
}

/** Polls until UDP `port` is bindable; true if it became free within the time limit. */
export async function waitForUdpPortRelease(
	port: number,
	options: WaitForReleaseOptions = {},
): Promise<boolean> {
	const timeoutMs = options.timeoutMs ?? 200;
	const intervalMs = options.intervalMs ?? 3;
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		if (await isUdpPortFree(port)) return true;
		if (Date.now() >= deadline) return false;
		await sleep(intervalMs);
	}
}
