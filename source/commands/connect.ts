import type {Config} from '../config/types.js';
import {connectStore, relayAsTyped, runConnect} from '../roles/connect.js';
import {chainVia, configSources} from '../roles/ssh-options.js';
import {runSession} from './session.js';

/** `gpujup` / `gpujup connect`. */
export async function runConnectCommand(config: Config): Promise<number> {
	const store = connectStore(config, {
		subtitle: config.hostAlias ? chainVia(config) : `via ${relayAsTyped(config.relay!)}`,
		configFile: configSources(config),
	});
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
				restartBlocked: () => handle.restartBlocked(),
				kernelAction: async (id, action) => handle.kernelAction(id, action),
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
