import { status } from "@grpc/grpc-js";
import { SignalError } from "./errors.js";

/** The server's answer to one send, as carried by SignalSendResult. */
export interface SendOutcome {
	id: number;
	code: number;
	message: string;
}

interface PendingSend {
	resolve(): void;
	reject(error: SignalError): void;
	timer: NodeJS.Timeout | undefined;
}

/**
 * Sends awaiting their SignalSendResult, by id. Ids are allocated here so
 * they are unique on a connection; results for unknown ids (late, after a
 * timeout) are ignored.
 */
export class PendingSends {
	private readonly pending = new Map<number, PendingSend>();
	private lastId = 0;

	constructor(private readonly timeoutMs: number) {}

	get size(): number {
		return this.pending.size;
	}

	/** Registers a send; the promise settles on its result, a timeout, or failAll(). */
	track(): { id: number; result: Promise<void> } {
		// Wraps long before 2^53 would matter; ids only need to be unique among pending sends.
		this.lastId = this.lastId >= Number.MAX_SAFE_INTEGER ? 1 : this.lastId + 1;
		const id = this.lastId;
		const result = new Promise<void>((resolve, reject) => {
			const entry: PendingSend = { resolve, reject, timer: undefined };
			if (this.timeoutMs > 0 && Number.isFinite(this.timeoutMs)) {
				entry.timer = setTimeout(() => {
					this.fail(
						id,
						new SignalError(
							status.DEADLINE_EXCEEDED,
							`no result from the signal server within ${this.timeoutMs} ms`,
						),
					);
				}, this.timeoutMs);
			}
			this.pending.set(id, entry);
		});
		return { id, result };
	}

	/** Settles the send the outcome names; false if no such send is pending. */
	settle(outcome: SendOutcome): boolean {
		const entry = this.take(outcome.id);
		if (!entry) return false;
		if (outcome.code === status.OK) {
			entry.resolve();
		} else {
			entry.reject(new SignalError(outcome.code, outcome.message || "send failed"));
		}
		return true;
	}

	/** Rejects one pending send; false if it was not pending. */
	fail(id: number, error: SignalError): boolean {
		const entry = this.take(id);
		if (!entry) return false;
		entry.reject(error);
		return true;
	}

	/** Rejects every pending send, e.g. when the stream they went out on ends. */
	failAll(error: SignalError): void {
		const entries = [...this.pending.values()];
		this.pending.clear();
		for (const entry of entries) {
			if (entry.timer) clearTimeout(entry.timer);
			entry.reject(error);
		}
	}

	private take(id: number): PendingSend | undefined {
		const entry = this.pending.get(id);
		if (!entry) return undefined;
		this.pending.delete(id);
		if (entry.timer) clearTimeout(entry.timer);
		return entry;
	}
}
