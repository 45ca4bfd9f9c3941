/** How retries are spaced. Every field is in milliseconds except `multiplier` and `jitter`. */
export type BackoffPolicy = {
	/** Delay before the second retry (the first goes at once). */
	readonly initialMs: number;
	/** Delay before the third retry; later ones double from here. */
	readonly stepMs: number;
	readonly multiplier: number;
	readonly maxMs: number;
	/** Fraction of the delay added or removed at random (0.1 = ±10 %). */
	readonly jitter: number;
};

/** SPEC "Reconnect": at once, 0.2 s, 1 s doubling to a 20 s cap, ±10 %. */
export const defaultBackoff: BackoffPolicy = {
	initialMs: 200,
	stepMs: 1000,
	multiplier: 2,
	maxMs: 20_000,
	jitter: 0.1,
};

/** A hop that stayed ready this long starts its backoff from the beginning again. */
export const stableResetMs = 60_000;

/**
 * Delay before retry number `attempt` (1-based). The first retry goes at once because most drops
 * are one-off (a relay restart, a NAT timeout) and the user should not wait for them; later ones
 * back off so a relay that is down is not hammered, with jitter so that many clients that lost the
 * same relay do not come back in lockstep.
 */
export function nextDelay(
	attempt: number,
	policy: BackoffPolicy = defaultBackoff,
	random: () => number = Math.random,
): number {
	if (!Number.isFinite(attempt) || attempt <= 1) return 0;
	const base =
		attempt === 2
			? policy.initialMs
			: policy.stepMs * policy.multiplier ** Math.min(attempt - 3, 64);
	const capped = Math.min(base, policy.maxMs);
	const spread = capped * policy.jitter * (2 * random() - 1);
	return Math.max(0, Math.round(capped + spread));
}
