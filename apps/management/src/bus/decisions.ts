import type { AccountChanged, StreamOpened } from "./messages.js";

// What an instance does with what it hears and reads: pure functions of the
// message, this instance's id and the accounts it holds.

/**
 * Whether an account-changed message asks this instance to reload: not its
 * own, about an account it holds (`held`: account id to the revision it
 * loaded last), and newer than what it loaded (or of unknown revision).
 */
export function reloadForMessage(
	message: AccountChanged,
	selfId: string,
	held: ReadonlyMap<string, number>,
): boolean {
	if (message.instance === selfId) return false;
	const loaded = held.get(message.accountId);
	if (loaded === undefined) return false;
	return message.revision === null || message.revision > loaded;
}

/**
 * The periodic check: the held accounts whose stored revision differs from
 * the one loaded (a lost message, a bus outage, a crash between commit and
 * publish, or a change this instance made itself). Accounts the store no
 * longer has, or whose revision could not be read, are left alone.
 */
export function accountsBehind(
	held: ReadonlyMap<string, number>,
	stored: ReadonlyMap<string, number | undefined>,
): string[] {
	const out: string[] = [];
	for (const [accountId, loaded] of held) {
		const now = stored.get(accountId);
		if (now !== undefined && now !== loaded) out.push(accountId);
	}
	return out;
}

/** Whether a stream-opened message is about another instance (ours are handled locally). */
export function streamOpenedElsewhere(message: StreamOpened, selfId: string): boolean {
	return message.instance !== selfId;
}
