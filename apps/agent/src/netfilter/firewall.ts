/**
 * The inbound firewall on the overlay interface: an nftables table of our own
 * (family inet, default "starling-firewall") that judges only packets arriving
 * on the overlay interface. Everything else on the machine is left alone.
 *
 *   chain input (hook input, priority filter, policy accept):
 *     iifname "<overlay>" jump from-overlay
 *   chain from-overlay:
 *     ct state invalid drop
 *     ct state related accept                       ICMP errors and the like
 *     ct direction reply ct state established accept  replies to our own connections
 *     ip saddr { sources } <protocol / ports> accept  one line per distinct protocol+ports
 *     counter drop
 *
 * Connections a peer opens to us are judged by the rules on every packet, not
 * only the first: "ct state established accept" for them would keep a
 * connection alive after the policy that allowed it is gone. Replies to
 * connections we opened (outbound is unrestricted) pass by conntrack.
 *
 * Rules with the same protocol and ports share one line with an anonymous set
 * of sources, so a policy from a group of a thousand peers is one set lookup,
 * not a thousand rules. Every update replaces the whole table in one `nft -f`
 * transaction: a packet sees the old rule set or the new one, never none.
 *
 * IPv4 only, like the overlay: IPv6 packets from the overlay are dropped.
 */

import type { FirewallRule, NetworkMap, PortRange } from "@starling/proto";
import type { Runner } from "../system/exec.js";

export const DEFAULT_FIREWALL_TABLE = "starling-firewall";
const OVERLAY_CHAIN = "from-overlay";

