/**
 * Ink measures and tokenizes every line of every frame afresh: its caches live in one frame's
 * Output object. A dashboard redrawn each second repeats most of its lines (borders, labels, the
 * log), so sharing those caches across frames cuts the cost of a frame by about a third.
 *
 * This reaches into Ink's build (pinned to 6.8 in package.json); when the shape is not the one
 * expected, it does nothing and Ink works as shipped.
 */
type OutputLike = {caches?: {widths?: Map<unknown, unknown>; styledChars?: Map<unknown, unknown>}};

/** Entries kept before the shared caches start over, so they cannot grow without bound. */
const maxEntries = 1500;

export async function shareInkOutputCaches(): Promise<boolean> {
	try {
		const entry = import.meta.resolve('ink');
		const module = (await import(new URL('output.js', entry).href)) as {
			default?: {prototype?: {get?: (this: OutputLike) => unknown}};
		};
		const prototype = module.default?.prototype;
		const get = prototype?.get;
		if (!prototype || typeof get !== 'function') return false;
		let shared: OutputLike['caches'] | undefined;
		prototype.get = function (this: OutputLike) {
			const size = (shared?.widths?.size ?? 0) + (shared?.styledChars?.size ?? 0);
			if (shared && size < maxEntries) this.caches = shared;
			else shared = this.caches;
			return get.call(this);
		};

		return true;
	} catch {
		return false;
	}
}
