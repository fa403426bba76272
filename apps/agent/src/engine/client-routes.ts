import type { Logger } from "@starling/log";
import type { NetworkMap, RouteStatus } from "@starling/proto";
import type { WantedKernelState } from "../routing/kernel-routes.js";
import {
	EMPTY_MEMORY,
	type ExitNodeChoice,
	exitNodeExists,
	type NetworkChoice,
	type RouteEntry,
	type RouterHealth,
	type SelectionMemory,
	type SelectionOutput,
	selectRoutes,
} from "../routing/selection.js";
import type { PeerState } from "./peer-state.js";

/** How often the choice is looked at again (hold times run out, paths change). */
export const ROUTE_TICK_MS = 200;
/** How long a failed kernel update waits before it is tried again. */
const KERNEL_RETRY_MS = 2_000;
/** How often the machine's own networks are read again. */
const LOCAL_NETWORKS_EVERY_MS = 10_000;

/**
 * What the engine knows of one router peer, the input of `routerHealthOf`.
 * `lostRx` is set when its direct path was lost (path-probe gave up): the
 * relay may not reach it either (its uplink is gone), so it counts as
 * unreachable until it has a direct path again or WireGuard's receive counter
 * moves past the value it had when the path was lost (its keepalives or
 * answers came through the relay).
 */
export interface RouterView {
	/** Management reports it online. */
	online: boolean;
	direct: boolean;
	/** A relay bridge endpoint exists for it. */
	relayed: boolean;
	rttMs: number | undefined;
	rxBytes: number | undefined;
	lostRx: number | undefined;
	name: string;
}

/** Whether traffic to a router can get through now, sans-IO. */
export function routerHealthOf(view: RouterView): RouterHealth {
	const relayAlive =
		view.relayed &&
		(view.lostRx === undefined || (view.rxBytes !== undefined && view.rxBytes > view.lostRx));
	return {
		reachable: view.online && (view.direct || relayAlive),
		direct: view.direct,
		latencyMs: view.rttMs,
		name: view.name,
	};
}

/** The kernel side, and the facts about the machine the choice needs (injected by the daemon). */
export interface ClientRoutesHost {
	kernel: { apply(wanted: WantedKernelState): Promise<void> };
	/** The machine's own networks (routing/kernel-routes.ts `localNetworks`). */
	localNetworks(): Promise<string[]>;
	exitNode: { load(): ExitNodeChoice; save(choice: ExitNodeChoice): void };
	/** Hosts the agent talks to outside the map (management's URL host). */
	controlPlaneHosts: readonly string[];
	/** Resolves a host name to IPv4 addresses (a literal address is used as it is). */
	resolve(host: string): Promise<string[]>;
}

export interface ClientRoutesOptions {
	host: ClientRoutesHost;
	peer(key: string): PeerState | undefined;
	peers(): Iterable<PeerState>;
	relayEndpointOf(key: string): string | undefined;
	/** WireGuard's endpoint and receive counter for the peer, from the last dump. */
	wgOf(key: string): { endpoint?: string | undefined; rxBytes: number } | undefined;
	/** Asks the reconciler for a WireGuard pass (the allowed IPs changed). */
	reconcile(): void;
	logger: Logger;
	now?: () => number;
	holdMs?: number;
}

/** One network as `starling routes` and status show it. */
export interface ClientRouteStatus extends NetworkChoice {
	/** Its kernel route is installed now. */
	installed: boolean;
}

/**
 * The client side of routes (the map's `routes`): keeps the HA choice of
 * routing/selection.ts current from the engine's own view of each router's
 * path (no waiting for management), gives each chosen router its networks as
 * extra allowed IPs through the reconciler, and keeps the kernel routes in
 * the agent's own table (routing/kernel-routes.ts). Removing the kernel state
 * on down is the daemon's undo (KernelRoutes.clear), not this class's.
 */
export class ClientRoutes {
	private routes: RouteEntry[] = [];
	private map: NetworkMap | undefined;
	private memory: SelectionMemory = EMPTY_MEMORY;
	private output: SelectionOutput | undefined;
	private allowedKey = "";
	private local: string[] = [];
	private localReadAt = Number.NEGATIVE_INFINITY;
	private readonly lost = new Map<string, number | undefined>();
	private readonly resolved = new Map<string, string[]>();
	private exitChoice: ExitNodeChoice;
	/** What the kernel was last given; `up` starts from nothing (its leftovers were cleared). */
	private applied = JSON.stringify({ routes: [], bypass: [] } satisfies WantedKernelState);
	private retryAt = 0;
	private installed = new Set<string>();
	private applying: Promise<void> = Promise.resolve();
	private pendingKernel = false;
	private error = "";
	private timer: NodeJS.Timeout | undefined;
	private stopped = false;
	private readonly now: () => number;

