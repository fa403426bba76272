/**
 * IPv4 forwarding (`net.ipv4.ip_forward`) while this peer serves routes, and
 * given back exactly afterwards.
 *
 * Before the agent changes the value it records the value it found (the
 * "previous" value) durably, in the state folder (`ip-forward.json`, mode
 * 0600). Restoring writes that value back and only then deletes the record.
 * So whatever stops the agent (down, exit, SIGKILL, a power cut after the
 * record was written), the next start, `starling down` or an uninstall finds
 * the record and puts the machine back as it was. While a record exists, the
 * value in it is the machine's own; the live value is the agent's.
 *
 * The decisions (`planForwarding`) are pure; the sysctl and the record are
 * two small injected interfaces (`ForwardingSysctl`, `ForwardingRecord`).
 */

import {
	closeSync,
	existsSync,
	fsyncSync,
	openSync,
	readFileSync,
	renameSync,
	rmSync,
	writeSync,
} from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** The sysctl value the agent needs while it forwards. */
export const FORWARDING_ON = "1";
export const IP_FORWARD_KEY = "net.ipv4.ip_forward";
const RECORD_FILE = "ip-forward.json";

/** Reads and writes one sysctl (the adapter: /proc/sys in the agent's network namespace). */
export interface ForwardingSysctl {
	read(): Promise<string>;
	write(value: string): Promise<void>;
}

/** Where the machine's own value is kept while the agent has changed it. */
export interface ForwardingRecord {
	/** The recorded previous value, undefined when there is no record. */
	load(): string | undefined;
	save(previous: string): void;
	clear(): void;
}

/** One step the adapter carries out, in order. */
export type ForwardingStep =
	| { kind: "record"; previous: string }
	| { kind: "write"; value: string }
	| { kind: "clear-record" };

/**
 * What to do to reach `wanted` (forwarding on or given back) from what is
 * known: the record (the machine's own value, when the agent changed it) and
 * the live value.
 *
 * - on, no record: record the live value, then write 1 (unless it is 1
 *   already: then nothing is changed, but the record still says 1 so that a
 *   restore writes 1, which is a no-op; recording keeps the rule simple: a
 *   record exists exactly while the agent owns the value).
 * - on, record: the machine's value is already safe; write 1 if someone
 *   changed it meanwhile.
 * - off, record: write the recorded value (if the live one differs), then
 *   drop the record. The record goes last: a crash in between repeats the
 *   write, never loses the value.
 * - off, no record: nothing; the value was never ours.
 */
export function planForwarding(
	wanted: boolean,
	recorded: string | undefined,
	live: string,
): ForwardingStep[] {
	if (wanted) {
		if (recorded === undefined) {
			const steps: ForwardingStep[] = [{ kind: "record", previous: live }];
			if (live !== FORWARDING_ON) steps.push({ kind: "write", value: FORWARDING_ON });
			return steps;
		}
		return live === FORWARDING_ON ? [] : [{ kind: "write", value: FORWARDING_ON }];
	}
	if (recorded === undefined) return [];
	const steps: ForwardingStep[] = [];
	if (live !== recorded) steps.push({ kind: "write", value: recorded });
	steps.push({ kind: "clear-record" });
	return steps;
}

/** A sysctl value as /proc/sys holds it: digits and spaces/tabs (ip_forward is "0" or "1"). */
export function isSysctlValue(value: unknown): value is string {
	return typeof value === "string" && /^[0-9]+(?:[ \t][0-9]+)*$/.test(value);
}

/**
 * Turns forwarding on while routes are served and gives it back; every call
 * reads the live value, so it also repairs a value someone else changed.
 * Calls are serialised.
 */
export class Forwarding {
	private queue: Promise<void> = Promise.resolve();

	constructor(
		private readonly sysctl: ForwardingSysctl,
		private readonly record: ForwardingRecord,
	) {}

	/** Whether the agent holds the value (a record exists). */
	get owned(): boolean {
		return this.record.load() !== undefined;
	}

	/** Forwarding on (first served route) or given back (last one gone, down, exit, recovery). */
	set(wanted: boolean): Promise<void> {
		const task = async () => {
			const live = (await this.sysctl.read()).trim();
			for (const step of planForwarding(wanted, this.record.load(), live)) {
				if (step.kind === "record") this.record.save(step.previous);
				else if (step.kind === "write") await this.sysctl.write(step.value);
				else this.record.clear();
			}
		};
		const next = this.queue.then(task, task);
		this.queue = next.catch(() => undefined);
		return next;
	}

	/** Gives the machine's value back if a record says the agent changed it. */
	restore(): Promise<void> {
		return this.set(false);
	}
}

/** `net.ipv4.ip_forward` of the caller's network namespace, through /proc/sys. */
export function procSysctl(key: string = IP_FORWARD_KEY): ForwardingSysctl {
	if (!/^[a-z0-9_]+(?:\.[a-z0-9_]+)+$/.test(key)) throw new Error(`bad sysctl key ${key}`);
	const path = `/proc/sys/${key.replaceAll(".", "/")}`;
	return {
		read: async () => (await readFile(path, "utf8")).trim(),
		write: async (value) => {
			if (!isSysctlValue(value)) throw new Error(`bad value ${JSON.stringify(value)} for ${key}`);
			await writeFile(path, `${value}\n`);
		},
	};
}

/**
 * The record as a file in the state folder, `{"key": …, "previous": …}`,
 * written atomically with mode 0600. A file that can't be read or holds
 * something else is left in place and reads as "no record" would lose the
 * machine's value, so it throws instead: an operator has to look.
 */
export function fileForwardingRecord(
	stateDir: string,
	key: string = IP_FORWARD_KEY,
): ForwardingRecord {
	const path = join(stateDir, RECORD_FILE);
	return {
		load() {
			if (!existsSync(path)) return undefined;
			const parsed = JSON.parse(readFileSync(path, "utf8")) as {
				key?: unknown;
				previous?: unknown;
			};
			if (parsed.key !== key || !isSysctlValue(parsed.previous)) {
				throw new Error(`${path} does not hold a recorded ${key} value`);
			}
			return parsed.previous;
		},
		save(previous) {
			// Flushed before the sysctl changes: after a power cut the value is still known.
			const tmp = `${path}.tmp-${process.pid}`;
			const fd = openSync(tmp, "w", 0o600);
			try {
				writeSync(fd, `${JSON.stringify({ key, previous })}\n`);
				fsyncSync(fd);
			} finally {
				closeSync(fd);
			}
			renameSync(tmp, path);
			const dirFd = openSync(stateDir, "r");
			try {
				fsyncSync(dirFd);
			} finally {
				closeSync(dirFd);
			}
		},
		clear() {
			rmSync(path, { force: true });
		},
	};
}

/** The record's file name in the state folder (uninstall reads it). */
export const FORWARDING_RECORD_FILE = RECORD_FILE;
