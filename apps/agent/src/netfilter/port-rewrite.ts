/**
 * Per-peer stateless UDP port rewrite, so one WireGuard listen port can use a
 * different ICE-punched local port per peer.
 *
 * ICE punched a path from local port L to the peer's R:Pr (through whatever
 * NATs lie between). WireGuard keeps listening on its one port W, with the
 * peer's endpoint set to R:Pr. In our own nftables table:
 *   output:     ip daddr R udp dport Pr udp sport W  →  udp sport set L, notrack
 *   prerouting: udp dport L, not STUN  →  learn (source → L), udp dport set W, notrack
 *   output:     udp sport W, (daddr . dport) learned  →  udp sport set <learned L>, notrack
 * so on the wire the traffic uses L, exactly what the NATs have seen. The
 * rules are stateless (notrack, at raw priority, before conntrack): the
 * conntrack-based variant (SNAT/DNAT) lost races against stray [UNREPLIED]
 * entries; this one held 16 of 16 (docs/networking.md, "Many peers on one
 * WireGuard port"). A host firewall that only accepts established traffic
 * must also accept untracked packets.
 *
 * Learning: the address ICE reports is not always where the peer's packets
 * come from. libjuice sometimes names the peer's host candidate when the
 * working pair was peer-reflexive (seen in the NAT grid: a private address,
 * unreachable), and a masquerade-only NAT can re-map under the first packets.
 * So whatever reaches port L (WireGuard authenticates it, as it does on W)
 * is handed to WireGuard and its source is remembered in the `learned` map;
 * WireGuard roams its endpoint to the source of authenticated packets, and
 * the learned entry makes its replies leave from L too. Entries expire
 * unless refreshed (keepalives come every 25 s), and the map survives
 * applies, which replace only the rules.
 *
 * STUN packets (magic cookie 0x2112A442 at UDP payload offset 4; WireGuard
 * messages have their receiver index there) are left alone, so the ICE
 * session can keep port L while the peer's side finishes its checks: a
 * controlled side that hands the port over the moment it sees "connected"
 * would otherwise swallow the controlling side's nomination.
 *
 * IPv4 only for now: an IPv6 entry is refused (the rules would need `ip6`
 * matches, untested so far).
 */

import type { Runner } from "../system/exec.js";

export const DEFAULT_PORT_REWRITE_TABLE = "starling-paths";

/** Matches UDP packets that are not STUN: the 32 bits after the UDP header's 8 bytes and STUN's first 4. */
const NOT_STUN = "@th,96,32 != 0x2112a442";
/** The map of learned peer sources (address . port) to our ICE port for them. */
const LEARNED_MAP = "learned";
/** Longer than the 25 s keepalive, so a live path's entry never lapses. */
const LEARNED_TIMEOUT_S = 90;

export interface PortRewriteEntry {
	/** The peer's WireGuard public key; also the rules' comment, to find them again. */
	peerKey: string;
	/** Our ICE socket's port: the source port the peer's NAT has seen from us. */
	localPort: number;
	/** The peer's address and port as ICE selected them (its NAT's mapping). */
	remoteAddress: string;
	remotePort: number;
}

export interface PeerCounters {
	/** WireGuard packets to the peer that left from the ICE port. */
	outgoingPackets: number;
	outgoingBytes: number;
	/** Packets from the peer to the ICE port that were handed to WireGuard. */
	incomingPackets: number;
	incomingBytes: number;
}

const TABLE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
/** nft comments are at most 128 bytes; a WireGuard key is 44. No quotes or line breaks. */
const PEER_KEY = /^[A-Za-z0-9+/=_.:-]{1,100}$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function checkPort(port: number, what: string): void {
	if (!Number.isInteger(port) || port < 1 || port > 65_535) {
		throw new Error(`${what} ${port} is not a UDP port`);
	}
}

function checkTableName(tableName: string): void {
	if (!TABLE_NAME.test(tableName)) throw new Error(`bad nftables table name ${tableName}`);
}

/** Throws unless `entry` can be written into a rule safely and means something. */
export function validatePortRewriteEntry(entry: PortRewriteEntry, wgPort: number): void {
	if (!PEER_KEY.test(entry.peerKey)) {
		throw new Error(`peer key ${JSON.stringify(entry.peerKey)} can't be an nft comment`);
	}
	if (!IPV4.test(entry.remoteAddress)) {
		throw new Error(
			`remote address ${JSON.stringify(entry.remoteAddress)} is not IPv4 (only IPv4 is supported)`,
		);
	}
	checkPort(entry.localPort, "local port");
	checkPort(entry.remotePort, "remote port");
	// Rewriting W to W would turn the prerouting rule into a catch-all for that peer.
	if (entry.localPort === wgPort) {
		throw new Error(`local port ${entry.localPort} is the WireGuard port itself`);
	}
}

