import type {Writable} from 'node:stream';
import type {AppAction, AppState} from '../core/app-state.js';
import {diffEvents, type JsonEventBody} from '../core/events.js';
import type {Store} from '../core/store.js';

/** One JSON object per line, stamped with `at`. */
export function formatEvent(event: JsonEventBody, now = new Date()): string {
	return JSON.stringify({...event, at: now.toISOString()}) + '\n';
}

/**
 * `--no-tui`: writes the SPEC's JSON lines for every change of the store the dashboard would
 * render, so the two can never disagree.
 */
export function startJsonWriter(
	store: Store<AppState, AppAction>,
	out: Writable,
): {write(event: JsonEventBody): void; dispose(): void} {
	let previous: AppState | null = null;
	const flush = () => {
		const next = store.getSnapshot();
		for (const event of diffEvents(previous, next)) out.write(formatEvent(event));
		previous = next;
	};

	const unsubscribe = store.subscribe(flush);
	flush();
	return {
		write(event) {
			out.write(formatEvent(event));
		},
		dispose: unsubscribe,
	};
}