	constructor(private readonly options: ClientRoutesOptions) {
		this.now = options.now ?? Date.now;
		this.exitChoice = options.host.exitNode.load();
		this.timer = setInterval(() => this.evaluate(), ROUTE_TICK_MS);
		this.timer.unref();
	}

	applyMap(map: NetworkMap): void {
		this.map = map;
		this.routes = map.routes.map((r) => ({
			id: r.id,
			networkId: r.networkId,
			network: r.network,
			routerKey: r.routerKey,
			metric: r.metric,
			keepRoute: r.keepRoute,
			skipAutoApply: r.skipAutoApply,
			description: r.description,
		}));
		this.resolveControlPlane(map);
		this.localReadAt = Number.NEGATIVE_INFINITY;
		this.evaluate();
	}

	/** The extra allowed IPs of a router peer: the networks it carries for us. */
	allowedIpsOf(key: string): readonly string[] {
		return this.output?.allowedIps.get(key) ?? [];
	}

	/**
	 * The peer's direct path was declared dead (path-probe or path-health):
	 * it counts as unreachable until it has a direct path again or WireGuard
	 * receives from it through the relay. The counter is the one the monitor
	 * read while the probe went unanswered, so it is already past the last
	 * packet of the dead path.
	 */
	noteLost(key: string): void {
		this.lost.set(key, this.options.wgOf(key)?.rxBytes ?? 0);
		this.evaluate();
	}

	/** Looks at the choice again now (a path changed). Cheap; kernel work only when something changed. */
	evaluate(): void {
		if (this.stopped || !this.map) return;
		const now = this.now();
		// Only while routes exist: an agent without any runs no command here.
		if (this.routes.length > 0 && now - this.localReadAt >= LOCAL_NETWORKS_EVERY_MS) {
			this.localReadAt = now;
			this.options.host.localNetworks().then(
				(local) => {
					if (local.join() === this.local.join()) return;
					this.local = local;
					this.evaluate();
				},
				(err: unknown) =>
					this.options.logger.warn({ error: String(err) }, "could not read the local networks"),
			);
		}
		const output = selectRoutes({
			routes: this.routes,
			health: (key) => this.healthOf(key),
			now,
			memory: this.memory,
			exitNode: this.exitChoice,
			localNetworks: this.local,
			...(this.options.holdMs !== undefined ? { holdMs: this.options.holdMs } : {}),
		});
		this.memory = output.memory;
		this.output = output;
		for (const move of output.moves) {
			const choice = output.networks.find((n) => n.key === move.key);
			this.options.logger.info(
				{
					network: choice?.network,
					networkId: choice?.networkId,
					router: choice?.routerName || null,
				},
				`route: ${choice?.reason}`,
			);
		}
		const allowedKey = JSON.stringify([...output.allowedIps].sort());
		if (allowedKey !== this.allowedKey) {
			this.allowedKey = allowedKey;
			this.options.reconcile();
		}
		this.applyKernel({ routes: output.kernelRoutes, bypass: this.bypassAddresses(output) });
	}

	private healthOf(key: string): RouterHealth | undefined {
		const state = this.options.peer(key);
		if (!state) return undefined;
		const direct = state.path !== undefined;
		const wg = this.options.wgOf(key);
		if (direct) this.lost.delete(key);
		return routerHealthOf({
			online: state.remote.connected,
			direct,
			relayed: this.options.relayEndpointOf(key) !== undefined,
			rttMs: state.probe?.watch.rttMs ?? state.path?.rttMs,
			rxBytes: wg?.rxBytes,
			lostRx: this.lost.has(key) ? (this.lost.get(key) ?? 0) : undefined,
			name: state.remote.name,
		});
	}

	/**
	 * What must stay off the tunnel while the default route is ours: the
	 * control plane and every peer's WireGuard endpoint (only IPv4 literals and
	 * resolved names; a relay bridge on loopback needs nothing).
	 */
	private bypassAddresses(output: SelectionOutput): string[] {
		if (!output.kernelRoutes.includes("0.0.0.0/0")) return [];
		const addresses = new Set<string>();
		for (const ips of this.resolved.values()) for (const ip of ips) addresses.add(ip);
		for (const state of this.options.peers()) {
			if (state.path) addresses.add(state.path.remote.address);
			const endpoint = this.options.wgOf(state.key)?.endpoint;
			const ip = endpoint?.replace(/:\d+$/, "");
			if (ip) addresses.add(ip);
		}
		return [...addresses].filter((ip) => IPV4.test(ip) && !ip.startsWith("127.")).sort();
	}

