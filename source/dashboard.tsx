/**
 * The dashboard's door: everything drawn with Ink and React, loaded only when a dashboard is drawn
 * or a pane's text is asked for (`gpujup kernels`). The build bundles it apart (dist/dashboard.js,
 * an ES module as Ink is): `--no-tui`, `status` and `url` never load Ink or React.
 */
import {render} from 'ink';
import {App, type AppProps} from './app.js';
import {FleetApp, type FleetAppProps} from './fleet-app.js';

export {notebookLines} from './components/notebooks-pane.js';

export type Drawn = {unmount(): void};

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