function endpointKey(entry: PortRewriteEntry): string {
	return `${entry.remoteAddress}:${entry.remotePort}`;
}

/**
 * An `nft -f` script that replaces the table's rules in one transaction and
 * keeps its `learned` map: the first block creates the table, map and chains
 * when missing (and changes nothing when present), the flushes empty the
 * chains, then the full rule set follows. Nothing outside the table is
 * touched. Entries are written sorted by peer key, so the same set always
 * renders the same text.
 */
export function renderPortRewriteRules(
	wgPort: number,
	entries: readonly PortRewriteEntry[],
	tableName: string = DEFAULT_PORT_REWRITE_TABLE,
): string {
	checkPort(wgPort, "WireGuard port");
	checkTableName(tableName);
	const endpoints = new Map<string, string>();
	const localPorts = new Map<number, string>();
	for (const entry of entries) {
		validatePortRewriteEntry(entry, wgPort);
		const other = endpoints.get(endpointKey(entry));
		if (other !== undefined) {
			throw new Error(
				`peers ${other} and ${entry.peerKey} both have remote endpoint ${endpointKey(entry)}`,
			);
		}
		endpoints.set(endpointKey(entry), entry.peerKey);
		const samePort = localPorts.get(entry.localPort);
		if (samePort !== undefined) {
			throw new Error(
				`peers ${samePort} and ${entry.peerKey} both have local port ${entry.localPort}`,
			);
		}
		localPorts.set(entry.localPort, entry.peerKey);
	}
	const sorted = [...entries].sort((a, b) =>
		a.peerKey < b.peerKey ? -1 : a.peerKey > b.peerKey ? 1 : 0,
	);
	const output = sorted.map(
		(e) =>
			`\t\tip daddr ${e.remoteAddress} udp dport ${e.remotePort} udp sport ${wgPort} counter udp sport set ${e.localPort} notrack comment "${e.peerKey}"`,
	);
	const prerouting = sorted.map(
		(e) =>
			`\t\tudp dport ${e.localPort} ${NOT_STUN} update @${LEARNED_MAP} { ip saddr . udp sport : ${e.localPort} } counter udp dport set ${wgPort} notrack comment "${e.peerKey}"`,
	);
	// raw priority (-300): before conntrack (-200), which is what makes notrack work.
	const hook = (name: string) => `\t\ttype filter hook ${name} priority raw; policy accept;`;
	return [
		`table inet ${tableName} {`,
		`\tmap ${LEARNED_MAP} {`,
		"\t\ttype ipv4_addr . inet_service : inet_service",
		"\t\tflags dynamic, timeout",
		`\t\ttimeout ${LEARNED_TIMEOUT_S}s`,
		"\t}",
		"\tchain output {",
		hook("output"),
		"\t}",
		"\tchain prerouting {",
		hook("prerouting"),
		"\t}",
		"}",
		`flush chain inet ${tableName} output`,
		`flush chain inet ${tableName} prerouting`,
		`table inet ${tableName} {`,
		"\tchain output {",
		...output,
		// Sources learned on an ICE port: WireGuard replies to where the peer's packets came from.
		...(sorted.length > 0
			? [
					`\t\tudp sport ${wgPort} udp sport set ip daddr . udp dport map @${LEARNED_MAP} notrack comment "learned"`,
				]
			: []),
		"\t}",
		"\tchain prerouting {",
		...prerouting,
		"\t}",
		"}",
		"",
	].join("\n");
}

/** An `nft -f` script that removes the table if it exists (and succeeds if it doesn't). */
export function renderPortRewriteRemoval(tableName: string = DEFAULT_PORT_REWRITE_TABLE): string {
	checkTableName(tableName);
	return `table inet ${tableName}\ndelete table inet ${tableName}\n`;
}

/**
 * Reads per-peer counters out of `nft -j list table inet <table>` output.
 * Rules whose comment is not a peer key (none, normally) are ignored.
 */
