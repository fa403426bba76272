import { describe, expect, it } from "vitest";
import type { Runner, RunOptions } from "../system/exec.js";
import {
	type PortRewriteEntry,
	PortRewriter,
	parsePortRewriteCounters,
	renderPortRewriteRemoval,
	renderPortRewriteRules,
} from "./port-rewrite.js";

const peerA: PortRewriteEntry = {
	peerKey: "AAAA+/aaaa=",
	localPort: 40001,
	remoteAddress: "198.18.0.3",
	remotePort: 50001,
};
const peerB: PortRewriteEntry = {
	peerKey: "BBBB+/bbbb=",
	localPort: 40002,
	remoteAddress: "198.19.0.7",
	remotePort: 61000,
};

describe("renderPortRewriteRules", () => {
	it("writes one output and one learning prerouting rule per peer, keeping the learned map", () => {
		expect(renderPortRewriteRules(51820, [peerB, peerA])).toBe(
			[
				"table inet starling-paths {",
				"\tmap learned {",
				"\t\ttype ipv4_addr . inet_service : inet_service",
				"\t\tflags dynamic, timeout",
				"\t\ttimeout 90s",
				"\t}",
				"\tchain output {",
				"\t\ttype filter hook output priority raw; policy accept;",
				"\t}",
				"\tchain prerouting {",
				"\t\ttype filter hook prerouting priority raw; policy accept;",
				"\t}",
				"}",
				"flush chain inet starling-paths output",
				"flush chain inet starling-paths prerouting",
				"table inet starling-paths {",
				"\tchain output {",
				'\t\tip daddr 198.18.0.3 udp dport 50001 udp sport 51820 counter udp sport set 40001 notrack comment "AAAA+/aaaa="',
				'\t\tip daddr 198.19.0.7 udp dport 61000 udp sport 51820 counter udp sport set 40002 notrack comment "BBBB+/bbbb="',
				'\t\tudp sport 51820 udp sport set ip daddr . udp dport map @learned notrack comment "learned"',
				"\t}",
				"\tchain prerouting {",
				'\t\tudp dport 40001 @th,96,32 != 0x2112a442 update @learned { ip saddr . udp sport : 40001 } counter udp dport set 51820 notrack comment "AAAA+/aaaa="',
				'\t\tudp dport 40002 @th,96,32 != 0x2112a442 update @learned { ip saddr . udp sport : 40002 } counter udp dport set 51820 notrack comment "BBBB+/bbbb="',
				"\t}",
				"}",
				"",
			].join("\n"),
		);
	});

	it("refuses two peers on the same ICE port", () => {
		expect(() => renderPortRewriteRules(51820, [peerA, { ...peerB, localPort: 40001 }])).toThrow(
			/both have local port 40001/,
		);
	});

	it("lets STUN (magic cookie at payload offset 4) through to the ICE socket, only inbound", () => {
		const lines = renderPortRewriteRules(51820, [peerA]).split("\n");
		const inbound = lines.filter((line) => line.includes("udp dport set"));
		const outbound = lines.filter((line) => line.includes("udp sport set"));
		expect(inbound).toHaveLength(1);
		expect(inbound[0]).toContain("@th,96,32 != 0x2112a442");
		expect(outbound[0]).not.toContain("@th");
	});

	it("renders the same set the same way whatever the order", () => {
		expect(renderPortRewriteRules(51820, [peerA, peerB])).toBe(
			renderPortRewriteRules(51820, [peerB, peerA]),
		);
	});

	it("renders an empty table with its chains when there are no peers", () => {
		const script = renderPortRewriteRules(51820, [], "starling-test");
		expect(script).toContain("table inet starling-test {");
		expect(script).not.toContain("notrack");
	});

	it("never names another table", () => {
		const script = renderPortRewriteRules(51820, [peerA], "starling-x");
		const tables = [...script.matchAll(/table inet (\S+)/g)].map((m) => m[1]);
		expect(new Set(tables)).toEqual(new Set(["starling-x"]));
		expect(script).not.toMatch(/flush ruleset|table ip |table ip6 /);
	});

	it("refuses entries that would inject text or mean nothing", () => {
		const bad: Partial<PortRewriteEntry>[] = [
			{ peerKey: 'x" accept; #' },
			{ peerKey: "a\nb" },
			{ peerKey: "" },
			{ remoteAddress: "fd00::1" },
			{ remoteAddress: "198.18.0.300" },
			{ remoteAddress: "198.18.0.3; drop" },
			{ localPort: 0 },
			{ localPort: 70000 },
			{ remotePort: 1.5 },
			{ localPort: 51820 },
		];
		for (const change of bad) {
			expect(() => renderPortRewriteRules(51820, [{ ...peerA, ...change }])).toThrow();
		}
		expect(() => renderPortRewriteRules(0, [peerA])).toThrow();
		expect(() => renderPortRewriteRules(51820, [peerA], "bad name")).toThrow();
	});

	it("refuses two peers on the same remote endpoint", () => {
		expect(() =>
			renderPortRewriteRules(51820, [
				peerA,
				{ ...peerB, remoteAddress: peerA.remoteAddress, remotePort: peerA.remotePort },
			]),
		).toThrow(/both have remote endpoint/);
	});
});

