/**
 * Messages between the daemon (IceAgent) and the ICE worker process, over
 * Node's IPC channel (JSON serialisation). Both sides validate what they
 * receive: the worker runs native code we don't trust to stay sane, and a
 * malformed message must be dropped, not crash the daemon.
 */

export type IceRole = "controlling" | "controlled";
export type SdpType = "offer" | "answer";

export interface PortRange {
	begin: number;
	end: number;
}

/** One end of the selected candidate pair. */
export interface CandidateEndpoint {
	address: string;
	port: number;
	/** "host", "srflx", "prflx" or "relay". */
	type: string;
}

// ---- daemon → worker ----

export interface StartSessionMessage {
	type: "start";
	sessionId: string;
	role: IceRole;
	/** "stun:host:port" URLs. */
	stunServers: string[];
	/** CIDR prefixes whose addresses are never offered or accepted as candidates. */
	excludePrefixes: string[];
	portRange?: PortRange;
	timeoutMs: number;
}

export interface RemoteDescriptionMessage {
	type: "remote-description";
	sessionId: string;
	sdp: string;
	sdpType: SdpType;
}

export interface RemoteCandidateMessage {
	type: "remote-candidate";
	sessionId: string;
	/** Empty string: the peer finished gathering. */
	candidate: string;
	mid: string;
}

export interface CloseSessionMessage {
	type: "close";
	sessionId: string;
}

export interface ShutdownMessage {
	type: "shutdown";
}

export type DaemonToWorkerMessage =
	| StartSessionMessage
	| RemoteDescriptionMessage
	| RemoteCandidateMessage
	| CloseSessionMessage
	| ShutdownMessage;

// ---- worker → daemon ----

export interface WorkerReadyMessage {
	type: "ready";
	libraryVersion: string;
}

export interface LocalDescriptionMessage {
	type: "local-description";
	sessionId: string;
	sdp: string;
	sdpType: SdpType;
}

export interface LocalCandidateMessage {
	type: "local-candidate";
	sessionId: string;
	/** Empty string: gathering is complete (end-of-candidates). */
	candidate: string;
	mid: string;
}

export interface ConnectedMessage {
	type: "connected";
	sessionId: string;
	local: CandidateEndpoint;
	remote: CandidateEndpoint;
	/** The UDP port of this session's ICE socket on this host: where WireGuard traffic must leave from. */
	localPort: number;
	/** Milliseconds from session start to ICE connected. */
	elapsedMs: number;
	rttMs?: number;
}

export interface FailedMessage {
	type: "failed";
	sessionId: string;
	reason: string;
}

export interface SessionClosedMessage {
	type: "closed";
	sessionId: string;
	localPort?: number;
	/** False when the port was still bound when we stopped waiting. */
	portReleased: boolean;
}

export interface WorkerLogMessage {
	type: "log";
	level: "debug" | "info" | "warn" | "error";
	message: string;
	sessionId?: string;
}

export type WorkerToDaemonMessage =
	| WorkerReadyMessage
	| LocalDescriptionMessage
	| LocalCandidateMessage
	| ConnectedMessage
	| FailedMessage
	| SessionClosedMessage
	| WorkerLogMessage;

// ---- validation ----

type Fields = Record<string, unknown>;