	private resolveControlPlane(map: NetworkMap): void {
		const hosts = new Set<string>(this.options.host.controlPlaneHosts);
		const urlHost = (url: string) => {
			try {
				return new URL(url).hostname;
			} catch {
				return undefined;
			}
		};
		const signal = map.signal?.url ? urlHost(map.signal.url) : undefined;
		if (signal) hosts.add(signal);
		for (const url of map.relay?.urls ?? []) {
			const h = urlHost(url);
			if (h) hosts.add(h);
		}
		for (const stun of map.stunServers) {
			// "stun:host:port" (or turn:); the host is what is between.
			const h = /^[a-z]+:([^:?]+)/.exec(stun.uri)?.[1];
			if (h) hosts.add(h);
		}
		for (const host of hosts) {
			if (this.resolved.has(host)) continue;
			if (IPV4.test(host)) {
				this.resolved.set(host, [host]);
				continue;
			}
			this.resolved.set(host, []);
			this.options.host.resolve(host).then(
				(ips) => {
					this.resolved.set(host, ips);
					this.evaluate();
				},
				(err: unknown) =>
					this.options.logger.warn(
						{ host, error: String(err) },
						"could not resolve a control host",
					),
			);
		}
	}

	private applyKernel(wanted: WantedKernelState): void {
		const key = JSON.stringify(wanted);
		if (key === this.applied) return;
		// After a failure, the next attempt waits a little (the tick would retry every 200 ms).
		if (this.now() < this.retryAt) return;
		this.applied = key;
		if (this.pendingKernel) return;
		this.pendingKernel = true;
		this.applying = this.applying.then(async () => {
			this.pendingKernel = false;
			if (this.stopped) return;
			const current = JSON.parse(this.applied) as WantedKernelState;
			try {
				await this.options.host.kernel.apply(current);
				this.installed = new Set(current.routes);
				this.error = "";
				this.retryAt = 0;
			} catch (err) {
				const error = err instanceof Error ? err.message.split("\n")[0]! : String(err);
				// One line per new error, not one per retry.
				if (error !== this.error)
					this.options.logger.error({ error }, "kernel routes update failed");
				this.error = error;
				this.applied = "";
				this.retryAt = this.now() + KERNEL_RETRY_MS;
			}
		});
	}

	/** `starling exit-node use NAME` / `off`: refuses a name no exit route of the map carries. */
	selectExitNode(choice: ExitNodeChoice): void {
		if (
			choice.mode === "use" &&
			!exitNodeExists(this.routes, choice.name, (key) => this.options.peer(key)?.remote.name)
		) {
			const known = this.exitNodeNames();
			throw new UnknownExitNodeError(
				`no exit node named '${choice.name}'${known.length > 0 ? ` (offered: ${known.join(", ")})` : " (this peer is offered none)"}`,
			);
		}
		this.options.host.exitNode.save(choice);
		this.exitChoice = choice;
		this.evaluate();
	}

	exitNode(): ExitNodeChoice {
		return this.exitChoice;
	}

	private exitNodeNames(): string[] {
		const names = new Set<string>();
		for (const r of this.routes) {
			if (r.network !== "0.0.0.0/0") continue;
			const name = this.options.peer(r.routerKey)?.remote.name;
			if (name) names.add(name);
		}
		return [...names].sort();
	}

	/** Every network this peer receives, with the router in use and why. */
	status(): ClientRouteStatus[] {
		return (this.output?.networks ?? []).map((n) => ({
			...n,
			installed: this.installed.has(n.network) && n.routerKey !== undefined,
		}));
	}

	/** The last kernel error, one line ("" when fine). */
	lastError(): string {
		return this.error;
	}

	settled(): Promise<void> {
		return this.applying;
	}

	async stop(): Promise<void> {
		this.stopped = true;
		if (this.timer) clearInterval(this.timer);
		await this.applying;
	}
}

export class UnknownExitNodeError extends Error {
	override name = "UnknownExitNodeError";
}

const IPV4 = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/** A network's status as the daemon API carries it (proto RouteStatus). */
export function toRouteStatus(route: ClientRouteStatus): RouteStatus {
	return {
		networkId: route.networkId,
		network: route.network,
		exitNode: route.exitNode,
		router: route.routerName,
		routerKey: route.routerKey ?? "",
		metric: route.metric,
		installed: route.installed,
		reason: route.reason,
		description: route.description,
		routers: route.routers.map((r) => ({
			name: r.name,
			key: r.key,
			metric: r.metric,
			reachable: r.reachable,
			direct: r.direct,
		})),
	};
}

/** The exit node choice as `starling routes` prints it. */
export function exitNodeText(choice: ExitNodeChoice): string {
	return choice.mode === "use" ? `use:${choice.name}` : choice.mode;
}
