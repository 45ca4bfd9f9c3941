import {useEffect, useReducer, useRef} from 'react';

/**
 * The dashboard's clock: `now()` read at each render, so uptimes and countdowns are never behind
 * what the store says. A timer redraws once a second only when nothing else did (a GPU sample
 * already redraws every second): an idle dashboard draws once a second, not twice.
 * `intervalMs` 0 never redraws by itself: the frame gate's beat does it (hooks/use-frame-store.ts),
 * or tests pass a fixed `now`.
 */
export function useClock(now: () => number, intervalMs = 1000): number {
	const [, tick] = useReducer((count: number) => count + 1, 0);
	const lastDrawn = useRef(0);
	lastDrawn.current = Date.now();
	useEffect(() => {
		if (intervalMs <= 0) return;
		const timer = setInterval(() => {
			if (Date.now() - lastDrawn.current >= intervalMs * 0.9) tick();
		}, intervalMs);
		return () => {
			clearInterval(timer);
		};
	}, [intervalMs]);
	return now();
}
