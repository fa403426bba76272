/** Exponential backoff between reconnect attempts. */
export interface BackoffOptions {
	/** Delay before the first retry. */
	initialDelayMs: number;
	/** Ceiling for any delay. */
	maxDelayMs: number;
	/** Growth factor per failed attempt (>= 1). */
	multiplier: number;
	/**
	 * Fraction of the delay that is randomised (0 to 1): the delay is drawn
	 * from [d * (1 - jitter), d]. Spreads out many agents reconnecting after
	 * the server restarts.
	 */
	jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
	initialDelayMs: 250,
	maxDelayMs: 30_000,
	multiplier: 2,
	jitter: 0.2,
};

/** Fills in defaults and checks ranges; throws RangeError naming the bad field. */
export function resolveBackoff(partial: Partial<BackoffOptions> = {}): BackoffOptions {
	const options = { ...DEFAULT_BACKOFF, ...definedOnly(partial) };
	if (!(Number.isFinite(options.initialDelayMs) && options.initialDelayMs >= 0)) {
		throw new RangeError(`initialDelayMs must be >= 0, got ${options.initialDelayMs}`);
	}
	if (!(Number.isFinite(options.maxDelayMs) && options.maxDelayMs >= options.initialDelayMs)) {
		throw new RangeError(`maxDelayMs must be >= initialDelayMs, got ${options.maxDelayMs}`);
	}
	if (!(Number.isFinite(options.multiplier) && options.multiplier >= 1)) {
		throw new RangeError(`multiplier must be >= 1, got ${options.multiplier}`);
	}
	if (!(options.jitter >= 0 && options.jitter <= 1)) {
		throw new RangeError(`jitter must be between 0 and 1, got ${options.jitter}`);
	}
	return options;
}

/**
 * Delay before retry number `attempt` (0 for the first retry):
 * min(max, initial * multiplier^attempt), less up to `jitter` of itself.
 * `random` returns a number in [0, 1), like Math.random.
 */
export function backoffDelay(
	attempt: number,
	options: BackoffOptions,
	random: () => number = Math.random,
): number {
	const exponent = Math.max(0, Math.floor(attempt));
	const uncapped = options.initialDelayMs * options.multiplier ** exponent;
	const capped = Math.min(options.maxDelayMs, Number.isFinite(uncapped) ? uncapped : Infinity);
	const spread = capped * options.jitter * clampUnit(random());
	return Math.round(capped - spread);
}

function clampUnit(value: number): number {
	return Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 0;
}

function definedOnly(partial: Partial<BackoffOptions>): Partial<BackoffOptions> {
	const out: Partial<BackoffOptions> = {};
	for (const [name, value] of Object.entries(partial) as [keyof BackoffOptions, number][]) {
		if (value !== undefined) out[name] = value;
	}
	return out;
}
