import type { NetworkMap } from "@starling/proto";

/**
 * A host integration that follows the network map on its own: the inbound
 * firewall today (netfilter/firewall-consumer.ts); kernel routes and the DNS
 * resolver are meant to be the next ones. The engine hands each map to every
 * consumer it was given, waits for them in `settled()`, and stops them on
 * `stop()`. A consumer never throws from `applyMap`: it applies in the
 * background, keeps its last error for its status line, and logs it.
 */
export interface MapConsumer {
	/** Short name for logs and status, e.g. "firewall". */
	readonly name: string;
	/** A new (full) network map; may start asynchronous work. */
	applyMap(map: NetworkMap): void;
	/** Resolves once the work started by the last `applyMap` is done (failed or not). */
	settled(): Promise<void>;
	/** The engine stops. The daemon removes host state (tables, routes) itself, in its undo. */
	stop(): Promise<void>;
}
