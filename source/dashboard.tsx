/**
 * The dashboard's door: everything drawn with Ink and React, loaded only when a dashboard is drawn
 * or a pane's text is asked for (`gpujup kernels`). The build bundles it apart with its own copy of
 * Ink (dist/dashboard.js, an ES module as Ink is): `--no-tui`, `status` and `url` never load Ink or
 * React. Ink's workarounds live with that copy, so their state is this bundle's: the shell applies
 * them through fenceInk() and reads them back through inkWorkaroundsInUse().
 */
import {render} from 'ink';
import InkOutput from 'ink/build/output.js';
import {App, type AppProps} from './app.js';
import type {WorkaroundObject} from './core/events.js';
import {FleetApp, type FleetAppProps} from './fleet-app.js';
import {
	inkOutputCacheStatus,
	shareInkOutputCaches,
} from './services/workarounds/ink-output-cache.js';
import * as inkWidestLine from './services/workarounds/ink-widest-line.js';

export {notebookLines} from './components/notebooks-pane.js';

export type Drawn = {unmount(): void};

/** Ink's workarounds applied to the Ink this module draws with, before its first frame. */
export async function fenceInk(): Promise<WorkaroundObject[]> {
	return [await shareInkOutputCaches(InkOutput), inkWidestLine.probe()];
}

/** Ink's workarounds as this process has them, for its `status` reply. */
export function inkWorkaroundsInUse(): WorkaroundObject[] {
	return [inkOutputCacheStatus(), inkWidestLine.inkWidestLineStatus()];
}

const inkOptions = {
	exitOnCtrlC: false,
	// Updates come in bursts (a sample, then its processes): draw them as one frame.
	maxFps: 10,
} as const;

/** One host's dashboard on the terminal, until unmounted. */
export function drawDashboard(props: AppProps): Drawn {
	return render(<App {...props} />, inkOptions);
}

/** The fleet's dashboard (a row per host, one host's panes below), until unmounted. */
export function drawFleetDashboard(props: FleetAppProps): Drawn {
	return render(<FleetApp {...props} />, inkOptions);
}
