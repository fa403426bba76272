import type { LabNode } from "./lab.js";
import type { LabProcess } from "./process.js";

/** What wireguard-go logs (at LOG_LEVEL=verbose) once its control socket listens and is watched. */
const UAPI_READY = /UAPI listener started/;

export interface WireguardGoOptions {
	/** Shown in errors and `Lab.logs()` (default `wireguard-go-<iface>`). */
	name?: string;
	/** How long it may take to come up (default 10 s). */
	timeoutMs?: number;
}

/**
 * Starts `wireguard-go -f <iface>` in `node` (its private /run holds the control socket) and
 * resolves once wireguard-go says its control socket is listening; rejects with its output if
 * it exits first.
 *
 * Why not poll `wg show <iface>` until it answers: wireguard-go bind()s its socket and only then
 * listen()s, and `wg` unlinks a socket that refuses a connection (it takes it for one left by a
 * dead daemon). A `wg show` in that window deletes the new socket, and wireguard-go exits with
 * "Failed to listen on uapi socket: no such file or directory" (its inotify watch on the path
 * finds nothing). Waiting for the log line never touches the socket.
 */
export async function startWireguardGo(
	node: LabNode,
	iface: string,
	options: WireguardGoOptions = {},
): Promise<LabProcess> {
	const process = node.spawn("wireguard-go", ["-f", iface], {
		name: options.name ?? `wireguard-go-${iface}`,
		env: { LOG_LEVEL: "verbose" },
	});
	await process.waitForOutput(UAPI_READY, options.timeoutMs ?? 10_000);
	return process;
}
