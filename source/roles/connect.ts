import type {Client} from 'ssh2';
import type {Config} from '../config/types.js';
import {
	initialHop,
	initialState,
	reduce,
	type AppAction,
	type AppState,
} from '../core/app-state.js';
import {jupyterUrlWithToken, maskTokens, type JsonEvent} from '../core/events.js';
import {connectAgent, type Agent} from '../services/agent-channel.js';
import {RemoteLogTail} from '../services/log-tail.js';
import {execText} from '../services/remote-exec.js';
import {createStore, type Store} from '../core/store.js';
import {startLocalForward} from '../services/local-forward.js';
import {RemoteJupyter} from '../services/remote-jupyter.js';
import type {KeyCache} from '../services/ssh-auth.js';
import {SshHop} from '../services/ssh-hop.js';
import {GpuStream} from '../services/gpu-stream.js';
import {sshRunner} from '../services/command-runner.js';
import {
	authOptions,
	gpuHostKeyNames,
	keepalive,
	relayKeyNames,
	type AskerFactory,
} from './ssh-options.js';

export type ConnectHandle = {
	/** The laptop port Jupyter is forwarded to (differs from config with `--local-port 0`). */
	readonly localPort: number;
	readonly relay: SshHop;
	readonly host: SshHop;
	reconnect(): void;
	/** Through `gpujup host` on the GPU host; throws, explaining, when only the fallback is there. */
	restartJupyter(): Promise<void>;
	/** Why a restart is impossible now (the exec fallback: no `gpujup host`), or null. */
	restartBlocked(): string | null;
	/** `http://127.0.0.1:<local>/?token=…`, or null while the token is unknown. */
	urlWithToken(): string | null;
	/** Jupyter's token, for the control socket only. */
	token(): string | null;
	dispose(): Promise<void>;
};

const noRestart =
	'restarting Jupyter needs `gpujup host` on the GPU host; without it, restart Jupyter there by hand';

/** A Jupyter started by hand logs where only it knows: say how its log gets here. */
const noLogHint = 'no Jupyter log: pass --jupyter-log FILE, or run `gpujup host` on the GPU host';

/** The relay as the user named it: the alias they typed, with its address beside it. */
export function relayLabel(config: Config): string {
	const relay = config.relay!;
	const address = relay.port === 22 ? relay.host : `${relay.host}:${relay.port}`;
	return relay.alias && relay.alias !== relay.host ? `${relay.alias} (${address})` : address;
}

export function gpuHostLabel(config: Config): string {
	return `${config.hostUser}@gpu-host (via :${config.relayPort})`;
}

/** The store of a laptop-side run (connect, status, doctor): the relay and GPU host hops. */
export function connectStore(
	config: Config,
	extra: {subtitle?: string; configFile?: string | null} = {},
): Store<AppState, AppAction> {
	return createStore(
		reduce,
		initialState({
			role: 'connect',
			title: config.hostUser,
			...extra,
			hops: [initialHop('relay', relayLabel(config)), initialHop('host', gpuHostLabel(config))],
		}),
	);
}

/**
 * The hops of `connect` (relay, then the GPU host through the relay's forwarded port), without
 * any forward: `connect` adds those, `status` and `doctor` use the hops alone.
 */
export function createHops(
	config: Config,
	store: Store<AppState, AppAction>,
	asker: AskerFactory,
): {relay: SshHop; host: SshHop} {
	const relayTarget = config.relay!;
	// One key's passphrase is asked once for both hops.
	const keyCache: KeyCache = new Map();
	const common = (name: 'relay' | 'host') => {
		const ask = asker(name);
		return {
			knownHostsFile: config.knownHosts,
			acceptNew: config.acceptNew,
			...(ask.confirmHostKey ? {confirmHostKey: ask.confirmHostKey} : {}),
			auth: {...authOptions(config, ask), keyCache},
			...keepalive(config),
		};
	};
	const relay = new SshHop({
		...common('relay'),
		name: 'relay',
		label: relayLabel(config),
		host: relayTarget.host,
		port: relayTarget.port,
		username: relayTarget.user,
		hostKeyNames: relayKeyNames(config),
		onStatus(patch) {
			store.dispatch({type: 'hop', hop: 'relay', patch});
		},
	});
	const host = new SshHop({
		...common('host'),
		name: 'host',
		label: gpuHostLabel(config),
		host: 'localhost',
		port: config.relayPort,
		username: config.hostUser,
		via: relay,
		// As `ssh -J` asks, so a relay restricting forwarding to permitopen="localhost:19506" works.
		viaTarget: {host: 'localhost', port: config.relayPort},
		hostKeyNames: gpuHostKeyNames(config),
		onStatus(patch) {
			store.dispatch({type: 'hop', hop: 'host', patch});
		},
	});
	return {relay, host};
}

/**
 * `gpujup connect`: both hops, the local forward to Jupyter (and `--forward`s), Jupyter's state
 * and the GPUs watched over the second hop.
 */
