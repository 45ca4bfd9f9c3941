import type {Writable} from 'node:stream';
import type {AppAction, AppState} from '../core/app-state.js';
import {diffEvents, type JsonEventBody} from '../core/events.js';
import type {Store} from '../core/store.js';

/**
 * How much the writer lets pile up for a reader that does not read (a stalled pipe): beyond it,
 * lines are dropped and counted instead of growing the process without bound.
 */
export const maxQueuedBytes = 1024 * 1024;

// C1 controls are valid JSON unescaped, and U+2028/2029 break JavaScript readers: a terminal that
// shows the lines, or a careless consumer, must never get them raw.
const unsafeInJson = /[\u0080-\u009F\u2028\u2029]/g;

/** `JSON.stringify`, with C1 controls and U+2028/2029 written as `\uXXXX`. */
export function stringifyJson(value: unknown): string {
	return JSON.stringify(value).replaceAll(
		unsafeInJson,
		(c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
	);
}

/** One JSON object per line, stamped with `at` (and, in a fleet, the GPU host's name). */
export function formatEvent(
	event: JsonEventBody,
	now = new Date(),
	fields: {readonly host?: string} = {},
): string {
	return stringifyJson({...event, ...fields, at: now.toISOString()}) + '\n';
}

export type JsonWriterOptions = {
	/**
	 * The reader went away (EPIPE: `gpujup … --no-tui | head -1`): nothing more is written; the
	 * caller ends the run quietly, as Unix tools do.
	 */
	readonly onClosed?: () => void;
	/** Default {@link maxQueuedBytes}; never below the stream's own high-water mark. */
	readonly maxQueuedBytes?: number;
	/** A fleet's GPU host: every line carries `"host":"<name>"` (SPEC JSON contract). */
	readonly host?: string;
};

/**
 * `--no-tui`: writes the SPEC's JSON lines for every change of the store the dashboard would
 * render, so the two can never disagree. A reader that falls behind loses lines, not memory: once
 * it drains, a counted `{"type":"error","kind":"overflow"}` line says how many, followed by the
 * current state (hops, forwards, Jupyter, GPUs), so what it reads next is true again.
 */
export function startJsonWriter(
	store: Store<AppState, AppAction>,
	out: Writable,
	options: JsonWriterOptions = {},
): {write(event: JsonEventBody): void; dispose(): void} {
	const limit = Math.max(options.maxQueuedBytes ?? maxQueuedBytes, out.writableHighWaterMark);
	const fields = options.host === undefined ? {} : {host: options.host};
	const line = (event: JsonEventBody) => formatEvent(event, new Date(), fields);
	let previous: AppState | null = null;
	let dropped = 0;
	let closed = false;

	const onDrain = () => {
		if (closed || dropped === 0) return;
		const count = dropped;
		dropped = 0;
		out.write(
			line({
				type: 'error',
				kind: 'overflow',
				message: `the reader fell behind: ${count} event${count === 1 ? '' : 's'} dropped`,
			}),
		);
		previous = store.getSnapshot();
		for (const event of diffEvents(null, previous))
			if (event.type !== 'log') out.write(line(event));
	};

	const emit = (event: JsonEventBody) => {
		if (closed) return;
		if (out.writableLength >= limit) {
			// The limit is at least the high-water mark, so a write has returned false: 'drain' comes.
			if (dropped++ === 0) out.once('drain', onDrain);
			return;
		}

		out.write(line(event));
	};

	const onError = () => {
		// EPIPE and its kin: whoever read us is gone. Anything else on stdout is just as final.
		if (closed) return;
		closed = true;
		options.onClosed?.();
	};

	out.on('error', onError);
	const flush = () => {
		const next = store.getSnapshot();
		for (const event of diffEvents(previous, next)) emit(event);
		previous = next;
	};

	const unsubscribe = store.subscribe(flush);
	flush();
	return {
		write: emit,
		dispose() {
			unsubscribe();
			out.off('drain', onDrain);
		},
	};
}
