/** A value derived from an account's state, with the revision of the state it was derived from. */
export interface Revisioned<V> {
	revision: number;
	value: V;
}

export interface RevisionCacheOptions<V> {
	/** Most total weight kept; least recently used entries go first. */
	maxWeight: number;
	/** The weight of a value (e.g. how many peers a listing holds); an entry weighs at least 1. */
	weigh: (value: V) => number;
}

interface Entry<V> {
	revision: number;
	value: V;
	weight: number;
}

/**
 * Values derived from an account's stored state (a listing, access counts),
 * kept per account while the account's revision (Store.getAccountRevision)
 * stays where it was. A caller reads the current revision, then asks for the
 * value at exactly that revision: a value built at any other revision is
 * never served, whoever wrote in between (this instance or another on the
 * same database). Callers asking for one revision while it is being built
 * share that build. Pure: no clock, no I/O but the build it is handed.
 */
export class RevisionCache<V> {
	// A Map iterates in insertion order: re-inserting on use keeps it LRU first.
	private readonly entries = new Map<string, Entry<V>>();
	private readonly building = new Map<string, { revision: number; done: Promise<V> }>();
	private totalWeight = 0;

	constructor(private readonly options: RevisionCacheOptions<V>) {}

	/**
	 * The value of `key` at `revision`: the cached one if it was built at that
	 * revision, else the result of `build`, which must read the revision in
	 * the same snapshot as the data (it may be later than `revision`).
	 */
	get(key: string, revision: number, build: () => Promise<Revisioned<V>>): Promise<V> {
		const hit = this.entries.get(key);
		if (hit && hit.revision === revision) {
			this.entries.delete(key);
			this.entries.set(key, hit);
			return Promise.resolve(hit.value);
		}
		const pending = this.building.get(key);
		if (pending && pending.revision === revision) return pending.done;
		const done = build().then(
			(built) => {
				if (this.building.get(key)?.done === done) this.building.delete(key);
				this.store(key, built);
				return built.value;
			},
			(err: unknown) => {
				if (this.building.get(key)?.done === done) this.building.delete(key);
				throw err;
			},
		);
		this.building.set(key, { revision, done });
		return done;
	}

	/** Forgets `key` (e.g. its account was deleted). */
	delete(key: string): void {
		const entry = this.entries.get(key);
		if (!entry) return;
		this.entries.delete(key);
		this.totalWeight -= entry.weight;
	}

	/** Total weight held (for tests and metrics). */
	weight(): number {
		return this.totalWeight;
	}

	/** Keys held, least recently used first (for tests). */
	keys(): string[] {
		return [...this.entries.keys()];
	}

	private store(key: string, built: Revisioned<V>): void {
		// An account's revision only grows: this build read an older state and
		// finished after a newer one, whose value stays (it is served to its callers).
		const held = this.entries.get(key);
		if (held && held.revision > built.revision) return;
		this.delete(key);
		// At least one, so that the number of entries is bounded too (many
		// accounts without peers would otherwise be kept for nothing).
		const weight = Math.max(1, this.options.weigh(built.value));
		// Heavier than the whole cache: served to its callers, not kept.
		if (weight > this.options.maxWeight) return;
		this.entries.set(key, { revision: built.revision, value: built.value, weight });
		this.totalWeight += weight;
		for (const [oldest, entry] of this.entries) {
			if (this.totalWeight <= this.options.maxWeight) break;
			this.entries.delete(oldest);
			this.totalWeight -= entry.weight;
		}
	}
}