describe("renderPortRewriteRemoval", () => {
	it("deletes only our table, and works when it is absent", () => {
		expect(renderPortRewriteRemoval("starling-paths")).toBe(
			"table inet starling-paths\ndelete table inet starling-paths\n",
		);
	});
});

describe("parsePortRewriteCounters", () => {
	it("sums counters per peer and direction from nft -j output", () => {
		const rule = (chain: string, comment: string | undefined, packets: number, bytes: number) => ({
			rule: {
				family: "inet",
				table: "starling-paths",
				chain,
				...(comment === undefined ? {} : { comment }),
				expr: [{ match: {} }, { counter: { packets, bytes } }, { notrack: null }],
			},
		});
		const json = JSON.stringify({
			nftables: [
				{ metainfo: { version: "1.0.6" } },
				{ table: { family: "inet", name: "starling-paths" } },
				rule("output", "peer-a", 5, 500),
				rule("prerouting", "peer-a", 4, 400),
				rule("output", "peer-b", 1, 100),
				rule("output", undefined, 9, 900),
			],
		});
		expect(parsePortRewriteCounters(json)).toEqual(
			new Map([
				[
					"peer-a",
					{ outgoingPackets: 5, outgoingBytes: 500, incomingPackets: 4, incomingBytes: 400 },
				],
				[
					"peer-b",
					{ outgoingPackets: 1, outgoingBytes: 100, incomingPackets: 0, incomingBytes: 0 },
				],
			]),
		);
	});
});

describe("PortRewriter", () => {
	function recordingRunner() {
		const calls: { command: string; args: readonly string[]; input?: string }[] = [];
		const runner: Runner = async (command, args, options: RunOptions = {}) => {
			calls.push({
				command,
				args,
				...(options.input === undefined ? {} : { input: options.input }),
			});
			return { stdout: "", stderr: "", exitCode: 0 };
		};
		return { calls, runner };
	}

	it("applies the current entries with one nft -f and clears by deleting the table", async () => {
		const { calls, runner } = recordingRunner();
		const rewriter = new PortRewriter(runner, { wgPort: 51820, tableName: "starling-t" });
		rewriter.set(peerA.peerKey, peerA);
		rewriter.set(peerB.peerKey, peerB);
		rewriter.remove(peerB.peerKey);
		await rewriter.apply();
		await rewriter.clear();
		expect(calls).toEqual([
			{
				command: "nft",
				args: ["-f", "-"],
				input: renderPortRewriteRules(51820, [peerA], "starling-t"),
			},
			{ command: "nft", args: ["-f", "-"], input: renderPortRewriteRemoval("starling-t") },
		]);
	});

	it("takes the peer key from the first argument", () => {
		const { runner } = recordingRunner();
		const rewriter = new PortRewriter(runner, { wgPort: 51820 });
		const { peerKey: _ignored, ...withoutKey } = peerA;
		rewriter.set("KEY", withoutKey);
		expect(rewriter.list()).toEqual([{ ...withoutKey, peerKey: "KEY" }]);
	});

	it("drops a stale peer whose remote endpoint another peer now has", () => {
		const { runner } = recordingRunner();
		const rewriter = new PortRewriter(runner, { wgPort: 51820 });
		rewriter.set(peerA.peerKey, peerA);
		rewriter.set(peerB.peerKey, {
			...peerB,
			remoteAddress: peerA.remoteAddress,
			remotePort: peerA.remotePort,
		});
		expect(rewriter.list().map((e) => e.peerKey)).toEqual([peerB.peerKey]);
	});

	it("rejects a bad entry at set(), not at the next apply()", () => {
		const { runner } = recordingRunner();
		const rewriter = new PortRewriter(runner, { wgPort: 51820 });
		expect(() =>
			rewriter.set("k", { ...peerA, remoteAddress: "100.64.0.1; flush ruleset" }),
		).toThrow();
		expect(rewriter.list()).toEqual([]);
	});

	it("runs applies one at a time, and keeps going after a failure", async () => {
		const order: string[] = [];
		let running = 0;
		let failNext = true;
		const runner: Runner = async (_command, _args, options = {}) => {
			running += 1;
			expect(running).toBe(1);
			await new Promise((resolve) => setTimeout(resolve, 5));
			running -= 1;
			order.push(options.input?.includes("40001") ? "with-a" : "empty");
			if (failNext) {
				failNext = false;
				throw new Error("nft: boom");
			}
			return { stdout: "", stderr: "", exitCode: 0 };
		};
		const rewriter = new PortRewriter(runner, { wgPort: 51820 });
		const first = rewriter.apply();
		rewriter.set(peerA.peerKey, peerA);
		const second = rewriter.apply();
		await expect(first).rejects.toThrow("boom");
		await second;
		expect(order).toEqual(["empty", "with-a"]);
	});
});
