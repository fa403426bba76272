import type { StoreWriter, StoreWrites } from "./store.js";

// Group commit for small independent writes that arrive in bursts (a Sync
// session opened or closed, a peer's login recorded): when 5,000 agents
// reconnect at once, one transaction each spends the time in commits (and on
// PostgreSQL in waiting for this instance's turn to write). Here a write
// that arrives while none is in flight runs at once, alone; writes that
// arrive meanwhile wait and then run together in one transaction, each
// with its own result. Nothing waits for a timer.
//
// One write of a batch failing (a domain error, a deleted row) must not fail
// the others: the batch is rolled back and each of its writes runs again
// alone, so each gets exactly the result or error it would have had.

interface Pending {
	fn: (tx: StoreWriter) => Promise<unknown>;
	resolve: (value: unknown) => void;
	reject: (err: unknown) => void;
}

/** How many writes one transaction carries at most (bounds its time and its locks). */
const DEFAULT_MAX_BATCH = 200;

export class GroupCommit implements StoreWrites {
	private readonly queue: Pending[] = [];
	private draining = false;
	private batches = 0;
	private writes = 0;

	constructor(
		private readonly store: StoreWrites,
		private readonly maxBatch = DEFAULT_MAX_BATCH,
	) {}

	/** Same contract as Store.write: `fn` may run more than once and must act only through `tx`. */
	write<T>(fn: (tx: StoreWriter) => Promise<T>): Promise<T> {
		return new Promise<T>((resolve, reject) => {
			this.queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
			if (!this.draining) void this.drain();
		});
	}

	/** Transactions run and writes carried so far (metrics and tests). */
	stats(): { batches: number; writes: number } {
		return { batches: this.batches, writes: this.writes };
	}

	private async drain(): Promise<void> {
		this.draining = true;
		try {
			while (this.queue.length > 0) {
				await this.run(this.queue.splice(0, this.maxBatch));
			}
		} finally {
			this.draining = false;
		}
	}

	private async run(batch: Pending[]): Promise<void> {
		this.batches += 1;
		this.writes += batch.length;
		if (batch.length === 1) {
			await this.runAlone(batch[0] as Pending);
			return;
		}
		// Which write threw in the last attempt (the store may run the batch again).
		let failed: { error: unknown } | undefined;
		let results: unknown[];
		try {
			results = await this.store.write(async (tx) => {
				failed = undefined;
				const out: unknown[] = [];
				for (const op of batch) {
					try {
						out.push(await op.fn(tx));
					} catch (err) {
						failed = { error: err };
						throw err;
					}
				}
				return out;
			});
		} catch (err) {
			if (failed && failed.error === err) {
				for (const op of batch) await this.runAlone(op);
			} else {
				// The store itself failed (unavailable, commit refused): every write shares that fate.
				for (const op of batch) op.reject(err);
			}
			return;
		}
		for (const [i, op] of batch.entries()) op.resolve(results[i]);
	}

	private async runAlone(op: Pending): Promise<void> {
		try {
			op.resolve(await this.store.write(op.fn));
		} catch (err) {
			op.reject(err);
		}
	}
}