export async function runConnect(
	config: Config,
	store: Store<AppState, AppAction>,
	asker: AskerFactory,
): Promise<ConnectHandle> {
	const {relay, host} = createHops(config, store, asker);
	const disposers: Array<() => Promise<void> | void> = [];
	try {
		const jupyterForward = await startLocalForward({
			port: config.localPort,
			remoteHost: '127.0.0.1',
			remotePort: config.jupyterPort,
			label: 'jupyter',
			hop: host,
			onStatus(forward) {
				store.dispatch({type: 'forward', forward});
			},
		});
		disposers.push(async () => jupyterForward.dispose());
		for (const spec of config.forwards) {
			const forward = await startLocalForward({
				port: spec.local,
				remoteHost: '127.0.0.1',
				remotePort: spec.remote,
				label: spec.remote === 6006 ? 'tensorboard' : String(spec.remote),
				hop: host,
				onStatus(status) {
					store.dispatch({type: 'forward', forward: status});
				},
			});
			disposers.push(async () => forward.dispose());
		}

		const localPort = jupyterForward.port;
		const jupyter = new RemoteJupyter({
			remotePort: config.jupyterPort,
			localPort,
			onStatus(status) {
				store.dispatch({type: 'jupyter', jupyter: status});
			},
		});
		disposers.push(() => {
			jupyter.dispose();
		});
		let currentClient: Client | null = null;
		const gpu = new GpuStream({
			runner: sshRunner(() => currentClient),
			nvidiaSmi: config.nvidiaSmi,
			onStatus(status) {
				store.dispatch({type: 'gpu', gpu: status});
			},
		});
		disposers.push(async () => gpu.dispose());
		const logTail = config.jupyterLog
			? new RemoteLogTail({
					path: config.jupyterLog,
					onLines(lines) {
						store.dispatch({
							type: 'log',
							lines: lines.map((line) => maskTokens(line, jupyter.token())),
						});
					},
					onError(message) {
						store.dispatch({type: 'log', lines: [`[gpujup] ${maskTokens(message)}`]});
					},
				})
			: null;
		disposers.push(() => {
			logTail?.detach();
		});
		let agent: Agent | null = null;
		disposers.push(() => {
			agent?.connection.close();
		});

		/** Set while the exec fallback serves this GPU host hop: no agent to restart Jupyter. */
		let inFallback = false;
		/** No `gpujup host` there (or one we cannot speak to): exec fallback, with a note. */
		const fallback = (client: Client, why: string) => {
			inFallback = true;
			store.dispatch({type: 'source', source: `exec fallback (${why})`});
			if (!logTail) store.dispatch({type: 'log-hint', hint: noLogHint});
			gpu.start();
			logTail?.attach(client);
		};

		const onAgentEvent = (event: JsonEvent) => {
			switch (event.type) {
				case 'gpu': {
					store.dispatch({
						type: 'gpu',
						gpu: {
							gpus: event.gpus.map((g) => ({...g, busId: null})),
							processes: event.processes,
							error: event.error,
							driverVersion: null,
							simulated: false,
						},
					});
					break;
				}

				case 'host': {
					const {type: _type, at: _at, ...stats} = event;
					store.dispatch({type: 'host-stats', host: stats});
					break;
				}

				case 'log': {
					store.dispatch({type: 'log', lines: [maskTokens(event.line, jupyter.token())]});
					break;
				}

				case 'jupyter': {
					jupyter.useAgent({token: null, state: event.state, pid: event.pid});
					break;
				}

				default: {
					break;
				}
			}
		};

		host.on('ready', (client: Client) => {
			currentClient = client;
			jupyter.attach(client);
			// The GPU host's own name, for the title and the path line (p507, not user@gpu-host).
			execText(client, 'hostname', {timeoutMs: 10_000}).then(
				({stdout}) => {
					const name = stdout.trim().split('\n')[0]?.trim();
					if (!name || !/^[\w.-]{1,64}$/.test(name)) return;
					store.dispatch({type: 'title', title: name});
					store.dispatch({
						type: 'hop',
						hop: 'host',
						patch: {label: `${name} (via :${config.relayPort})`},
					});
				},
				() => {
					// No exec: the title stays the user's.
				},
			);
			connectAgent(client, config.profile ?? 'default', onAgentEvent).then(
				(found) => {
					if (currentClient !== client) {
						found?.connection.close();
						return;
					}

					if (!found) {
						fallback(client, 'no gpujup host on the GPU host');
						return;
					}

					agent = found;
					inFallback = false;
					store.dispatch({type: 'source', source: 'gpujup host'});
					store.dispatch({type: 'log-hint', hint: null});
					jupyter.useAgent({token: found.token?.token ?? null});
					found.connection.on('close', () => {
						if (agent !== found) return;
						agent = null;
						if (currentClient === client) fallback(client, 'the agent channel closed');
					});
				},
				(error: unknown) => {
					if (currentClient !== client) return;
					const why = error instanceof Error ? error.message : String(error);
					fallback(client, `gpujup host did not answer: ${why}`);
				},
			);
		});
		host.on('down', () => {
			currentClient = null;
			inFallback = false;
			agent?.connection.close();
			agent = null;
			jupyter.detach('the GPU host hop is down');
			logTail?.detach();
			void gpu.stop();
		});
		relay.start();
		host.start();
		return {
			localPort,
			relay,
			host,
			reconnect() {
				relay.reconnectNow();
				host.reconnectNow();
			},
			restartBlocked: () => (!agent && inFallback ? noRestart : null),
			async restartJupyter() {
				if (!agent) throw new Error(noRestart);
				await agent.connection.request('restart-jupyter', 180_000);
				jupyter.refresh();
			},
			token: () => jupyter.token(),
			urlWithToken() {
				const token = jupyter.token();
				return token ? jupyterUrlWithToken(localPort, token) : null;
			},
			async dispose() {
				for (const dispose of disposers.reverse()) {
					await dispose();
				}

				await host.dispose();
				await relay.dispose();
			},
		};
	} catch (error) {
		for (const dispose of disposers.reverse()) {
			await dispose();
		}

		await host.dispose();
		await relay.dispose();
		throw error;
	}
}
