/**
 * The overlay interface's byte counters, from /proc/self/net/dev: a file
 * read, no process, and always the network namespace the daemon runs in
 * (unlike /sys/class/net, which shows the namespace sysfs was mounted in).
 * The path monitor reads them a few times a second to notice traffic.
 */

import { readFile } from "node:fs/promises";
import type { InterfaceCounters } from "./path-health.js";

const NET_DEV = "/proc/self/net/dev";

/**
 * One interface's counters out of /proc/net/dev's text; undefined when it is
 * not listed. A line is "name: rx_bytes rx_packets ... (8 receive fields)
 * tx_bytes ...".
 */
export function parseNetDev(text: string, name: string): InterfaceCounters | undefined {
	for (const line of text.split("\n")) {
		const colon = line.indexOf(":");
		if (colon < 0 || line.slice(0, colon).trim() !== name) continue;
		const fields = line
			.slice(colon + 1)
			.trim()
			.split(/\s+/)
			.map(Number);
		const rxBytes = fields[0];
		const txBytes = fields[8];
		if (rxBytes === undefined || txBytes === undefined) return undefined;
		if (!Number.isFinite(rxBytes) || !Number.isFinite(txBytes)) return undefined;
		return { rxBytes, txBytes };
	}
	return undefined;
}

/** Reads `name`'s counters now; undefined when the interface or the file is not there. */
export async function readInterfaceCounters(name: string): Promise<InterfaceCounters | undefined> {
	try {
		return parseNetDev(await readFile(NET_DEV, "utf8"), name);
	} catch {
		return undefined;
	}
}
