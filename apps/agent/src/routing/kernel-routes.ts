import type { Runner } from "../system/exec.js";
import { ipv4Range } from "./selection.js";

/**
 * The kernel side of the routes this peer receives: a routing table of the
 * agent's own, and policy rules that send traffic to it, never the main table.
 *
 *   PRIORITY_BYPASS       to <control plane / peer endpoint> lookup main   (only with an exit route)
 *   PRIORITY_BYPASS + 1   lookup main suppress_prefixlength 0
 *   PRIORITY_BYPASS + 2   lookup ROUTING_TABLE
 *
 * The middle rule lets every route of the main table except its default win
 * over ours (the machine's own LANs and more specific routes, the overlay's
 * connected prefix), so our table only adds: routed networks nobody else
 * routes, and the default route when an exit node is in use. The first rule
 * keeps what the agent itself talks to (management, signal, relays, STUN,
 * every peer's WireGuard endpoint) on the machine's default route when the
 * exit route would take it: the daemon's sockets are plain Node sockets that
 * cannot carry an fwmark, so the exclusion is by destination address.
 *
 * Table and priorities are fixed numbers, so removing everything needs no
 * record of what was added: `clear()` flushes the table and deletes the rules
 * at those priorities (after a SIGKILL, on the next start, `down` or uninstall).
 */
export const ROUTING_TABLE = 21_332;
export const PRIORITY_BYPASS = 21_330;
const _PRIORITY_SUPPRESS = PRIORITY_BYPASS + 1;
const _PRIORITY_TABLE = PRIORITY_BYPASS + 2;

export interface KernelRoutesOptions {
	interfaceName: string;
	table?: number;
	/** The first of three consecutive rule priorities. */
	priority?: number;
}

export interface WantedKernelState {
	/** IPv4 prefixes routed into the overlay interface (may include 0.0.0.0/0). */
	routes: readonly string[];
	/**
	 * IPv4 addresses kept on the main table while the default route is ours:
	 * the control plane and the peers' WireGuard endpoints.
	 */
	bypass: readonly string[];
}

interface CurrentKernelState {
	routes: Set<string>;
	bypass: Set<string>;
	suppress: boolean;
	lookup: boolean;
}

export class KernelRoutes {
	readonly table: number;
	private readonly priority: number;

	constructor(
		private readonly runner: Runner,
		private readonly options: KernelRoutesOptions,
	) {
		this.table = options.table ?? ROUTING_TABLE;
		this.priority = options.priority ?? PRIORITY_BYPASS;
	}

	/** Makes the table and rules what `wanted` says, touching only what differs. */
	async apply(wanted: WantedKernelState): Promise<void> {
		const current = await this.read();
		const routes = new Set(wanted.routes);
		const exit = routes.has("0.0.0.0/0");
		const bypass = new Set(exit ? wanted.bypass.map(hostPrefix) : []);
		const any = routes.size > 0;
		const commands: string[] = [];
		const t = String(this.table);
		const p = this.priority;
		// Bypass rules before the default route goes in, and the default route
		// out before they go: the control plane never takes the tunnel.
		for (const dst of bypass)
			if (!current.bypass.has(dst)) commands.push(`rule add priority ${p} to ${dst} lookup main`);
		if (any && !current.suppress)
			commands.push(`rule add priority ${p + 1} lookup main suppress_prefixlength 0`);
		for (const prefix of [...current.routes].filter((r) => !routes.has(r)).sort(defaultLast))
			commands.push(`route del ${prefix} dev ${this.options.interfaceName} table ${t}`);
		for (const prefix of [...routes].filter((r) => !current.routes.has(r)).sort(defaultLast))
			commands.push(`route replace ${prefix} dev ${this.options.interfaceName} table ${t}`);
		if (any && !current.lookup) commands.push(`rule add priority ${p + 2} lookup ${t}`);
		if (!any && current.lookup) commands.push(`rule del priority ${p + 2} lookup ${t}`);
		if (!any && current.suppress)
			commands.push(`rule del priority ${p + 1} lookup main suppress_prefixlength 0`);
		for (const dst of current.bypass)
			if (!bypass.has(dst)) commands.push(`rule del priority ${p} to ${dst} lookup main`);
		if (commands.length === 0) return;
		await this.runner("ip", ["-4", "-batch", "-"], { input: `${commands.join("\n")}\n` });
	}

