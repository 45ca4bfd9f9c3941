import {describe, expect, it} from 'vitest';
import {defaultBackoff, nextDelay, stableResetMs} from '../../source/core/backoff.js';

const noJitter = () => 0.5;

describe('nextDelay', () => {
	it('retries at once, then 0.2 s, 1 s and doubles to the 20 s cap', () => {
		const delays = Array.from({length: 10}, (_, i) => nextDelay(i + 1, defaultBackoff, noJitter));
		expect(delays).toEqual([0, 200, 1000, 2000, 4000, 8000, 16_000, 20_000, 20_000, 20_000]);
	});

	it('treats attempt 0 and nonsense as "at once"', () => {
		expect(nextDelay(0)).toBe(0);
		expect(nextDelay(-3)).toBe(0);
		expect(nextDelay(Number.NaN)).toBe(0);
	});

	it('spreads by at most ±10 %', () => {
		expect(nextDelay(3, defaultBackoff, () => 0)).toBe(900);
		expect(nextDelay(3, defaultBackoff, () => 0.999_999)).toBe(1100);
		expect(nextDelay(20, defaultBackoff, () => 0)).toBe(18_000);
		expect(nextDelay(20, defaultBackoff, () => 0.999_999)).toBe(22_000);
		for (let i = 0; i < 200; i++) {
			const d = nextDelay(5);
			expect(d).toBeGreaterThanOrEqual(3600);
			expect(d).toBeLessThanOrEqual(4400);
		}
	});

	it('follows a custom policy', () => {
		const policy = {initialMs: 10, stepMs: 50, multiplier: 3, maxMs: 400, jitter: 0};
		expect([2, 3, 4, 5, 6].map((a) => nextDelay(a, policy))).toEqual([10, 50, 150, 400, 400]);
	});

	it('resets after a stable minute', () => {
		expect(stableResetMs).toBe(60_000);
	});
});