function isRecord(value: unknown): value is Fields {
	return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isString(value: unknown): value is string {
	return typeof value === "string";
}

function isNonEmptyString(value: unknown): value is string {
	return typeof value === "string" && value.length > 0;
}

function isStringArray(value: unknown): value is string[] {
	return Array.isArray(value) && value.every(isString);
}

function isPort(value: unknown): value is number {
	return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 65_535;
}

function isSdpType(value: unknown): value is SdpType {
	return value === "offer" || value === "answer";
}

function isPortRange(value: unknown): value is PortRange {
	return isRecord(value) && isPort(value.begin) && isPort(value.end) && value.begin <= value.end;
}

function isEndpoint(value: unknown): value is CandidateEndpoint {
	return isRecord(value) && isString(value.address) && isPort(value.port) && isString(value.type);
}

function isNonNegative(value: unknown): value is number {
	return typeof value === "number" && Number.isFinite(value) && value >= 0;
}

/** The message if `value` is a well-formed daemon → worker message, else undefined. */
export function parseDaemonToWorkerMessage(value: unknown): DaemonToWorkerMessage | undefined {
	if (!isRecord(value)) return undefined;
	switch (value.type) {
		case "start":
			if (
				isNonEmptyString(value.sessionId) &&
				(value.role === "controlling" || value.role === "controlled") &&
				isStringArray(value.stunServers) &&
				isStringArray(value.excludePrefixes) &&
				(value.portRange === undefined || isPortRange(value.portRange)) &&
				typeof value.timeoutMs === "number" &&
				value.timeoutMs > 0
			) {
				return {
					type: "start",
					sessionId: value.sessionId,
					role: value.role,
					stunServers: value.stunServers,
					excludePrefixes: value.excludePrefixes,
					...(value.portRange === undefined ? {} : { portRange: value.portRange }),
					timeoutMs: value.timeoutMs,
				};
			}
			return undefined;
		case "remote-description":
			if (isNonEmptyString(value.sessionId) && isString(value.sdp) && isSdpType(value.sdpType)) {
				return {
					type: "remote-description",
					sessionId: value.sessionId,
					sdp: value.sdp,
					sdpType: value.sdpType,
				};
			}
			return undefined;
		case "remote-candidate":
			if (isNonEmptyString(value.sessionId) && isString(value.candidate) && isString(value.mid)) {
				return {
					type: "remote-candidate",
					sessionId: value.sessionId,
					candidate: value.candidate,
					mid: value.mid,
				};
			}
			return undefined;
		case "close":
			return isNonEmptyString(value.sessionId)
				? { type: "close", sessionId: value.sessionId }
				: undefined;
		case "shutdown":
			return { type: "shutdown" };
		default:
			return undefined;
	}
}

/** The message if `value` is a well-formed worker → daemon message, else undefined. */
export function parseWorkerToDaemonMessage(value: unknown): WorkerToDaemonMessage | undefined {
	if (!isRecord(value)) return undefined;
	switch (value.type) {
		case "ready":
			return isString(value.libraryVersion)
				? { type: "ready", libraryVersion: value.libraryVersion }
				: undefined;
		case "local-description":
			if (isNonEmptyString(value.sessionId) && isString(value.sdp) && isSdpType(value.sdpType)) {
				return {
					type: "local-description",
					sessionId: value.sessionId,
					sdp: value.sdp,
					sdpType: value.sdpType,
				};
			}
			return undefined;
		case "local-candidate":
			if (isNonEmptyString(value.sessionId) && isString(value.candidate) && isString(value.mid)) {
				return {
					type: "local-candidate",
					sessionId: value.sessionId,
					candidate: value.candidate,
					mid: value.mid,
				};
			}
			return undefined;
		case "connected":
			if (
				isNonEmptyString(value.sessionId) &&
				isEndpoint(value.local) &&
				isEndpoint(value.remote) &&
				isPort(value.localPort) &&
				isNonNegative(value.elapsedMs) &&
				(value.rttMs === undefined || isNonNegative(value.rttMs))
			) {
				return {
					type: "connected",
					sessionId: value.sessionId,
					local: { address: value.local.address, port: value.local.port, type: value.local.type },
					remote: {
						address: value.remote.address,
						port: value.remote.port,
						type: value.remote.type,
					},
					localPort: value.localPort,
					elapsedMs: value.elapsedMs,
					...(value.rttMs === undefined ? {} : { rttMs: value.rttMs }),
				};
			}
			return undefined;
		case "failed":
			return isNonEmptyString(value.sessionId) && isString(value.reason)
				? { type: "failed", sessionId: value.sessionId, reason: value.reason }
				: undefined;
		case "closed":
			if (
				isNonEmptyString(value.sessionId) &&
				typeof value.portReleased === "boolean" &&
				(value.localPort === undefined || isPort(value.localPort))
			) {
				return {
					type: "closed",
					sessionId: value.sessionId,
					portReleased: value.portReleased,
					...(value.localPort === undefined ? {} : { localPort: value.localPort }),
				};
			}
			return undefined;
		case "log":
			if (
				(value.level === "debug" ||
					value.level === "info" ||
					value.level === "warn" ||
					value.level === "error") &&
				isString(value.message) &&
				(value.sessionId === undefined || isString(value.sessionId))
			) {
				return {
					type: "log",
					level: value.level,
					message: value.message,
					...(value.sessionId === undefined ? {} : { sessionId: value.sessionId }),
				};
			}
			return undefined;
		default:
			return undefined;
	}
}
