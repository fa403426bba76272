/** Limits on frames written to one stream but not yet flushed to its socket. */
export interface OutboundLimits {
	maxQueuedBytes: number;
	maxQueuedFrames: number;
}

/**
 * Accounts for frames handed to a stream's writer until grpc-js reports them
 * flushed. grpc-js's writable buffer holds 16 frames before write() returns
 * false and never refuses a write, so without this a recipient that stops
 * reading would make the server buffer deliveries without limit.
 */
export class OutboundBudget {
	private frames = 0;
	private bytes = 0;

	constructor(private readonly limits: OutboundLimits) {}

	get queuedFrames(): number {
		return this.frames;
	}

	get queuedBytes(): number {
		return this.bytes;
	}

	/** Whether a delivery of this size still fits. */
	fits(size: number): boolean {
		return (
			this.frames < this.limits.maxQueuedFrames && this.bytes + size <= this.limits.maxQueuedBytes
		);
	}

	/**
	 * Whether the stream is so far behind that even control frames (results,
	 * pings) pile up: at twice the delivery bound the peer is not reading at all.
	 */
	overwhelmed(): boolean {
		return (
			this.frames >= 2 * this.limits.maxQueuedFrames || this.bytes >= 2 * this.limits.maxQueuedBytes
		);
	}

	add(size: number): void {
		this.frames += 1;
		this.bytes += size;
	}

	release(size: number): void {
		this.frames = Math.max(0, this.frames - 1);
		this.bytes = Math.max(0, this.bytes - size);
	}
}
