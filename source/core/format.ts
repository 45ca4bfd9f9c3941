/**
 * Pure formatting for the dashboard: durations, sizes, relative times, and making untrusted text
 * (log lines) safe to put on one terminal line.
 */

/** The dash shown for unknown values: never `0`. */
export const unknown = '–';

/**
 * A duration the way `top` and k9s show it: the two largest units, no spaces.
 * `15s`, `41m`, `2h13m`, `3d4h`; negative or non-finite durations read as unknown.
 */
export function formatDuration(ms: number): string {
	if (!Number.isFinite(ms) || ms < 0) return unknown;
	const seconds = Math.floor(ms / 1000);
	if (seconds < 60) return `${seconds}s`;
	const minutes = Math.floor(seconds / 60);
	if (minutes < 60) return `${minutes}m`;
	const hours = Math.floor(minutes / 60);
	if (hours < 24) return `${hours}h${minutes % 60}m`;
	const days = Math.floor(hours / 24);
	return `${days}d${hours % 24}h`;
}

/** `4s ago`, `41m ago`, `just now` for the future (clock skew between machines). */
export function formatAgo(at: number, now: number): string {
	if (!Number.isFinite(at)) return unknown;
	const ms = now - at;
	if (ms < 1000) return 'just now';
	return `${formatDuration(ms)} ago`;
}

/** Seconds left until `at`, rounded up, never negative: the `retrying in 3 s` countdown. */
export function secondsUntil(at: number, now: number): number {
	return Math.max(0, Math.ceil((at - now) / 1000));
}

/** `512 MiB`, `8.9 GiB`; null is unknown. */
export function formatMiB(mib: number | null): string {
	if (mib === null || !Number.isFinite(mib)) return unknown;
	if (mib < 1024) return `${Math.round(mib)} MiB`;
	return `${(mib / 1024).toFixed(1)} GiB`;
}

/** `9.8/16.0 GiB`; either side unknown shows `–`. */
export function formatMiBPair(used: number | null, total: number | null): string {
	const gib = (mib: number | null) =>
		mib === null || !Number.isFinite(mib) ? unknown : (mib / 1024).toFixed(1);
	return `${gib(used)}/${gib(total)} GiB`;
}

/** `38 ms`, `0.4 ms`; null is unknown. */
export function formatRtt(ms: number | null): string {
	if (ms === null || !Number.isFinite(ms)) return unknown;
	return ms < 10 ? `${Math.round(ms * 10) / 10} ms` : `${Math.round(ms)} ms`;
}

/** The port of `127.0.0.1:19507` or `[::1]:19507`; the text itself when it has none. */
export function portOf(address: string): string {
	const index = address.lastIndexOf(':');
	return index === -1 ? address : address.slice(index + 1);
}

/** Columns a string takes, counting code points (every glyph the dashboard draws is narrow). */
export function textWidth(text: string): number {
	return [...text].length;
}

/** Cut to `width` columns, ending with `…` when cut. */
export function truncate(text: string, width: number): string {
	if (width <= 0) return '';
	const chars = [...text];
	if (chars.length <= width) return text;
	return `${chars.slice(0, width - 1).join('')}…`;
}

/** Pad with spaces on the right (or cut) to exactly `width` columns. */
export function fit(text: string, width: number): string {
	const cut = truncate(text, width);
	return cut + ' '.repeat(Math.max(0, width - textWidth(cut)));
}
