import { status as GrpcStatus } from "@grpc/grpc-js";
import { backoffDelay, resolveBackoff } from "@starling/backoff";
import type { Logger } from "@starling/log";
import type {
	ManagementCallError,
	ManagementClient,
	SyncStream,
} from "@starling/management-client";
import type { NetworkMap, PeerSystemMeta } from "@starling/proto";

export interface ControlLoopEvents {
	/** The whole current map, after every full map or applied delta. */
	onMap(map: NetworkMap): void;
	/** Management says this peer no longer exists (deleted or logged out elsewhere). */
	onDeregistered(reason: string): void;
	/**
	 * A readable reason for an unreachable management, when there is one
	 * (e.g. a refused TLS certificate), shown in status instead of grpc's.
	 */
	explainUnreachable?(): Promise<string | undefined>;
}

/**
 * Keeps a Sync stream to management open: reconnects with backoff when it
 * ends (management restarting or unreachable), and re-syncs from a full map.
 * The last map stays in force meanwhile, so tunnels keep working.
 */
export class ControlLoop {
	private stream: SyncStream | undefined;
	private timer: NodeJS.Timeout | undefined;
	private attempt = 0;
	private stopped = true;
	private lastError = "";
	private connected = false;
	private readonly backoff = resolveBackoff({ initialDelayMs: 500, maxDelayMs: 15_000 });

	constructor(
		readonly client: ManagementClient,
		readonly url: string,
		private readonly meta: PeerSystemMeta,
		private readonly events: ControlLoopEvents,
		private readonly logger: Logger,
	) {}

	get status(): { url: string; connected: boolean; error: string } {
		return {
			url: this.url,
			connected: this.connected,
			error: this.connected ? "" : this.lastError,
		};
	}

	start(): void {
		if (!this.stopped) return;
		this.stopped = false;
		void this.open();
	}

	stop(): void {
		this.stopped = true;
		this.connected = false;
		if (this.timer) clearTimeout(this.timer);
		this.timer = undefined;
		this.stream?.close();
		this.stream = undefined;
	}

	private async open(): Promise<void> {
		if (this.stopped) return;
		try {
			const stream = await this.client.sync(this.meta, {
				onMap: (map) => {
					if (this.stream !== stream && this.stream !== undefined) return;
					if (!this.connected) this.logger.info("management sync connected");
					this.connected = true;
					this.attempt = 0;
					this.events.onMap(map);
				},
				onEnd: (error) => this.ended(stream, error),
			});
			if (this.stopped) {
				stream.close();
				return;
			}
			this.stream = stream;
		} catch (err) {
			this.ended(undefined, err as ManagementCallError);
		}
	}

	private ended(stream: SyncStream | undefined, error: ManagementCallError | undefined): void {
		if (stream && this.stream !== stream) return;
		this.stream = undefined;
		this.connected = false;
		if (this.stopped) return;
		this.lastError = error ? oneLine(error.message) : "sync stream ended";
		if (error?.code === GrpcStatus.PERMISSION_DENIED) {
			this.logger.warn({ reason: this.lastError }, "management refused this peer");
			this.stopped = true;
			this.events.onDeregistered(this.lastError);
			return;
		}
		const delay = backoffDelay(this.attempt++, this.backoff);
		this.logger.warn({ error: this.lastError, retryInMs: delay }, "management sync lost; retrying");
		if (error?.code === GrpcStatus.UNAVAILABLE && this.events.explainUnreachable) {
			const failed = this.lastError;
			void this.events.explainUnreachable().then(
				(reason) => {
					// Only if nothing happened meanwhile (reconnected, stopped, another failure).
					if (reason && !this.connected && !this.stopped && this.lastError === failed) {
						this.lastError = reason;
						this.logger.warn({ error: reason }, "management sync lost");
					}
				},
				() => undefined,
			);
		}
		this.timer = setTimeout(() => void this.open(), delay);
	}
}

export function oneLine(text: string): string {
	return text.split("\n")[0]?.trim() ?? "";
}
