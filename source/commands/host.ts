import os from 'node:os';
import type {Config} from '../config/types.js';
import {initialHop, initialState, reduce} from '../core/app-state.js';
import {jupyterUrlWithToken} from '../core/events.js';
import {createStore} from '../core/store.js';
import {systemdUnit} from '../core/systemd-unit.js';
import {runHost, stopJupyterForProfile} from '../roles/host.js';
import {runSession} from './session.js';

/** `gpujup host`, `--print-systemd-unit` and `--stop-jupyter`. */
export async function runHostCommand(config: Config): Promise<number> {
	if (config.printSystemdUnit) {
		process.stdout.write(
			systemdUnit(process.argv.slice(2), {
				execPath: process.execPath,
				script: process.argv[1] ?? 'gpujup',
				workingDirectory: config.notebookDir,
				// A systemd user manager's PATH lacks ~/.local/bin and conda's dirs.
				...(process.env['PATH'] ? {path: process.env['PATH']} : {}),
			}),
		);
		return 0;
	}

	if (config.stopJupyter) {
		const message = await stopJupyterForProfile(config);
		process.stdout.write(message + '\n');
		return 0;
	}

	const relay = config.relay!;
	const store = createStore(
		reduce,
		initialState({
			role: 'host',
			title: os.hostname(),
			subtitle: `→ ${relay.alias ?? relay.host}`,
			configFile: config.configFile,
			hops: [
				initialHop('reverse', `${relay.alias ?? relay.host} (listening :${config.relayPort})`),
			],
		}),
	);
	return runSession({
		config,
		store,
		socketName: null,
		async start(asker) {
			const ask = asker('reverse');
			const handle = await runHost(config, {
				store,
				...(ask.askSecret ? {askSecret: ask.askSecret} : {}),
				...(ask.confirmHostKey ? {confirmHostKey: ask.confirmHostKey} : {}),
			});
			const token = () => handle.commands.token();
			return {
				reconnect: () => {
					handle.commands.reconnect();
				},
				restartJupyter: async () => handle.commands.restartJupyter(),
				urlWithToken() {
					const t = token();
					return t ? jupyterUrlWithToken(t.port, t.token) : null;
				},
				token,
				dispose: async ({stopJupyter}) => handle.dispose({stopJupyter}),
			};
		},
	});
}
