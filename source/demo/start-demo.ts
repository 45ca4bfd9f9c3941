/**
 * `gpujup demo` without the terminal: the embedded relay and GPU host, the demo Jupyter, the
 * simulated GPUs, and the real client (`runConnect`) over them, feeding one store. The command
 * (commands/demo.ts) hands this to the session shell; tests drive it directly.
 */
import {mkdtempSync, rmSync, chmodSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type {Config, HostKeyPolicy, RelayConfig} from '../config/types.js';
import {
	initialHop,
	initialState,
	reduce,
	type AppAction,
	type AppState,
} from '../core/app-state.js';
import {createStore, type Store} from '../core/store.js';
import {loopbackPortFree} from '../services/tcp-probe.js';
import {gpuHostLabel, relayLabel, runConnect, type ConnectHandle} from '../wiring/connect.js';
import type {AskerFactory} from '../wiring/ssh-options.js';
import type {SessionHandle} from '../core/session-handle.js';
import {createDemoKernels} from './demo-kernels.js';
import {startEmbeddedServers, type EmbeddedServers} from './embedded-servers.js';
import {handleGpuHostExec} from './gpu-host-commands.js';
import {startDemoJupyter, type DemoJupyter} from './jupyter-stand-in.js';
import {createSimulatedMachine} from './simulated-gpus.js';

export type DemoOptions = {
	/** The user's resolved config: `noTui`, `localPort`, `forwards` and `home` are taken from it. */
	readonly config: Config;
	/** Which Jupyter (default `auto`: the real one when installed). */
	readonly jupyter?: 'auto' | 'real' | 'stand-in';
	/** Seed of the simulated GPUs' load (default 507). */
	readonly seed?: number;
};

/** A demo with everything up but the client: what the session shell needs to start it. */
export type PreparedDemo = {
	/** The store the dashboard and the JSON writer read. */
	readonly store: Store<AppState, AppAction>;
	/** The config the real client runs with (relay, ports, key, known_hosts of the demo). */
	readonly config: Config;
	readonly servers: EmbeddedServers;
	readonly jupyter: DemoJupyter;
	/** Start the real client over the embedded servers. */
	connect(asker: AskerFactory): Promise<SessionHandle>;
	/** Stop the client (when started), Jupyter and both servers; remove the temp dir. Idempotent. */
	dispose(): Promise<void>;
};

export type RunningDemo = {
	readonly store: Store<AppState, AppAction>;
	readonly config: Config;
	readonly handle: SessionHandle;
	readonly servers: EmbeddedServers;
	readonly jupyter: DemoJupyter;
	dispose(): Promise<void>;
};

/**
 * The store the real client writes into, with the demo's labels applied on the way in. This is the
 * one seam between the client and the demo: the client's GPU stream reports `simulated: false`
 * (it cannot know), the client's Jupyter watcher reports what the runtime file says; the demo
 * knows better, so it marks the GPUs simulated and the stand-in as `stand-in`, and counts its
 * Jupyter's restarts, without any change to the client code path.
 */
export function demoStore(
	base: Store<AppState, AppAction>,
	jupyter: Pick<DemoJupyter, 'kind' | 'restarts'>,
): Store<AppState, AppAction> {
	return {
		getSnapshot: base.getSnapshot,
		subscribe: base.subscribe,
		dispatch(action) {
			if (action.type === 'gpu') {
				base.dispatch({...action, gpu: {...action.gpu, simulated: true}});
			} else if (action.type === 'jupyter' && action.jupyter) {
				base.dispatch({
					...action,
					jupyter: {
						...action.jupyter,
						restarts: jupyter.restarts(),
						origin: jupyter.kind() === 'stand-in' ? 'stand-in' : action.jupyter.origin,
					},
				});
			} else if (action.type === 'source') {
				// The demo's GPU host has no agent by design: say what it is, not "fallback".
				base.dispatch({type: 'source', source: 'the demo’s embedded GPU host'});
			} else {
				base.dispatch(action);
			}
		},
	};
}

/** Bring up the servers and Jupyter and build the client's config; the client is not started. */
export async function prepareDemo(options: DemoOptions): Promise<PreparedDemo> {
	const dir = mkdtempSync(path.join(os.tmpdir(), 'gpujup-demo-'));
	chmodSync(dir, 0o700);
	// A crash or a hard exit skips dispose(): leave no keys or notebooks behind even then.
	const removeDir = () => {
		rmSync(dir, {recursive: true, force: true});
	};
	process.on('exit', removeDir);
	const startedAt = performance.now();
	const machine = createSimulatedMachine(options.seed ?? 507);
	// The notebooks of the stand-in (a real Jupyter lists its own kernels instead).
	const kernels = createDemoKernels(machine, Date.now());
	const username = os.userInfo().username;
	let servers: EmbeddedServers | null = null;
	let jupyter: DemoJupyter | null = null;
	let client: ConnectHandle | null = null;

	// Lines that arrive before the store exists (Jupyter's start-up) are kept for it.
	const early: string[] = [];
	let logSink = (line: string) => {
		early.push(line);
	};

	let disposing: Promise<void> | null = null;
	// Every caller (the session's quit, the command's finally) waits for the same teardown.
	const dispose = async () =>
		(disposing ??= (async () => {
			await client?.dispose().catch(() => {});
			await jupyter?.dispose().catch(() => {});
			await servers?.dispose().catch(() => {});
			removeDir();
			process.off('exit', removeDir);
		})());

	try {
		jupyter = await startDemoJupyter({
			dir: path.join(dir, 'gpu-host'),
			mode: options.jupyter ?? 'auto',
			onLog: (line) => logSink(line),
			kernels,
		});
		const demoJupyter = jupyter;
		const userForwards = options.config.forwards;
		servers = await startEmbeddedServers({
			dir,
			username,
			allowedPorts: () => [demoJupyter.port, ...userForwards.map((f) => f.remote)],
			exec(command, io) {
				handleGpuHostExec(command, io, {
					machine,
					elapsedMs: () => performance.now() - startedAt,
					user: username,
					runtimeFiles: () => demoJupyter.runtimeFiles(),
					kernels,
				});
			},
		});
		const localPort = (await loopbackPortFree(options.config.localPort))
			? options.config.localPort
			: 0;
		const stateDir = path.join(dir, 'state');
		const config: RelayConfig = {
			...options.config,
			command: 'demo',
			relay: {host: '127.0.0.1', port: servers.relayPort, user: username, alias: null},
			relayPort: servers.tunnelPort,
			hostUser: username,
			jupyterPort: jupyter.port,
			localPort,
			identities: [servers.identityFile],
			// The embedded servers' keys only: no system or user known_hosts.
			relayHostKeys: demoHostKeys(servers.knownHostsFile),
			gpuHostKeys: demoHostKeys(servers.knownHostsFile),
			keepaliveS: 2,
			keepaliveCount: 3,
			jupyterLog: null,
			nvidiaSmi: 'nvidia-smi',
			stateDir,
		};
		const base = createStore(
			reduce,
			initialState({
				role: 'demo',
				title: 'demo-gpu-host',
				subtitle: 'via embedded relay (simulated)',
				configFile: options.config.configFile,
				hops: [initialHop('relay', relayLabel(config)), initialHop('host', gpuHostLabel(config))],
			}),
		);
		const store = demoStore(base, jupyter);
		logSink = (line) => {
			store.dispatch({type: 'log', lines: [line]});
		};
		if (localPort !== options.config.localPort)
			logSink(
				`[gpujup demo] 127.0.0.1:${options.config.localPort} is taken: the demo forwards a free port instead`,
			);
		store.dispatch({type: 'log', lines: early.splice(0)});
		const demoServers = servers;

		return {
			store,
			config,
			servers,
			jupyter,
			async connect(asker) {
				const handle = await runConnect(config, store, asker);
				client = handle;
				return {
					reconnect() {
						// A real outage, not a shortcut: both servers drop every connection and the client
						// recovers on its own path (lost, then ready again, reconnects + 1).
						demoServers.dropConnections();
						logSink('[gpujup demo] dropped every connection on the embedded relay and GPU host');
						handle.reconnect();
					},
					async restartJupyter() {
						const current = store.getSnapshot().jupyter;
						if (current)
							store.dispatch({
								type: 'jupyter',
								jupyter: {...current, state: 'restarting', message: null},
							});
						await demoJupyter.restart();
					},
					urlWithToken: () => handle.urlWithToken(),
					// i, K and x on the demo's notebooks: the client's own path to the stand-in.
					kernelAction: async (id, action) => handle.kernelAction(id, action),
					token: () => handle.token(),
					dispose,
				};
			},
			dispose,
		};
	} catch (error) {
		await dispose();
		throw error;
	}
}

/** The whole demo, client included, with no questions asked (tests, `--no-tui`). */
export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
	const prepared = await prepareDemo(options);
	try {
		const handle = await prepared.connect(() => ({}));
		return {
			store: prepared.store,
			config: prepared.config,
			handle,
			servers: prepared.servers,
			jupyter: prepared.jupyter,
			dispose: prepared.dispose,
		};
	} catch (error) {
		await prepared.dispose();
		throw error;
	}
}

function demoHostKeys(file: string): HostKeyPolicy {
	return {userFiles: [file], globalFiles: [], alias: null, strict: 'ask', hash: false};
}
