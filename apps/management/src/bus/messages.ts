// What management instances tell each other over the bus: subjects and
// payloads (JSON, small). Decoding is strict: a malformed message is dropped
// (the periodic check keeps correctness without it).

/** Prefix of every management subject. */
export const SUBJECT_PREFIX = "starling.mgmt";

/** An account's network data changed: `starling.mgmt.account.<accountId>`. */
export const accountSubject = (accountId: string) => `${SUBJECT_PREFIX}.account.${accountId}`;
/** Every account-changed message. */
export const ALL_ACCOUNTS_SUBJECT = `${SUBJECT_PREFIX}.account.*`;
/** A peer's Sync stream opened on some instance. */
export const STREAM_OPENED_SUBJECT = `${SUBJECT_PREFIX}.stream.opened`;

export interface AccountChanged {
	/** The publishing instance (its own messages are ignored). */
	instance: string;
	accountId: string;
	/** The account's revision after the change; null when it could not be read (reload anyway). */
	revision: number | null;
}

export interface StreamOpened {
	instance: string;
	/** The peer's WireGuard public key (base64). */
	peerKey: string;
	streamId: string;
	/** When it opened, ms since the epoch (an older stream elsewhere ends as replaced). */
	since: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeAccountChanged(m: Omit<AccountChanged, "accountId">): Uint8Array {
	return encoder.encode(JSON.stringify({ instance: m.instance, revision: m.revision }));
}

/** The message, or undefined when the subject or payload is not one. */
export function decodeAccountChanged(
	subject: string,
	payload: Uint8Array,
): AccountChanged | undefined {
	const prefix = `${SUBJECT_PREFIX}.account.`;
	if (!subject.startsWith(prefix)) return undefined;
	const accountId = subject.slice(prefix.length);
	if (accountId === "" || accountId.includes(".")) return undefined;
	const body = parse(payload);
	if (!body || typeof body.instance !== "string") return undefined;
	const revision = body.revision;
	if (revision !== null && !(typeof revision === "number" && Number.isSafeInteger(revision)))
		return undefined;
	return { instance: body.instance, accountId, revision };
}

export function encodeStreamOpened(m: StreamOpened): Uint8Array {
	return encoder.encode(JSON.stringify(m));
}

export function decodeStreamOpened(payload: Uint8Array): StreamOpened | undefined {
	const body = parse(payload);
	if (
		!body ||
		typeof body.instance !== "string" ||
		typeof body.peerKey !== "string" ||
		typeof body.streamId !== "string" ||
		typeof body.since !== "number" ||
		!Number.isFinite(body.since)
	)
		return undefined;
	return {
		instance: body.instance,
		peerKey: body.peerKey,
		streamId: body.streamId,
		since: body.since,
	};
}

function parse(payload: Uint8Array): Record<string, unknown> | undefined {
	try {
		const value: unknown = JSON.parse(decoder.decode(payload));
		return value && typeof value === "object" && !Array.isArray(value)
			? (value as Record<string, unknown>)
			: undefined;
	} catch {
		return undefined;
	}
}
