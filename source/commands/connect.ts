import type {Config} from '../config/types.js';
import {initialHop, initialState, reduce} from '../core/app-state.js';
import {createStore} from '../core/store.js';
import {gpuHostLabel, relayLabel, runConnect} from '../roles/connect.js';
import {runSession} from './session.js';

/** `gpujup` / `gpujup connect`. */
export async function runConnectCommand(config: Config): Promise<number> {
	const relay = config.relay!;
	const store = createStore(
		reduce,
		initialState({
			role: 'connect',
			title: config.hostUser,
			subtitle: `via ${relay.alias ?? relay.host}`,
			configFile: config.configFile,
			hops: [initialHop('relay', relayLabel(config)), initialHop('host', gpuHostLabel(config))],
		}),
	);
	return runSession({
		config,
		store,
		socketName: 'connect.sock',
		async start(asker) {
			const handle = await runConnect(config, store, asker);
			return {
				reconnect: () => {
					handle.reconnect();
				},
				restartJupyter: async () => handle.restartJupyter(),
				urlWithToken: () => handle.urlWithToken(),
				token() {
					const token = handle.token();
					return token ? {token, port: handle.localPort} : null;
				},
				dispose: async () => handle.dispose(),
			};
		},
	});
}