const TABLE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
/** Linux interface names (IFNAMSIZ 15), the characters the agent allows. `*` would be an nft wildcard. */
const INTERFACE_NAME = /^[A-Za-z0-9_=+.-]{1,15}$/;
const OCTET = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const IPV4_CIDR = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}(/(3[0-2]|[12]?\\d))?$`);

export type FirewallProtocol = "all" | "tcp" | "udp" | "icmp";
const PROTOCOLS: readonly FirewallProtocol[] = ["all", "tcp", "udp", "icmp"];

/** Allows all inbound overlay traffic: what the agent enforces when management sends no policies. */
export const ALLOW_ALL_INBOUND: readonly FirewallRule[] = Object.freeze([
	{ source: "0.0.0.0/0", protocol: "all", ports: [], policyId: "" },
]);

/** A validated rule in canonical form. */
export interface CanonicalRule {
	/** Network address as an unsigned 32-bit number, and the prefix length. */
	address: number;
	prefix: number;
	protocol: FirewallProtocol;
	/** Sorted, disjoint, non-adjacent; empty = every port (tcp/udp) or no ports (all/icmp). */
	ports: { start: number; end: number }[];
}

export function checkTableName(tableName: string): void {
	if (!TABLE_NAME.test(tableName))
		throw new Error(`bad nftables table name ${JSON.stringify(tableName)}`);
}

export function checkInterfaceName(name: string): void {
	if (!INTERFACE_NAME.test(name)) {
		throw new Error(`bad interface name ${JSON.stringify(name)} (1-15 letters, digits, _=+.-)`);
	}
}

function isPort(n: unknown): n is number {
	return typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 65_535;
}

/** Sorts and merges overlapping or adjacent ranges. */
function mergeRanges(ranges: { start: number; end: number }[]): { start: number; end: number }[] {
	const sorted = [...ranges].sort((a, b) => a.start - b.start || a.end - b.end);
	const out: { start: number; end: number }[] = [];
	for (const r of sorted) {
		const last = out[out.length - 1];
		if (last && r.start <= last.end + 1) last.end = Math.max(last.end, r.end);
		else out.push({ start: r.start, end: r.end });
	}
	return out;
}

/**
 * Checks one rule and returns its canonical form; throws with a readable
 * reason when anything in it could not be written into a rule safely or
 * means nothing: a source that is not an IPv4 address or prefix (host bits
 * must be zero), a protocol other than all/tcp/udp/icmp, a port outside
 * 1-65535 or a range whose start is after its end, ports on all/icmp.
 */
export function validateFirewallRule(rule: FirewallRule): CanonicalRule {
	if (typeof rule !== "object" || rule === null)
		throw new Error("a firewall rule must be an object");
	const source: unknown = rule.source;
	const m = typeof source === "string" ? IPV4_CIDR.exec(source) : null;
	if (!m) throw new Error(`source ${JSON.stringify(source)} is not an IPv4 address or prefix`);
	const prefix = m[6] === undefined ? 32 : Number(m[6]);
	const address =
		((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
	const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
	if ((address & ~mask) >>> 0 !== 0) {
		throw new Error(
			`source ${source} has host bits set (the network is ${formatPrefix(address & mask, prefix)})`,
		);
	}
	const protocol: unknown = rule.protocol;
	if (typeof protocol !== "string" || !(PROTOCOLS as readonly string[]).includes(protocol)) {
		throw new Error(`protocol ${JSON.stringify(protocol)} is not one of ${PROTOCOLS.join(", ")}`);
	}
	const ports: unknown = rule.ports ?? [];
	if (!Array.isArray(ports)) throw new Error("ports must be a list of ranges");
	const ranges: { start: number; end: number }[] = [];
	for (const range of ports as readonly PortRange[]) {
		const start: unknown = range?.start;
		const end: unknown = range?.end;
		if (!isPort(start) || !isPort(end)) {
			throw new Error(`port range ${JSON.stringify(range)} is not within 1-65535`);
		}
		if (start > end) throw new Error(`port range ${start}-${end} ends before it starts`);
		ranges.push({ start, end });
	}
	if ((protocol === "all" || protocol === "icmp") && ranges.length > 0) {
		throw new Error(`protocol ${protocol} takes no ports`);
	}
	return {
		address: address >>> 0,
		prefix,
		protocol: protocol as FirewallProtocol,
		ports: mergeRanges(ranges),
	};
}

function formatAddress(address: number): string {
	return [24, 16, 8, 0].map((shift) => (address >>> shift) & 0xff).join(".");
}

export function formatPrefix(address: number, prefix: number): string {
	return prefix === 32 ? formatAddress(address >>> 0) : `${formatAddress(address >>> 0)}/${prefix}`;
}

function contains(
	outer: { address: number; prefix: number },
	inner: { address: number; prefix: number },
): boolean {
	if (outer.prefix > inner.prefix) return false;
	const mask = outer.prefix === 0 ? 0 : (0xffffffff << (32 - outer.prefix)) >>> 0;
	return (inner.address & mask) >>> 0 === outer.address;
}

/**
 * Drops prefixes inside another one, sorted by address. IPv4 prefixes are
 * nested or disjoint, so after sorting by (address, wider first) a prefix is
 * covered iff the last one kept covers it: one pass, O(n log n).
 */
export function reducePrefixes(
	prefixes: { address: number; prefix: number }[],
): { address: number; prefix: number }[] {
	const sorted = [...prefixes].sort((a, b) => a.address - b.address || a.prefix - b.prefix);
	const kept: { address: number; prefix: number }[] = [];
	for (const p of sorted) {
		const last = kept[kept.length - 1];
		if (!last || !contains(last, p)) kept.push(p);
	}
	return kept;
}

export function portsText(ports: { start: number; end: number }[]): string {
	return ports.map((p) => (p.start === p.end ? `${p.start}` : `${p.start}-${p.end}`)).join(", ");
}

/** What follows `ip saddr { … }` for one protocol+ports group. */
export function matchText(
	protocol: FirewallProtocol,
	ports: { start: number; end: number }[],
): string {
	if (protocol === "all") return "";
	if (ports.length === 0) return ` ip protocol ${protocol}`;
	return ` ${protocol} dport { ${portsText(ports)} }`;
}

/**
 * An `nft -f` script that replaces our table in one transaction (the first
 * `table` line creates it if missing so the `delete` can't fail), allowing
 * inbound overlay traffic only as `rules` say. Throws if any rule is invalid
 * (see validateFirewallRule); the Firewall class drops invalid rules instead.
 * The same rules in any order render the same text.
 */
export function renderFirewallRules(
	interfaceName: string,
	rules: readonly FirewallRule[],
	tableName: string = DEFAULT_FIREWALL_TABLE,
): string {
	checkInterfaceName(interfaceName);
	checkTableName(tableName);
	return renderCanonical(interfaceName, rules.map(validateFirewallRule), tableName);
}

/** renderFirewallRules for rules already validated (and names already checked). */
function renderCanonical(
	interfaceName: string,
	rules: readonly CanonicalRule[],
	tableName: string,
): string {
	const groups = new Map<
		string,
		{ protocol: FirewallProtocol; ports: CanonicalRule["ports"]; sources: CanonicalRule[] }
	>();
	for (const c of rules) {
		const key = `${PROTOCOLS.indexOf(c.protocol)}|${portsText(c.ports)}`;
		const group = groups.get(key) ?? { protocol: c.protocol, ports: c.ports, sources: [] };
		group.sources.push(c);
		groups.set(key, group);
	}
	const lines = [...groups.entries()]
		.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
		.map(([, g]) => {
			const sources = reducePrefixes(g.sources).map((s) => formatPrefix(s.address, s.prefix));
			return `\t\tip saddr { ${sources.join(", ")} }${matchText(g.protocol, g.ports)} accept`;
		});
	return [
		`table inet ${tableName}`,
		`delete table inet ${tableName}`,
		`table inet ${tableName} {`,
		"\tchain input {",
		"\t\ttype filter hook input priority filter; policy accept;",
		`\t\tiifname "${interfaceName}" jump ${OVERLAY_CHAIN}`,
		"\t}",
		`\tchain ${OVERLAY_CHAIN} {`,
		"\t\tct state invalid drop",
		"\t\tct state related accept",
		"\t\tct direction reply ct state established accept",
		...lines,
		"\t\tcounter drop",
		"\t}",
		"}",
		"",
	].join("\n");
}

/** An `nft -f` script that removes the table if it exists (and succeeds if it doesn't). */
export function renderFirewallRemoval(tableName: string = DEFAULT_FIREWALL_TABLE): string {
	checkTableName(tableName);
	return `table inet ${tableName}\ndelete table inet ${tableName}\n`;
}

/**
 * The inbound rules a map asks for: its firewall_rules when management says
 * they are authoritative (firewall_enforced), otherwise allow everything.
 */
export function inboundRulesFor(map: Pick<NetworkMap, "firewallRules" | "firewallEnforced">): {
	enforced: boolean;
	rules: readonly FirewallRule[];
} {
	return map.firewallEnforced === true
		? { enforced: true, rules: map.firewallRules }
		: { enforced: false, rules: ALLOW_ALL_INBOUND };
}

export interface FirewallOptions {
	/** The overlay interface whose inbound traffic is judged. */
	interfaceName: string;
	/** The nftables table (family inet) Starling owns for this; default "starling-firewall". */
	tableName?: string;
	/** Told about each rule apply() leaves out because it is invalid. */
	onInvalidRule?: (rule: FirewallRule, reason: string) => void;
}

/**
 * Writes the inbound rules to the kernel. Each apply replaces the whole table
 * in one transaction; a failed apply leaves the previous rules in place. An
 * invalid rule is left out (and reported), so it can only deny, never allow:
 * the others still apply.
 */
export class Firewall {
	readonly interfaceName: string;
	readonly tableName: string;
	/** The script last written successfully, undefined when the table is not ours (yet / any more). */
	private installed: string | undefined;
	private installedRules = 0;
	private queue: Promise<void> = Promise.resolve();

	constructor(
		private readonly runner: Runner,
		private readonly options: FirewallOptions,
	) {
		checkInterfaceName(options.interfaceName);
		this.interfaceName = options.interfaceName;
		this.tableName = options.tableName ?? DEFAULT_FIREWALL_TABLE;
		checkTableName(this.tableName);
	}

	/** Number of (valid) rules in the installed table; 0 when none is installed. */
	get ruleCount(): number {
		return this.installed === undefined ? 0 : this.installedRules;
	}

	/** Whether our table is installed (as far as this object knows). */
	get active(): boolean {
		return this.installed !== undefined;
	}

	/** Installs exactly `rules` (an empty list: nothing from the overlay gets in). No-op if unchanged. */
	apply(rules: readonly FirewallRule[]): Promise<void> {
		const valid: CanonicalRule[] = [];
		for (const rule of rules) {
			try {
				valid.push(validateFirewallRule(rule));
			} catch (err) {
				this.options.onInvalidRule?.(rule, (err as Error).message);
			}
		}
		const script = renderCanonical(this.interfaceName, valid, this.tableName);
		return this.enqueue(async () => {
			if (script === this.installed) {
				this.installedRules = valid.length;
				return;
			}
			await this.runner("nft", ["-f", "-"], { input: script });
			this.installed = script;
			this.installedRules = valid.length;
		});
	}

	/** Deletes our table (only it); succeeds when it is already gone. */
	remove(): Promise<void> {
		const script = renderFirewallRemoval(this.tableName);
		return this.enqueue(async () => {
			this.installed = undefined;
			await this.runner("nft", ["-f", "-"], { input: script });
		});
	}

	/**
	 * Whether nftables can hold this firewall here: a dry run (`nft -c`) of a
	 * table with every kind of rule. undefined when usable, else one line why.
	 */
	static async probe(runner: Runner): Promise<string | undefined> {
		const script = renderFirewallRules(
			"starling-probe",
			[
				{
					source: "100.64.0.1",
					protocol: "tcp",
					ports: [
						{ start: 22, end: 22 },
						{ start: 5000, end: 5100 },
					],
					policyId: "",
				},
				{ source: "100.64.0.0/16", protocol: "udp", ports: [], policyId: "" },
				{ source: "100.64.0.2/32", protocol: "icmp", ports: [], policyId: "" },
				{ source: "0.0.0.0/0", protocol: "all", ports: [], policyId: "" },
			],
			"starling-probe",
		);
		try {
			await runner("nft", ["-c", "-f", "-"], { input: script, timeoutMs: 10_000 });
			return undefined;
		} catch (err) {
			const message = err instanceof Error ? err.message : String(err);
			const line =
				message
					.split("\n")
					.map((l) => l.trim())
					.find(Boolean) ?? "nft failed";
			const denied =
				typeof err === "object" &&
				err !== null &&
				"permissionDenied" in err &&
				err.permissionDenied === true;
			return denied ? `${line} (needs root or CAP_NET_ADMIN)` : line;
		}
	}

	private enqueue(task: () => Promise<void>): Promise<void> {
		const next = this.queue.then(task, task);
		// Keep the chain alive after a failure; the caller still sees the rejection.
		this.queue = next.catch(() => undefined);
		return next;
	}
}
