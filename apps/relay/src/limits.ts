/** Defaults of the relay's limits (each overridable, see config.ts and README.md). */

/** Open WebSocket connections, authenticated or not, before new ones get 1013. */
export const DEFAULT_MAX_CONNECTIONS = 10_000;

/**
 * Bytes queued towards one receiver (ws `bufferedAmount`) beyond which frames
 * for it are dropped instead of queued, like a full router queue. 1 MiB is
 * about 20 ms at 400 Mbit/s: enough to absorb bursts, short enough that a
 * stalled peer does not add seconds of latency or hold memory.
 */
export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;

/**
 * Bytes queued towards all receivers together (sampled every
 * BUFFERED_SAMPLE_INTERVAL_MS and raised by every queued frame in between)
 * beyond which every forwarded frame is dropped.
 */
export const DEFAULT_MAX_TOTAL_BUFFERED_BYTES = 256 * 1024 * 1024;

export const BUFFERED_SAMPLE_INTERVAL_MS = 100;

/** Time from the WebSocket upgrade to a valid HELLO. */
export const DEFAULT_HELLO_TIMEOUT_MS = 5_000;

/**
 * WebSocket pings to every connection; one not answered by the next ping
 * ends the connection. Also keeps NAT and proxy idle timers from firing.
 */
export const DEFAULT_PING_INTERVAL_MS = 25_000;

/** How long close() waits for clients to go after the close frames. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;

/** setTimeout's largest delay; longer timers are re-armed. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