export function parsePortRewriteCounters(json: string): Map<string, PeerCounters> {
	const counters = new Map<string, PeerCounters>();
	const parsed: unknown = JSON.parse(json);
	const items = isRecord(parsed) && Array.isArray(parsed.nftables) ? parsed.nftables : [];
	for (const item of items) {
		if (!isRecord(item) || !isRecord(item.rule)) continue;
		const rule = item.rule;
		if (typeof rule.comment !== "string" || !Array.isArray(rule.expr)) continue;
		if (rule.comment === "learned") continue;
		const counter = rule.expr
			.map((expr) => (isRecord(expr) && isRecord(expr.counter) ? expr.counter : undefined))
			.find((c) => c !== undefined);
		if (counter === undefined) continue;
		const packets = typeof counter.packets === "number" ? counter.packets : 0;
		const bytes = typeof counter.bytes === "number" ? counter.bytes : 0;
		const peer = counters.get(rule.comment) ?? {
			outgoingPackets: 0,
			outgoingBytes: 0,
			incomingPackets: 0,
			incomingBytes: 0,
		};
		if (rule.chain === "output") {
			peer.outgoingPackets += packets;
			peer.outgoingBytes += bytes;
		} else if (rule.chain === "prerouting") {
			peer.incomingPackets += packets;
			peer.incomingBytes += bytes;
		}
		counters.set(rule.comment, peer);
	}
	return counters;
}

function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === "object" && value !== null && !Array.isArray(value);
}

export interface PortRewriterOptions {
	/** WireGuard's listen port. */
	wgPort: number;
	/** The nftables table (family inet) Starling owns for this; default "starling-paths". */
	tableName?: string;
}

/**
 * Keeps the desired per-peer entries and writes them to the kernel on apply().
 * Every apply replaces the whole table atomically, so a failed apply leaves the
 * previous rules in place and a successful one leaves exactly the current set.
 */
export class PortRewriter {
	private readonly entries = new Map<string, PortRewriteEntry>();
	private readonly wgPort: number;
	readonly tableName: string;
	/** Applies run one after another, so the last one written is the latest state. */
	private queue: Promise<void> = Promise.resolve();

	constructor(
		private readonly runner: Runner,
		options: PortRewriterOptions,
	) {
		checkPort(options.wgPort, "WireGuard port");
		this.wgPort = options.wgPort;
		this.tableName = options.tableName ?? DEFAULT_PORT_REWRITE_TABLE;
		checkTableName(this.tableName);
	}

	/**
	 * Sets (or replaces) the rewrite for one peer; takes effect on apply().
	 * Another peer's entry with the same remote endpoint or local port is
	 * dropped: one NAT mapping or ICE port belongs to one peer at a time, so
	 * that entry is stale.
	 */
	set(peerKey: string, entry: Omit<PortRewriteEntry, "peerKey"> & { peerKey?: string }): void {
		const full: PortRewriteEntry = { ...entry, peerKey };
		validatePortRewriteEntry(full, this.wgPort);
		for (const [otherKey, other] of this.entries) {
			if (
				otherKey !== peerKey &&
				(endpointKey(other) === endpointKey(full) || other.localPort === full.localPort)
			) {
				this.entries.delete(otherKey);
			}
		}
		this.entries.set(peerKey, full);
	}

	/** Drops the rewrite for one peer; takes effect on apply(). */
	remove(peerKey: string): void {
		this.entries.delete(peerKey);
	}

	/** The entries apply() would write, sorted by peer key. */
	list(): PortRewriteEntry[] {
		return [...this.entries.values()].sort((a, b) =>
			a.peerKey < b.peerKey ? -1 : a.peerKey > b.peerKey ? 1 : 0,
		);
	}

	/** Writes the current entries to the kernel (one `nft -f` transaction). */
	apply(): Promise<void> {
		const script = renderPortRewriteRules(this.wgPort, this.list(), this.tableName);
		return this.enqueue(async () => {
			await this.runner("nft", ["-f", "-"], { input: script });
		});
	}

	/** Deletes the table (all rewrites); the entries are kept for a later apply(). */
	clear(): Promise<void> {
		const script = renderPortRewriteRemoval(this.tableName);
		return this.enqueue(async () => {
			await this.runner("nft", ["-f", "-"], { input: script });
		});
	}

	/** Per-peer packet/byte counters of the installed rules (empty if the table is absent). */
	async counters(): Promise<Map<string, PeerCounters>> {
		const result = await this.runner("nft", ["-j", "list", "table", "inet", this.tableName], {
			allowFailure: true,
		});
		if (result.exitCode !== 0) return new Map();
		return parsePortRewriteCounters(result.stdout);
	}

	private enqueue(task: () => Promise<void>): Promise<void> {
		const next = this.queue.then(task, task);
		// Keep the chain alive after a failure; the caller still sees the rejection.
		this.queue = next.catch(() => undefined);
		return next;
	}
}
