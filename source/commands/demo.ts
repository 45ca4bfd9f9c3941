import type {Config} from '../config/types.js';
import {prepareDemo} from '../demo/start-demo.js';
import {runSession} from '../shell/session.js';

/**
 * `gpujup demo`: the whole chain in one process (embedded relay and GPU host, simulated GPUs, a
 * real Jupyter when installed), shown by the same dashboard or JSON lines as `connect`.
 */
export async function runDemoCommand(config: Config): Promise<number> {
	// Which Jupyter: the real one when installed (`auto`), or the stand-in with its simulated
	// notebooks (what the README's screenshots show) from GPUJUP_DEMO_JUPYTER=stand-in.
	const choice = process.env['GPUJUP_DEMO_JUPYTER'] ?? 'auto';
	if (choice !== 'auto' && choice !== 'real' && choice !== 'stand-in') {
		process.stderr.write(
			`gpujup demo: GPUJUP_DEMO_JUPYTER is ${JSON.stringify(choice)}: use auto, real or stand-in\n`,
		);
		return 2;
	}

	process.stderr.write('gpujup demo: starting an embedded relay, a GPU host and Jupyter…\n');
	// The session handles signals once it runs; until then, a Ctrl+C must still stop Jupyter (its
	// own process group does not get the terminal's signal): exiting runs the demo's exit hooks.
	const early = () => process.exit(130);
	process.once('SIGINT', early);
	process.once('SIGTERM', early);
	process.once('SIGHUP', early);
	let demo;
	try {
		demo = await prepareDemo({config, jupyter: choice});
	} catch (error) {
		process.stderr.write(
			`gpujup demo: could not start: ${error instanceof Error ? error.message : String(error)}\n`,
		);
		return 1;
	} finally {
		process.off('SIGINT', early);
		process.off('SIGTERM', early);
		process.off('SIGHUP', early);
	}

	try {
		return await runSession({
			config: demo.config,
			store: demo.store,
			socket: null,
			start: async (asker) => demo.connect(asker),
		});
	} finally {
		// The session disposes the handle; this also covers a client that never started.
		await demo.dispose();
	}
}
