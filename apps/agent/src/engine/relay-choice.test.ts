import { encodeKey, generateKeyPair } from "@starling/crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { chooseRelay, rankRelaysForPair, relaysToHold } from "./relay-choice.js";

const url = fc.integer({ min: 1, max: 40 }).map((n) => `wss://relay-${n}.example:443`);
const urls = fc.uniqueArray(url, { minLength: 1, maxLength: 6 });
const key = fc
	.uint8Array({ minLength: 32, maxLength: 32 })
	.map((b) => Buffer.from(b).toString("base64"));

describe("rankRelaysForPair", () => {
	it("is the same from both sides and for any order of the URLs", () => {
		fc.assert(
			fc.property(urls, key, key, fc.infiniteStream(fc.nat()), (list, a, b) => {
				const ranking = rankRelaysForPair(list, a, b);
				expect(rankRelaysForPair(list, b, a)).toEqual(ranking);
				expect(rankRelaysForPair([...list].reverse(), a, b)).toEqual(ranking);
				expect([...ranking].sort()).toEqual([...list].sort());
			}),
		);
	});

	it("spreads pairs over the relays (each of 3 relays first for 20-47% of 300 pairs)", () => {
		const relays = ["wss://r1:443", "wss://r2:443", "wss://r3:443"];
		const keys = Array.from({ length: 25 }, () => encodeKey(generateKeyPair().publicKey));
		const first = new Map<string, number>();
		let pairs = 0;
		for (let i = 0; i < keys.length; i++)
			for (let j = i + 1; j < keys.length; j++) {
				const top = rankRelaysForPair(relays, keys[i]!, keys[j]!)[0]!;
				first.set(top, (first.get(top) ?? 0) + 1);
				pairs++;
			}
		for (const r of relays) {
			const share = (first.get(r) ?? 0) / pairs;
			expect(share, r).toBeGreaterThan(0.2);
			expect(share, r).toBeLessThan(0.47);
		}
	});

	it("drops duplicate URLs", () => {
		expect(rankRelaysForPair(["ws://a", "ws://a"], "x", "y")).toEqual(["ws://a"]);
		expect(rankRelaysForPair([], "x", "y")).toEqual([]);
	});
});

describe("chooseRelay and relaysToHold", () => {
	it("takes the first relay not down, and holds the down ones ranked before it", () => {
		const ranking = ["r1", "r2", "r3"];
		const down = new Set(["r1"]);
		expect(chooseRelay(ranking, (u) => down.has(u))).toBe("r2");
		expect(relaysToHold(ranking, "r2")).toEqual(["r1", "r2"]);
		expect(chooseRelay(ranking, () => false)).toBe("r1");
		expect(relaysToHold(ranking, "r1")).toEqual(["r1"]);
	});

	it("stays on the first when all are down, and has nothing for no relays", () => {
		expect(chooseRelay(["r1", "r2"], () => true)).toBe("r1");
		expect(chooseRelay([], () => false)).toBeUndefined();
		expect(relaysToHold([], undefined)).toEqual([]);
	});

	it("two sides with the same view of which relays are down always choose the same", () => {
		fc.assert(
			fc.property(urls, key, key, fc.func(fc.boolean()), (list, a, b, isDown) => {
				expect(chooseRelay(rankRelaysForPair(list, a, b), isDown)).toBe(
					chooseRelay(rankRelaysForPair(list, b, a), isDown),
				);
			}),
		);
	});
});
