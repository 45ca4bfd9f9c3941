import {useEffect, useMemo, useSyncExternalStore} from 'react';
import type {Store} from '../core/store.js';

/** One drawing: the store's snapshot shown, and a count that moves on each redraw of the clock. */
export type Frame<S> = {readonly state: S; readonly beat: number};

/** What a view subscribes to: a store's snapshots, some of them held back to the next frame. */
export type FrameGate<S> = {
	readonly getSnapshot: () => S;
	/** A new object for each frame shown, and for each clock beat (see `beat`). */
	readonly getFrame: () => Frame<S>;
	readonly subscribe: (listener: () => void) => () => void;
	/** Drop the pending frame and the store subscription. */
	dispose(): void;
};

export type FrameGateOptions = {
	/**
	 * Redraw every `frameMs` even when the store did not change (the clock: uptimes and
	 * countdowns), on the same timer as the held-back changes, so a dashboard whose samples come
	 * once a second draws once a second, never a clock frame and a sample frame apart.
	 */
	readonly beat?: boolean;
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
	options: FrameGateOptions = {},
): FrameGate<S> {
	const beating = options.beat === true && frameMs > 0;
	let shown = store.getSnapshot();
	let frame: Frame<S> = {state: shown, beat: 0};
	let shownAt = Number.NEGATIVE_INFINITY;
	let timer: NodeJS.Timeout | undefined;
	let unsubscribe: (() => void) | undefined;
	const listeners = new Set<() => void>();

	const emit = () => {
		shownAt = Date.now();
		clearTimeout(timer);
		timer = undefined;
		if (beating && listeners.size > 0) timer = setTimeout(tick, frameMs);
		for (const listener of [...listeners]) listener();
	};

	const show = () => {
		const next = store.getSnapshot();
		if (next === shown) return false;
		shown = next;
		frame = {state: shown, beat: frame.beat};
		emit();
		return true;
	};

	// The frame's time: what changed meanwhile, else (with `beat`) the clock alone.
	function tick() {
		timer = undefined;
		if (show() || !beating) return;
		frame = {state: shown, beat: frame.beat + 1};
		emit();
	}

	const onChange = () => {
		const next = store.getSnapshot();
		if (next === shown) return;
		const wait = shownAt + frameMs - Date.now();
		if (frameMs <= 0 || wait <= 0 || urgent(shown, next)) show();
		// With `beat` the timer already runs to the next frame.
		else timer ??= setTimeout(tick, wait);
	};

	const stop = () => {
		unsubscribe?.();
		unsubscribe = undefined;
		clearTimeout(timer);
		timer = undefined;
	};

	return {
		getSnapshot: () => shown,
		getFrame: () => frame,
		subscribe(listener) {
			listeners.add(listener);
			unsubscribe ??= store.subscribe(onChange);
			onChange();
			// The view draws what it subscribed to: the clock's first beat is a frame after that.
			if (beating && timer === undefined) {
				if (shownAt === Number.NEGATIVE_INFINITY) shownAt = Date.now();
				timer = setTimeout(tick, Math.max(0, shownAt + frameMs - Date.now()));
			}
			return () => {
				listeners.delete(listener);
				if (listeners.size === 0) stop();
			};
		},
		dispose() {
			listeners.clear();
			stop();
		},
	};
}

/**
 * The store's snapshot for a view, coalesced into frames by {@link frameGate}; with `beat`, a
 * new frame every `frameMs` besides, for the clock.
 */
export function useFrameStore<S, A>(
	store: Store<S, A>,
	frameMs: number,
	urgent: (shown: S, next: S) => boolean,
	options: FrameGateOptions = {},
): Frame<S> {
	const beat = options.beat === true;
	const gate = useMemo(
		() => frameGate(store, frameMs, urgent, {beat}),
		[store, frameMs, urgent, beat],
	);
	useEffect(
		() => () => {
			gate.dispose();
		},
		[gate],
	);
	return useSyncExternalStore(gate.subscribe, gate.getFrame, gate.getFrame);
}
