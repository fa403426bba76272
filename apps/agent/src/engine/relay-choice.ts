// Which relay a pair of peers meets on. A relay forwards only between two
// connections it holds itself, so both sides of a pair must pick the same
// one, with nothing exchanged: each ranks the map's relay URLs by a hash of
// the URL and the pair's two WireGuard keys (rendezvous hashing). The two
// sides compute the same ranking (the keys are sorted first), different
// pairs get different rankings (so pairs spread over the relays evenly), and
// the order of the URLs in the map does not matter. Both take the first
// relay of the ranking they do not know to be down: when a relay dies, both
// see their connection to it end and move to the next one, and back when it
// returns.
import { createHash } from "node:crypto";

/** The relay URLs ordered for the pair (a, b): the same for (b, a); duplicates removed. */
export function rankRelaysForPair(urls: readonly string[], keyA: string, keyB: string): string[] {
	const [low, high] = keyA < keyB ? [keyA, keyB] : [keyB, keyA];
	const scored = [...new Set(urls)].map((url) => ({ url, score: pairScore(url, low, high) }));
	scored.sort((x, y) =>
		x.score === y.score ? (x.url < y.url ? -1 : 1) : x.score < y.score ? 1 : -1,
	);
	return scored.map((s) => s.url);
}

function pairScore(url: string, low: string, high: string): bigint {
	return createHash("sha256").update(`${url}\n${low}\n${high}`).digest().readBigUInt64BE(0);
}

/**
 * The relay to use from a ranking: the first not known to be down; the
 * first of all when every one is down (it is the one both sides retry).
 * Undefined for an empty ranking.
 */
export function chooseRelay(
	ranking: readonly string[],
	isDown: (url: string) => boolean,
): string | undefined {
	return ranking.find((url) => !isDown(url)) ?? ranking[0];
}

/**
 * The relays an agent keeps a connection to for one pair: the chosen one,
 * and every one ranked before it (known down, kept retrying so that the
 * pair moves back when it returns).
 */
export function relaysToHold(
	ranking: readonly string[],
	chosen: string | undefined,
): readonly string[] {
	if (chosen === undefined) return [];
	return ranking.slice(0, ranking.indexOf(chosen) + 1);
}
