/**
 * Ink measures every text node afresh on each frame: render-node-to-output.js calls widest-line,
 * which for any line with an escape or a non-ASCII character (a bar, a border, `·`) strips ANSI
 * and walks its graphemes. Most of the dashboard's lines are the same from one frame to the next,
 * so the dashboard's bundle (rolldown.config.js) resolves the `widest-line` Ink imports to this
 * memoised one (same contract: the widest line's width in columns). Off, Ink measures as shipped.
 *
 * Not a reach into Ink's internals at run time: the build swaps a module Ink imports, and fails
 * when Ink no longer imports it, so an upgrade of Ink cannot silently drop it. Idle bench row,
 * 4 GPUs at 1 Hz, interleaved (2026-12-06): 2.45-3.04 % of a core without, 1.75-2.15 % with.
 */
import widestLineAsShipped from 'widest-line';
import type {WorkaroundObject} from '../../core/events.js';

export const name = 'ink-widest-line';

/** True in the built bundles, where the dashboard's Ink imports this module (rolldown define). */
declare const __GPUJUP_INK_WIDEST_LINE__: boolean | undefined;
const redirected =
	typeof __GPUJUP_INK_WIDEST_LINE__ !== 'undefined' && __GPUJUP_INK_WIDEST_LINE__ === true;

/** Lines kept before the memo starts over, so it cannot grow without bound. */
const maxEntries = 4000;
const widths = new Map<string, number>();
let calls = 0;

/** widest-line's widestLine, remembered by text. */
export default function widestLine(text: string): number {
	calls++;
	let width = widths.get(text);
	if (width === undefined) {
		width = widestLineAsShipped(text);
		if (widths.size >= maxEntries) widths.clear();
		widths.set(text, width);
	}
	return width;
}

/** This install: whether the dashboard's Ink measures through the memo. */
export function probe(): WorkaroundObject {
	return redirected
		? {name, active: true, detail: "Ink's text widths remembered across frames"}
		: {
				name,
				active: false,
				detail: 'Ink from node_modules, not the built dashboard bundle: each frame measures afresh',
			};
}

/** The memo as this process has it: in use once Ink measured through it. */
export function inkWidestLineStatus(): WorkaroundObject {
	const probed = probe();
	if (!probed.active || calls > 0) return probed;
	return {name, active: false, detail: 'no dashboard drawn in this process (--no-tui, or not yet)'};
}
