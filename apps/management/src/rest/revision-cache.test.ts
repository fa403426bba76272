import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RevisionCache, type Revisioned } from "./revision-cache.js";

const byLength = () => new RevisionCache<string[]>({ maxWeight: 10, weigh: (v) => v.length });

/** A build that counts its calls and answers `value` at `revision`. */
function counted<V>(revision: number, value: V) {
	const build = async (): Promise<Revisioned<V>> => {
		build.calls++;
		return { revision, value };
	};
	build.calls = 0;
	return build;
}

describe("RevisionCache", () => {
	it("builds once per revision and serves the cached value while the revision stays", async () => {
		const cache = byLength();
		const build = counted(1, ["a"]);
		expect(await cache.get("acc", 1, build)).toEqual(["a"]);
		expect(await cache.get("acc", 1, build)).toEqual(["a"]);
		expect(build.calls).toBe(1);
	});

	it("never serves a value built at another revision, older or newer", async () => {
		const cache = byLength();
		await cache.get("acc", 5, counted(5, ["five"]));
		const six = counted(6, ["six"]);
		expect(await cache.get("acc", 6, six)).toEqual(["six"]);
		// A caller that read revision 5 (before the write) does not get 6's value from the cache either.
		const fiveAgain = counted(5, ["five again"]);
		expect(await cache.get("acc", 5, fiveAgain)).toEqual(["five again"]);
		expect(fiveAgain.calls).toBe(1);
	});

	it("keys by account: one account's revision says nothing of another's", async () => {
		const cache = byLength();
		await cache.get("a", 1, counted(1, ["a"]));
		const b = counted(1, ["b"]);
		expect(await cache.get("b", 1, b)).toEqual(["b"]);
		expect(b.calls).toBe(1);
	});

	it("keeps the revision the build read, which may be later than the one asked for", async () => {
		const cache = byLength();
		// Asked at 3; a write landed before the build's snapshot: it read 4.
		expect(await cache.get("acc", 3, counted(4, ["four"]))).toEqual(["four"]);
		const four = counted(4, ["x"]);
		expect(await cache.get("acc", 4, four)).toEqual(["four"]);
		expect(four.calls).toBe(0);
	});

	it("shares one build between concurrent callers of the same revision", async () => {
		const cache = byLength();
		let release: (v: Revisioned<string[]>) => void = () => {};
		let calls = 0;
		const slow = () => {
			calls++;
			return new Promise<Revisioned<string[]>>((r) => {
				release = r;
			});
		};
		const first = cache.get("acc", 1, slow);
		const second = cache.get("acc", 1, slow);
		release({ revision: 1, value: ["v"] });
		expect(await first).toEqual(["v"]);
		expect(await second).toEqual(["v"]);
		expect(calls).toBe(1);
	});

	it("a slow build of an older revision finishing last does not replace the newer value", async () => {
		const cache = byLength();
		let releaseOld: (v: Revisioned<string[]>) => void = () => {};
		const old = cache.get(
			"acc",
			1,
			() =>
				new Promise<Revisioned<string[]>>((r) => {
					releaseOld = r;
				}),
		);
		expect(await cache.get("acc", 2, counted(2, ["two"]))).toEqual(["two"]);
		releaseOld({ revision: 1, value: ["one"] });
		expect(await old).toEqual(["one"]);
		const two = counted(2, ["rebuilt"]);
		expect(await cache.get("acc", 2, two)).toEqual(["two"]);
		expect(two.calls).toBe(0);
	});

	it("a failed build is not kept: the next caller builds again", async () => {
		const cache = byLength();
		await expect(
			cache.get("acc", 1, async () => {
				throw new Error("store closed");
			}),
		).rejects.toThrow("store closed");
		const build = counted(1, ["ok"]);
		expect(await cache.get("acc", 1, build)).toEqual(["ok"]);
		expect(build.calls).toBe(1);
	});

	it("evicts the least recently used accounts beyond the weight, and keeps nothing heavier than it", async () => {
		const cache = byLength();
		await cache.get("a", 1, counted(1, ["1", "2", "3", "4"]));
		await cache.get("b", 1, counted(1, ["1", "2", "3", "4"]));
		await cache.get("a", 1, counted(1, ["unused"])); // a is now the most recent
		await cache.get("c", 1, counted(1, ["1", "2", "3"]));
		expect(cache.keys()).toEqual(["a", "c"]);
		expect(cache.weight()).toBe(7);
		await cache.get("huge", 1, counted(1, Array.from({ length: 11 }, String)));
		expect(cache.keys()).toEqual(["a", "c"]);
	});

	it("bounds the number of accounts too: an empty value (an account without peers) weighs one", async () => {
		const cache = byLength();
		for (let i = 0; i < 25; i++) await cache.get(`empty-${i}`, 1, counted(1, []));
		expect(cache.keys().length).toBe(10);
		expect(cache.keys()[0]).toBe("empty-15");
	});

	it("serves exactly what the store held at the revision read, whatever the order of writes and reads", async () => {
		// Model: an account whose state is its revision; each step either writes
		// (the revision grows) or reads through the cache. Every read answers
		// the state at the revision it read, and each revision is built once.
		await fc.assert(
			fc.asyncProperty(fc.array(fc.boolean(), { maxLength: 60 }), async (steps) => {
				const cache = new RevisionCache<number>({ maxWeight: 1, weigh: () => 1 });
				let stored = 0;
				let builds = 0;
				const revisionsRead = new Set<number>();
				for (const write of steps) {
					if (write) {
						stored++;
						continue;
					}
					const revision = stored;
					revisionsRead.add(revision);
					const value = await cache.get("acc", revision, async () => {
						builds++;
						return { revision: stored, value: stored * 10 };
					});
					expect(value).toBe(revision * 10);
				}
				expect(builds).toBe(revisionsRead.size);
			}),
		);
	});
});
