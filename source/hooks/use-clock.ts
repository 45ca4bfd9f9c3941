import {useEffect, useState} from 'react';

/**
 * The dashboard's single clock: `now()` sampled once a second, so uptimes and countdowns move
 * without anything else changing. `intervalMs` 0 samples once (tests pass a fixed `now`).
 */
export function useClock(now: () => number, intervalMs = 1000): number {
	const [time, setTime] = useState(now);
	useEffect(() => {
		setTime(now());
		if (intervalMs <= 0) return;
		const timer = setInterval(() => {
			setTime(now());
		}, intervalMs);
		return () => {
			clearInterval(timer);
		};
	}, [now, intervalMs]);
	return time;
}
