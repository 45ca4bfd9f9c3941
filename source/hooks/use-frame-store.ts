import {useEffect, useMemo, useSyncExternalStore} from 'react';
import type {Store} from '../core/store.js';

/** What a view subscribes to: a store's snapshots, some of them held back to the next frame. */
export type FrameGate<S> = {
	readonly getSnapshot: () => S;
	readonly subscribe: (listener: () => void) => () => void;
	/** Drop the pending frame and the store subscription. */
	dispose(): void;
};

/**
 * Coalesces a store's changes into frames: a change `urgent` calls for (a key's effect, a prompt,
 * a notice) is shown at once, with everything before it; any other change (a GPU sample, a hop's
 * RTT, a log line) waits until `frameMs` after the last frame shown, so a burst of background
 * updates costs one frame a tick. `frameMs` 0 shows every change at once.
 */
export function frameGate<S, A>(
	store: Store<S, A>,
	frameMs: number,
	urgent: (shown: S, next: S) => boolean,
): FrameGate<S> {
	let shown = store.getSnapshot();
	let shownAt = Number.NEGATIVE_INFINITY;
	let timer: NodeJS.Timeout | undefined;
	let unsubscribe: (() => void) | undefined;
	const listeners = new Set<() => void>();

	const show = () => {
		clearTimeout(timer);
		timer = undefined;
		const next = store.getSnapshot();
		if (next === shown) return;
		shown = next;
		shownAt = Date.now();
		for (const listener of [...listeners]) listener();
	};

	const onChange = () => {
		const next = store.getSnapshot();
		if (next === shown) return;
		const wait = shownAt + frameMs - Date.now();
		if (frameMs <= 0 || wait <= 0 || urgent(shown, next)) show();
		else timer ??= setTimeout(show, wait);
	};

	return {
		getSnapshot: () => shown,
		subscribe(listener) {
			listeners.add(listener);
			unsubscribe ??= store.subscribe(onChange);
			onChange();
			return () => {
				listeners.delete(listener);
				if (listeners.size > 0) return;
				unsubscribe?.();
				unsubscribe = undefined;
				clearTimeout(timer);
				timer = undefined;
			};
		},
		dispose() {
			listeners.clear();
			unsubscribe?.();
			unsubscribe = undefined;
			clearTimeout(timer);
			timer = undefined;
		},
	};
}

/** The store's snapshot for a view, coalesced into frames by {@link frameGate}. */
export function useFrameStore<S, A>(
	store: Store<S, A>,
	frameMs: number,
	urgent: (shown: S, next: S) => boolean,
): S {
	const gate = useMemo(() => frameGate(store, frameMs, urgent), [store, frameMs, urgent]);
	useEffect(
		() => () => {
			gate.dispose();
		},
		[gate],
	);
	return useSyncExternalStore(gate.subscribe, gate.getSnapshot, gate.getSnapshot);
}
