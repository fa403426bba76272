/**
 * Parses `wg show <if> dump`. Pure. The private key (first field of the first line) and the
 * preshared keys are dropped while parsing, so no object built here can leak them.
 */

export interface PeerDump {
	publicKey: string;
	/** undefined when WireGuard knows no endpoint yet ("(none)"). */
	endpoint: string | undefined;
	/** As WireGuard stores them (host bits cleared), in its order. */
	allowedIps: string[];
	/** 0 means no handshake ever. */
	latestHandshakeUnixSeconds: number;
	rxBytes: number;
	txBytes: number;
	/** undefined when off. */
	persistentKeepalive: number | undefined;
}

export interface DeviceDump {
	/** undefined while no private key is set. */
	publicKey: string | undefined;
	listenPort: number;
	/** undefined when off. */
	fwmark: number | undefined;
	peers: PeerDump[];
}

export class WgDumpParseError extends Error {
	override name = "WgDumpParseError";
}

const NONE = "(none)";

function parseCount(text: string, field: string, lineNumber: number): number {
	// Number("") is 0 and Number("0x1f") is 31: accept only what wg prints for a field.
	if (!/^\d+$/.test(text)) {
		throw new WgDumpParseError(
			`wg dump line ${lineNumber}: ${field} ${JSON.stringify(text)} is not a number`,
		);
	}
	return Number(text);
}

function parseFwmark(text: string, lineNumber: number): number | undefined {
	if (text === "off") return undefined;
	// wg prints the fwmark as "0x%x".
	if (/^0x[0-9a-fA-F]+$/.test(text)) return Number.parseInt(text.slice(2), 16);
	return parseCount(text, "fwmark", lineNumber);
}

function parsePeerLine(fields: string[], lineNumber: number): PeerDump {
	if (fields.length !== 8) {
		throw new WgDumpParseError(
			`wg dump line ${lineNumber}: expected 8 fields for a peer, got ${fields.length}`,
		);
	}
	const [publicKey, , endpoint, allowedIps, handshake, rx, tx, keepalive] = fields as [
		string,
		string,
		string,
		string,
		string,
		string,
		string,
		string,
	];
	return {
		publicKey,
		endpoint: endpoint === NONE ? undefined : endpoint,
		allowedIps: allowedIps === NONE || allowedIps === "" ? [] : allowedIps.split(","),
		latestHandshakeUnixSeconds: parseCount(handshake, "latest-handshake", lineNumber),
		rxBytes: parseCount(rx, "transfer-rx", lineNumber),
		txBytes: parseCount(tx, "transfer-tx", lineNumber),
		persistentKeepalive:
			keepalive === "off" ? undefined : parseCount(keepalive, "persistent-keepalive", lineNumber),
	};
}

export function parseWgDump(text: string): DeviceDump {
	const lines = text.split("\n").filter((line) => line.trim() !== "");
	const [deviceLine, ...peerLines] = lines;
	if (deviceLine === undefined) throw new WgDumpParseError("wg dump is empty");
	const deviceFields = deviceLine.split("\t");
	if (deviceFields.length !== 4) {
		throw new WgDumpParseError(
			`wg dump line 1: expected 4 fields for the interface, got ${deviceFields.length}`,
		);
	}
	// deviceFields[0] is the private key: deliberately never read.
	const [, publicKey, listenPort, fwmark] = deviceFields as [string, string, string, string];
	return {
		publicKey: publicKey === NONE ? undefined : publicKey,
		listenPort: parseCount(listenPort, "listen-port", 1),
		fwmark: parseFwmark(fwmark, 1),
		peers: peerLines.map((line, index) => parsePeerLine(line.split("\t"), index + 2)),
	};
}
