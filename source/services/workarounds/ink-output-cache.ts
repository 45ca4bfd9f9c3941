/**
 * Ink measures and tokenizes every line of every frame afresh: its caches live in one frame's
 * Output object. A dashboard redrawn each second repeats most of its lines (borders, labels, the
 * log), so sharing those caches across frames cuts the cost of a frame by about a third.
 *
 * Measured against Ink's public options (bench idle row, 4 GPUs at 1 Hz, 160×48, 3 runs, 2 cores,
 * 2026-12-03): with the patch 2.69 % of a core and 121 MB; without it 3.23 % and 136 MB; with
 * `incrementalRendering` instead (it only writes fewer bytes, every frame is still built whole)
 * 2.79 %. It still pays.
 *
 * This reaches into Ink's build (`build/output.js`: the Output class, its `caches` field and
 * `get()`), pinned to 6.8 in package.json. When the probe finds that shape changed, Ink renders
 * as shipped (each frame measures afresh).
 */
import type {WorkaroundObject} from '../../core/events.js';

export const name = 'ink-output-cache';

type OutputCaches = {widths?: unknown; styledChars?: unknown};
type OutputLike = {caches?: OutputCaches; write?: unknown};
type OutputClass = {
	new (options: {width: number; height: number}): OutputLike;
	prototype: {get?: (this: OutputLike) => unknown};
};

/** Entries kept before the shared caches start over, so they cannot grow without bound. */
const maxEntries = 1500;

const sizeOf = (caches: OutputCaches | undefined) =>
	(caches?.widths instanceof Map ? caches.widths.size : 0) +
	(caches?.styledChars instanceof Map ? caches.styledChars.size : 0);

/**
 * Whether Ink's Output still works as the patch expects: `get()` on its prototype, a `caches`
 * object with `widths` and `styledChars` Maps, and `get()` filling the caches the object holds
 * when it runs (so caches swapped in before are the ones used).
 */
export function probeOutputClass(Output: unknown): WorkaroundObject {
	const off = (why: string): WorkaroundObject => ({
		name,
		active: false,
		detail: `${why}: Ink renders as shipped (each frame measured afresh)`,
	});
	if (typeof Output !== 'function') return off("ink's build/output.js no longer exports a class");
	const candidate = Output as OutputClass;
	const get = candidate.prototype.get;
	if (typeof get !== 'function')
		return off("ink's build/output.js no longer exports an Output class with get()");
	try {
		const first = new candidate({width: 8, height: 1});
		const second = new candidate({width: 8, height: 1});
		const swapped = second.caches;
		if (!(swapped?.widths instanceof Map) || !(swapped.styledChars instanceof Map))
			return off("ink's Output has no caches.widths / caches.styledChars Maps");
		first.caches = swapped;
		if (typeof first.write !== 'function') return off("ink's Output has no write()");
		(first.write as (x: number, y: number, text: string, options: object) => void)(0, 0, 'gpujup', {
			transformers: [],
		});
		get.call(first);
		if (sizeOf(swapped) === 0) return off("ink's Output.get() no longer fills this.caches");
	} catch (error) {
		return off(`ink's Output did not run as expected (${(error as Error).message})`);
	}
	return {name, active: true, detail: "Ink's line caches shared across frames"};
}

let applied: WorkaroundObject | undefined;

async function loadOutputClass(): Promise<unknown> {
	const entry = import.meta.resolve('ink');
	const module = (await import(new URL('output.js', entry).href)) as {default?: unknown};
	return module.default;
}

/** This install's Ink, probed (loads Ink's output module, not Ink itself). */
export async function probe(): Promise<WorkaroundObject> {
	// Once patched, get() is ours: the verdict that allowed it stands.
	if (applied) return applied;
	try {
		return probeOutputClass(await loadOutputClass());
	} catch (error) {
		return {
			name,
			active: false,
			detail: `ink's build/output.js did not load (${(error as Error).message}): Ink renders as shipped`,
		};
	}
}

/** Frames drawn through the patched get(): none means Ink renders with another Output. */
let framesSeen = 0;

/** The patch as this process has it: applied with the dashboard, or why not. */
export function inkOutputCacheStatus(): WorkaroundObject {
	if (!applied)
		return {
			name,
			active: false,
			detail: 'no dashboard drawn in this process (--no-tui, or not yet)',
		};
	if (applied.active && framesSeen === 0)
		return {
			name,
			active: false,
			detail:
				'patched, but no frame went through it yet (a second copy of Ink, e.g. a bundled one?): Ink renders as shipped',
		};
	return applied;
}

/** Shares Ink's caches across frames when the probe finds Ink as expected; says what it did. */
export async function shareInkOutputCaches(): Promise<WorkaroundObject> {
	if (applied) return applied;
	const Output = await loadOutputClass().catch(() => undefined);
	const verdict = probeOutputClass(Output);
	applied = verdict;
	if (!verdict.active) return verdict;
	const prototype = (Output as OutputClass).prototype;
	const get = prototype.get!;
	let shared: OutputCaches | undefined;
	prototype.get = function (this: OutputLike) {
		framesSeen++;
		if (shared && sizeOf(shared) < maxEntries) this.caches = shared;
		else shared = this.caches;
		return get.call(this);
	};
	return verdict;
}
