import type {AppAction, AppState} from '../core/app-state.js';
import type {SessionHandle} from '../core/session-handle.js';
import type {Store} from '../core/store.js';
import type {Config} from '../config/types.js';
import {startControlServer, type ControlServer} from '../services/control-socket.js';
import {controlSocketPath} from './ssh-options.js';

/**
 * The profile's control socket for a running session, `connect.sock` or `host.sock`: the one
 * place a {@link SessionHandle} is mapped onto the socket's operations (`url`, `status`,
 * `kernels`, `--stop-jupyter`). `handle` is read at each request: null while the role starts
 * (the socket comes first, so a second gpujup for the profile is refused before it touches
 * anything), and the requests that need it then find nothing. A fleet's host serves its own
 * `path` (wiring/fleet.ts fleetSocketPath).
 */
export async function serveSession(
	config: Config,
	role: 'connect' | 'host',
	store: Store<AppState, AppAction>,
	handle: () => SessionHandle | null,
	path: string = controlSocketPath(config, role),
): Promise<ControlServer> {
	return startControlServer({
		path,
		role,
		profile: config.profile ?? 'default',
		store,
		handlers: {
			token: () => handle()?.token() ?? null,
			restartJupyter: async () => handle()?.restartJupyter(),
			reconnect: () => handle()?.reconnect(),
			// Only the GPU host has a Jupyter of its own to stop.
			...(role === 'host'
				? {stopJupyter: async () => (await handle()?.stopJupyter?.()) ?? {pid: null}}
				: {}),
			async kernelAction(id, action) {
				const running = handle();
				if (!running?.kernelAction) throw new Error('no kernels are watched here');
				return running.kernelAction(id, action);
			},
		},
	});
}