	/** Removes the table's routes and every rule at our priorities, whoever added them. */
	async clear(): Promise<void> {
		await this.runner("ip", ["-4", "route", "flush", "table", String(this.table)], {
			allowFailure: true,
		});
		const rules = await this.runner("ip", ["-4", "rule", "show"], { allowFailure: true });
		const ours = parseRules(rules.stdout).filter(
			(r) => r.priority >= this.priority && r.priority <= this.priority + 2,
		);
		// `rule del priority N` deletes one rule at N per line.
		const commands = ours.map((r) => `rule del priority ${r.priority}`);
		if (commands.length > 0)
			await this.runner("ip", ["-4", "-force", "-batch", "-"], {
				input: `${commands.join("\n")}\n`,
				allowFailure: true,
			});
	}

	/** What is installed now: our table's routes and our rules. */
	async read(): Promise<CurrentKernelState> {
		const [routes, rules] = await Promise.all([
			this.runner("ip", ["-4", "route", "show", "table", String(this.table)], {
				allowFailure: true,
			}),
			this.runner("ip", ["-4", "rule", "show"]),
		]);
		// A table that never held a route does not exist: that is an empty one.
		if (routes.exitCode !== 0 && !/does not exist/.test(routes.stderr))
			throw new Error(`ip -4 route show table ${this.table}: ${routes.stderr.split("\n")[0]}`);
		const current: CurrentKernelState = {
			routes: new Set(parseRoutePrefixes(routes.stdout)),
			bypass: new Set(),
			suppress: false,
			lookup: false,
		};
		for (const rule of parseRules(rules.stdout)) {
			if (rule.priority === this.priority && rule.to) current.bypass.add(hostPrefix(rule.to));
			if (rule.priority === this.priority + 1) current.suppress = true;
			if (rule.priority === this.priority + 2) current.lookup = true;
		}
		return current;
	}
}

/** The default route is removed last and added last (after the bypass rules). */
function defaultLast(a: string, b: string): number {
	return (a === "0.0.0.0/0" ? 1 : 0) - (b === "0.0.0.0/0" ? 1 : 0) || (a < b ? -1 : a > b ? 1 : 0);
}

function hostPrefix(address: string): string {
	return address.includes("/") ? address : `${address}/32`;
}

/** Destinations of `ip -4 route show table N` lines ("default" is 0.0.0.0/0; a bare address is /32). */
export function parseRoutePrefixes(text: string): string[] {
	const prefixes: string[] = [];
	for (const line of text.split("\n")) {
		const first = line.trim().split(/\s+/)[0];
		if (!first) continue;
		if (first === "default") prefixes.push("0.0.0.0/0");
		else if (/^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(first)) prefixes.push(hostPrefix(first));
	}
	return prefixes;
}

/** `ip -4 rule show` lines: "21330:\tfrom all to 198.18.0.1 lookup main". */
export function parseRules(text: string): { priority: number; to: string | undefined }[] {
	const rules: { priority: number; to: string | undefined }[] = [];
	for (const line of text.split("\n")) {
		const match = /^(\d+):\s+(.*)$/.exec(line.trim());
		if (!match) continue;
		const to = /\bto (\S+)/.exec(match[2]!)?.[1];
		rules.push({ priority: Number(match[1]), to });
	}
	return rules;
}

/**
 * The IPv4 networks this machine is directly attached to (its interfaces'
 * prefixes), the overlay interface and loopback left out: routes into them
 * are not installed.
 */
export async function localNetworks(runner: Runner, overlayInterface: string): Promise<string[]> {
	const out = await runner("ip", ["-4", "-o", "addr", "show"]);
	return parseLocalNetworks(out.stdout, overlayInterface);
}

export function parseLocalNetworks(text: string, overlayInterface: string): string[] {
	const networks = new Set<string>();
	for (const line of text.split("\n")) {
		const match = /^\d+:\s+(\S+)\s+inet\s+(\d+\.\d+\.\d+\.\d+\/\d+)/.exec(line.trim());
		if (!match) continue;
		const name = match[1]!.split("@")[0];
		const cidr = match[2];
		if (name === overlayInterface || name === "lo" || /\bscope host\b/.test(line)) continue;
		const range = ipv4Range(cidr!);
		if (!range) continue;
		networks.add(`${intToIpv4(range.start)}/${cidr!.split("/")[1]}`);
	}
	return [...networks].sort();
}

function intToIpv4(value: number): string {
	return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}
