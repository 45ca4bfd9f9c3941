/**
 * Every place gpujup reaches into a dependency's internals, one module each, each with a probe
 * that says whether the internals look as expected (the workaround is active) or not (a safe
 * fallback runs, and why). `doctor` prints them; `status --json` carries them.
 */
import type {WorkaroundObject} from '../../core/events.js';
import * as inkOutputCache from './ink-output-cache.js';
import * as inkWidestLine from './ink-widest-line.js';
import * as ssh2DemoServer from './ssh2-demo-server.js';
import * as ssh2Ping from './ssh2-ping.js';
import * as ssh2Window from './ssh2-window.js';

/** Every workaround probed against this install: for `doctor` and a one-shot `status`. */
export async function probeWorkarounds(): Promise<WorkaroundObject[]> {
	return [
		ssh2Window.probe(),
		ssh2Ping.probe(),
		await inkOutputCache.probe(),
		inkWidestLine.probe(),
		ssh2DemoServer.probe(),
	];
}

/** Ink's workarounds as the dashboard's bundle has them (its own copy of Ink and of them). */
let dashboardInk: (() => WorkaroundObject[]) | null = null;

/** The drawn dashboard's Ink workarounds, for workaroundsInUse (dashboard.tsx, through the shell). */
export function reportInkWorkarounds(inUse: () => WorkaroundObject[]): void {
	dashboardInk = inUse;
}

/**
 * The workarounds as this running process has them (its `status` reply): the ssh2 ones as probed,
 * Ink's only once a dashboard applied them. Loads nothing new.
 */
export function workaroundsInUse(): WorkaroundObject[] {
	return [
		ssh2Window.probe(),
		ssh2Ping.probe(),
		...(dashboardInk?.() ?? [
			inkOutputCache.inkOutputCacheStatus(),
			inkWidestLine.inkWidestLineStatus(),
		]),
		ssh2DemoServer.probe(),
	];
}

/**
 * Log lines for the workarounds found off, so a fallback is never silent: the ssh2 ones at a
 * session's start, Ink's once the dashboard tried it (the demo's only matter in the demo).
 */
export function offLogLines(workarounds: readonly WorkaroundObject[]): string[] {
	return workarounds
		.filter((w) => !w.active)
		.map((w) => `[gpujup] workaround ${w.name} off (doctor lists them): ${w.detail}`);
}

/** The ssh2 workarounds every session uses. */
export function sessionWorkarounds(): WorkaroundObject[] {
	return [ssh2Window.probe(), ssh2Ping.probe()];
}
