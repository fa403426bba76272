/**
 * Bounds the bytes management has queued for Sync streams but not yet handed
 * to the network: per stream (a slow agent) and in total (a connect storm
 * after a restart, when every agent wants its full map at once). Callers
 * check `writable` before producing an update and otherwise wait for
 * `onWritable`; nothing here does I/O.
 */
export class OutputBudget {
	private unsent = 0;
	private readonly waiting: Array<{ stream: StreamBudget; cb: () => void }> = [];

	constructor(
		readonly totalLimit: number,
		readonly streamLimit: number,
	) {}

	get totalUnsent(): number {
		return this.unsent;
	}

	get waiters(): number {
		return this.waiting.length;
	}

	stream(): StreamBudget {
		return new StreamBudget(this);
	}

	/** @internal */
	add(bytes: number): void {
		this.unsent += bytes;
	}

	/** @internal */
	release(bytes: number): void {
		this.unsent -= bytes;
		this.wake();
	}

	/** @internal */
	wait(stream: StreamBudget, cb: () => void): void {
		this.waiting.push({ stream, cb });
		this.wake();
	}

	/** @internal */
	forget(stream: StreamBudget): void {
		for (let i = this.waiting.length - 1; i >= 0; i--)
			if (this.waiting[i]!.stream === stream) this.waiting.splice(i, 1);
	}

	hasRoom(): boolean {
		return this.unsent <= this.totalLimit;
	}

	/** Wakes waiters in arrival order while there is room; skips streams still full themselves. */
	private wake(): void {
		for (let i = 0; i < this.waiting.length && this.hasRoom(); ) {
			const w = this.waiting[i]!;
			if (w.stream.writable()) {
				this.waiting.splice(i, 1);
				w.cb();
			} else {
				i++;
			}
		}
	}
}

export class StreamBudget {
	private unsent = 0;
	private closed = false;

	constructor(private readonly total: OutputBudget) {}

	writable(): boolean {
		return !this.closed && this.unsent <= this.total.streamLimit && this.total.hasRoom();
	}

	/** Records `bytes` queued; returns the function to call once they are sent. */
	queued(bytes: number): () => void {
		this.unsent += bytes;
		this.total.add(bytes);
		let done = false;
		return () => {
			if (done || this.closed) return;
			done = true;
			this.unsent -= bytes;
			this.total.release(bytes);
		};
	}

	/** Calls `cb` once when this stream may write again. */
	onWritable(cb: () => void): void {
		this.total.wait(this, cb);
	}

	/** The stream is gone: whatever it had queued no longer counts. */
	close(): void {
		if (this.closed) return;
		this.closed = true;
		this.total.forget(this);
		const unsent = this.unsent;
		this.unsent = 0;
		this.total.release(unsent);
	}
}
