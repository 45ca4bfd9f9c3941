import type {Client} from 'ssh2';
import type {Config, RelayConfig} from '../config/types.js';
import type {ClassifiedError} from '../core/types.js';
import {
	initialHop,
	initialState,
	reduce,
	type AppAction,
	type AppState,
} from '../core/app-state.js';
import {jupyterUrlWithToken, kernelStatusOf, maskTokens, type JsonEvent} from '../core/events.js';
import {nextDelay, type BackoffPolicy} from '../core/backoff.js';
import {connectAgent, requestAgentToken, type Agent} from '../services/agent-channel.js';
import {parseProcDump, procDumpCommand, type KernelAction} from '../core/kernels.js';
import {KernelMonitor} from '../services/kernel-monitor.js';
import type {SessionHandle} from '../core/session-handle.js';
import {deliverNotification} from '../services/notify-url.js';
import {RemoteLogTail} from '../services/log-tail.js';
import {execText} from '../services/remote-exec.js';
import {createStore, type Store} from '../core/store.js';
import {startLocalForward} from '../services/local-forward.js';
import {RemoteJupyter} from '../services/remote-jupyter.js';
import type {KeyCache} from '../services/ssh-auth.js';
import {SshHop, type SshHopOptions} from '../services/ssh-hop.js';
import {GpuStream} from '../services/gpu-stream.js';
import {sshRunner} from '../services/command-runner.js';
import type {HopPool} from './hop-pool.js';
import {
	authOptions,
	chainOf,
	chainRole,
	hostKeyOptions,
	keepalive,
	type AskerFactory,
} from './ssh-options.js';

/** Looking for `gpujup host` again after its channel closed: 1 s, 2 s, doubling to 30 s. */
const agentBackoff: BackoffPolicy = {
	initialMs: 1000,
	stepMs: 2000,
	multiplier: 2,
	maxMs: 30_000,
	jitter: 0.1,
};

/** The running laptop side, as the session shell drives it (core/session-handle.ts). */
export type ConnectHandle = SessionHandle & {
	/** The laptop port Jupyter is forwarded to (differs from config with `--local-port 0`). */
	readonly localPort: number;
	readonly relay: SshHop;
	readonly host: SshHop;
	/** Every hop of the chain, the relay first. */
	readonly hops: readonly SshHop[];
	reconnect(): void;
	/** Through `gpujup host` on the GPU host; throws, explaining, when only the fallback is there. */
	restartJupyter(): Promise<void>;
	/** Why a restart is impossible now (the exec fallback: no `gpujup host`), or null. */
	restartBlocked(): string | null;
	/** `http://127.0.0.1:<local>/?token=…`, or null while the token is unknown. */
	urlWithToken(): string | null;
	/** Jupyter's token and the laptop port it is valid on, for the control socket only. */
	token(): {token: string; port: number} | null;
	/** `i`, `K`, `x`: through `gpujup host`, or Jupyter's REST API over the forward without one. */
	kernelAction(id: string, action: KernelAction): Promise<string>;
	dispose(): Promise<void>;
};

const noRestart =
	'restarting Jupyter needs `gpujup host` on the GPU host; without it, restart Jupyter there by hand';

/** A Jupyter started by hand logs where only it knows: say how its log gets here. */
const noLogHint = 'no Jupyter log: pass --jupyter-log FILE, or run `gpujup host` on the GPU host';

/** The relay as the user named it: the alias they typed, with its address beside it. */
export function relayLabel(config: RelayConfig): string {
	const {relay} = config;
	const address = relay.port === 22 ? relay.host : `${relay.host}:${relay.port}`;
	return relay.alias && relay.alias !== relay.host ? `${relay.alias} (${address})` : address;
}

/** The GPU host until its own name is known (no made-up `user@gpu-host`). */
export function gpuHostLabel(config: Config): string {
	return `GPU host (via :${config.relayPort})`;
}

/**
 * What the user reads for each hop: with `--relay`, the relay and `GPU host (via :19506)`;
 * from `~/.ssh/config`, each alias with its address (`p507 (via :19506)` behind a loopback port).
 */
export function hopLabels(config: RelayConfig): string[] {
	if (!config.hostAlias) return [relayLabel(config), gpuHostLabel(config)];
	return chainOf(config).map((hop, index) => {
		if (index > 0 && (hop.host === 'localhost' || hop.host === '127.0.0.1'))
			return `${hop.name} (via :${hop.port})`;
		const address = hop.port === 22 ? hop.host : `${hop.host}:${hop.port}`;
		return hop.name === hop.host ? address : `${hop.name} (${address})`;
	});
}

/** The store of a laptop-side run (connect, status, doctor): one hop per link of the chain. */
export function connectStore(
	config: RelayConfig,
	extra: {subtitle?: string; configFile?: string | null} = {},
): Store<AppState, AppAction> {
	const chain = chainOf(config);
	const labels = hopLabels(config);
	return createStore(
		reduce,
		initialState({
			role: 'connect',
			// Empty until the GPU host's `hostname` answers: the header says it is not reached yet.
			title: '',
			...extra,
			hops: chain.map((hop, index) =>
				initialHop(chainRole(index, chain.length), labels[index] ?? hop.name, {name: hop.name}),
			),
		}),
	);
}

/** The chain's hops in order; `relay` is the first and `host` the last (the same one alone). */
export type ChainHops = {
	readonly relay: SshHop;
	readonly host: SshHop;
	readonly hops: readonly SshHop[];
};

/**
 * The hops of `connect`, without any forward: each a new ssh2 Client over the one before it
 * (`forwardOut` to the next hop's host and port, as `ssh -J` asks, so a relay restricting
 * forwarding to permitopen="localhost:19506" works), each with its own host-key check,
 * keepalive and counters. A hop that drops takes down the ones after it only, which follow it
 * back in order. `connect` adds the forwards; `status` and `doctor` use the hops alone.
 */
export function createHops(
	config: RelayConfig,
	store: Store<AppState, AppAction>,
	asker: AskerFactory,
	pool?: HopPool,
): ChainHops {
	const chain = chainOf(config);
	const labels = hopLabels(config);
	// One key's passphrase is asked once for every hop.
	const keyCache: KeyCache = new Map();
	const hops: SshHop[] = [];
	for (const [index, target] of chain.entries()) {
		const role = chainRole(index, chain.length);
		const ask = asker(role);
		const via = hops[index - 1];
		const make = (onStatus: SshHopOptions['onStatus']) =>
			new SshHop({
				...hostKeyOptions(target.hostKeys, target.keyNames, ask),
				auth: {...authOptions(config, ask, target.identities), keyCache},
				...keepalive(config),
				name: role,
				label: labels[index] ?? target.name,
				place: {index, name: target.name},
				host: target.host,
				port: target.port,
				username: target.user,
				...(via ? {via, viaTarget: {host: target.host, port: target.port}} : {}),
				onStatus,
			});
		const onStatus: SshHopOptions['onStatus'] = (patch) => {
			store.dispatch({type: 'hop', hop: role, index, patch});
		};
		// A fleet: the hops before the GPU host are one connection for every host behind them.
		hops.push(
			pool && index < chain.length - 1
				? pool.hop(chain.slice(0, index + 1), make, onStatus)
				: make(onStatus),
		);
	}

	return {relay: hops[0]!, host: hops.at(-1)!, hops};
}

const hopTimeoutMs = 20_000;

/**
 * Waits for the hop's first outcome (`doctor`'s steps): its client, or the error that stopped it,
 * or a timeout after 20 s.
 */
export async function firstOutcome(
	hop: SshHop,
	lastError: () => ClassifiedError | null,
): Promise<Client | ClassifiedError> {
	const deadline = Date.now() + hopTimeoutMs;
	while (Date.now() < deadline) {
		if (hop.client) return hop.client;
		const error = lastError();
		if (error && (hop.state === 'failed' || hop.state === 'waiting' || hop.state === 'lost'))
			return error;

		await new Promise((resolve) => {
			setTimeout(resolve, 50);
		});
	}

	return {kind: 'timeout', message: `no SSH session within ${hopTimeoutMs / 1000} s`};
}

/** Start every hop; each after the first waits for the one before it. */
export function startHops(hops: readonly SshHop[]): void {
	for (const hop of hops) hop.start();
}

/** Dispose the hops, the GPU host's first. */
export async function disposeHops(hops: readonly SshHop[]): Promise<void> {
	for (const hop of [...hops].reverse()) await hop.dispose();
}

/**
 * A chain built by someone else (`connect --slurm`: the login node's hops, then the compute node's
 * once the job runs): runConnect uses it instead of making one, and disposes only `owned`.
 */
export type ConnectTail = {
	readonly chain: ChainHops;
	readonly owned: readonly SshHop[];
	/** Jupyter's token where no runtime file or agent tells it (the one gpujup made). */
	readonly token?: string | null;
	readonly pid?: number | null;
	/** Where Jupyter (and `--forward`s) listen as the last hop sees them; default 127.0.0.1. */
	readonly remoteHost?: string;
	/** Runs the look-around commands (listeners, processes) where Jupyter is: `srun --overlap`. */
	readonly wrapCommand?: (command: string) => string;
	/** Whether the last hop's label takes the GPU host's name (default true). */
	readonly relabel?: boolean;
};

/**
 * `gpujup connect`: both hops, the local forward to Jupyter (and `--forward`s), Jupyter's state
 * and the GPUs watched over the second hop.
 */
export async function runConnect(
	config: RelayConfig,
	store: Store<AppState, AppAction>,
	asker: AskerFactory,
	pool?: HopPool,
	tail?: ConnectTail,
): Promise<ConnectHandle> {
	const {relay, host, hops} = tail?.chain ?? createHops(config, store, asker, pool);
	// The hops this chain disposes: a shared one is the pool's (its start is idempotent), and of a
	// chain handed in (ConnectTail) only those it says it owns.
	const ownHops = tail?.owned ?? (pool ? hops.filter((hop) => !pool.owns(hop)) : hops);
	const remoteHost = tail?.remoteHost ?? '127.0.0.1';
	const wrap = tail?.wrapCommand ?? ((command: string) => command);
	const disposers: Array<() => Promise<void> | void> = [];
	try {
		const jupyterForward = await startLocalForward({
			port: config.localPort,
			remoteHost,
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
				remoteHost,
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
			knownToken: tail?.token ?? null,
			knownPid: tail?.pid ?? null,
			remoteHost,
			...(tail?.wrapCommand ? {wrapCommand: tail.wrapCommand} : {}),
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
		let agentTimer: NodeJS.Timeout | undefined;
		let agentAttempt = 0;
		let fallbackOn = false;
		let notedOtherPort = false;
		/** Bumped by every search and by a hop loss: events of an older search are dropped. */
		let agentSearch = 0;
		/** How far the agent's log has reached us, so a re-subscribe replays only what is new. */
		let agentLog: {instance: string | null; seq: number; notifySeq: number | null} | null = null;
		disposers.push(() => {
			clearTimeout(agentTimer);
			agent?.connection.close();
		});

		/** `gpujup host` runs there, but for a Jupyter on another port than ours. */
		const otherServer = () =>
			`gpujup host supervises the Jupyter on ${jupyter.agentPort() ?? 'another port'}, not ${config.jupyterPort}: restart that one by hand`;
		/** Set while the exec fallback serves this GPU host hop: no agent to restart Jupyter. */
		let inFallback = false;

		/**
		 * Without `gpujup host`, the laptop watches the kernels itself: Jupyter's REST API through
		 * the forward (with the runtime file's token, once known), the process table by one exec a
		 * round, the GPU processes of the exec-fallback stream. Notifications are then decided here,
		 * so they need the laptop awake.
		 */
		let kernelMonitor: KernelMonitor | null = null;
		const stopKernelMonitor = () => {
			kernelMonitor?.dispose();
			kernelMonitor = null;
			store.dispatch({type: 'kernels', kernels: []});
		};

		disposers.push(stopKernelMonitor);
		const startKernelMonitor = (client: Client) => {
			stopKernelMonitor();
			kernelMonitor = new KernelMonitor({
				server() {
					const token = jupyter.token();
					return token && currentClient === client ? {port: localPort, token} : null;
				},
				gpuProcesses: () => store.getSnapshot().gpu?.processes ?? [],
				notifyAfterMs: config.notifyAfterS * 1000,
				async readProcs() {
					const {stdout} = await execText(client, wrap(procDumpCommand), {
						timeoutMs: 10_000,
						maxBytes: 8 * 1024 * 1024,
					});
					return parseProcDump(stdout, Date.now());
				},
				onKernels(kernels, foreignGpuPids) {
					store.dispatch({type: 'kernels', kernels, foreignGpuPids});
				},
				onNotify(notification) {
					deliverNotification(store.dispatch, notification);
				},
			});
			kernelMonitor.start();
		};

		/** No `gpujup host` there (or one we cannot speak to): exec fallback, with a note. */
		const fallback = (client: Client, why: string) => {
			inFallback = true;
			store.dispatch({type: 'source', source: `exec fallback (${why})`});
			if (!logTail) store.dispatch({type: 'log-hint', hint: noLogHint});
			if (fallbackOn) return;
			fallbackOn = true;
			gpu.start();
			logTail?.attach(client);
			startKernelMonitor(client);
		};

		const stopFallback = () => {
			if (!fallbackOn) return;
			fallbackOn = false;
			void gpu.stop();
			logTail?.detach();
			stopKernelMonitor();
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
							// An agent that found none (or predates the field) sends none.
							foreignPids: event.foreignPids ?? [],
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
					// The agent's log is its own Jupyter's: not ours when we forward another port.
					if (!jupyter.agentServes()) break;
					store.dispatch({type: 'log', lines: [maskTokens(event.line, jupyter.token())]});
					break;
				}

				case 'jupyter': {
					jupyter.agentEvent(event);
					break;
				}

				case 'kernel': {
					if (event.state === 'gone') store.dispatch({type: 'kernel-gone', id: event.id});
					else store.dispatch({type: 'kernel', kernel: kernelStatusOf(event)});
					break;
				}

				case 'notify': {
					// Its log line comes as the agent's own `log` event.
					const {type: _type, at: _at, seq: _seq, ...notification} = event;
					store.dispatch({type: 'notify', notification, at: Date.now()});
					break;
				}

				default: {
					break;
				}
			}
		};

		/** Look for the agent again, later: it may be restarting (upgrade, systemd). */
		const retryAgent = (client: Client) => {
			clearTimeout(agentTimer);
			agentAttempt += 1;
			agentTimer = setTimeout(
				() => {
					if (currentClient === client && !agent) findAgent(client);
				},
				Math.max(1000, nextDelay(agentAttempt + 1, agentBackoff)),
			);
			agentTimer.unref?.();
		};

		const findAgent = (client: Client) => {
			const search = ++agentSearch;
			const resume = agentLog?.instance
				? {
						instance: agentLog.instance,
						seq: agentLog.seq,
						...(agentLog.notifySeq === null ? {} : {notifySeq: agentLog.notifySeq}),
					}
				: null;
			const position = {
				instance: null as string | null,
				seq: resume?.seq ?? 0,
				notifySeq: null as number | null,
			};
			let sawLog = false;
			const onEvent = (event: JsonEvent) => {
				if (search !== agentSearch) return;
				if (event.type === 'log' && typeof event.seq === 'number') {
					position.seq = event.seq;
					sawLog = true;
				}

				if (event.type === 'notify' && typeof event.seq === 'number')
					position.notifySeq = Math.max(position.notifySeq ?? 0, event.seq);

				onAgentEvent(event);
			};

			connectAgent(client, config.profile ?? 'default', onEvent, resume, (note) => {
				store.dispatch({type: 'log', lines: [`[gpujup] agent: ${note}`]});
			}).then(
				(found) => {
					if (currentClient !== client || agent || search !== agentSearch) {
						found?.connection.close();
						return;
					}

					if (!found) {
						fallback(client, 'no gpujup host on the GPU host');
						retryAgent(client);
						return;
					}

					// A new run of gpujup host numbers its log afresh.
					if (!sawLog && found.instance !== resume?.instance) position.seq = 0;
					// Where its notifications stand now: the next visit asks for those after.
					if (found.notifySeq !== null)
						position.notifySeq = Math.max(position.notifySeq ?? 0, found.notifySeq);
					position.instance = found.instance;
					agentLog = position;
					agent = found;
					agentAttempt = 0;
					inFallback = false;
					stopFallback();
					store.dispatch({type: 'source', source: 'gpujup host'});
					store.dispatch({type: 'log-hint', hint: null});
					jupyter.setAgent(
						{requestToken: async () => requestAgentToken(found.connection)},
						found.token,
					);
					const agentPort = jupyter.agentPort();
					if (agentPort !== null && agentPort !== config.jupyterPort && !notedOtherPort) {
						notedOtherPort = true;
						store.dispatch({
							type: 'log',
							lines: [
								`[gpujup] gpujup host supervises the Jupyter on ${agentPort}, not this forward's ${config.jupyterPort}: its log is not shown here (--jupyter-log FILE tails another)`,
							],
						});
					}
					found.connection.on('close', () => {
						if (agent !== found) return;
						agent = null;
						jupyter.setAgent(null);
						if (currentClient !== client) return;
						fallback(client, 'the agent channel closed; looking for gpujup host again');
						retryAgent(client);
					});
				},
				(error: unknown) => {
					if (currentClient !== client) return;
					const why = error instanceof Error ? error.message : String(error);
					fallback(client, `gpujup host did not answer: ${why}`);
					retryAgent(client);
				},
			);
		};

		const onHostReady = (client: Client) => {
			currentClient = client;
			jupyter.attach(client);
			// The GPU host's own name, for the title and the path line (p507, not user@gpu-host).
			execText(client, wrap('hostname'), {timeoutMs: 10_000}).then(
				({stdout}) => {
					const name = stdout.trim().split('\n')[0]?.trim();
					if (!name || !/^[\w.-]{1,64}$/.test(name)) return;
					store.dispatch({type: 'title', title: name});
					if (tail?.relabel === false) return;
					store.dispatch({
						type: 'hop',
						hop: 'host',
						index: hops.length - 1,
						patch: {label: `${name} (via :${chainOf(config).at(-1)!.port})`},
					});
				},
				() => {
					// No exec: the title stays the user's.
				},
			);
			agentAttempt = 0;
			findAgent(client);
		};

		const onHostDown = () => {
			currentClient = null;
			inFallback = false;
			agentSearch += 1;
			clearTimeout(agentTimer);
			agent?.connection.close();
			agent = null;
			jupyter.detach('the GPU host hop is down');
			fallbackOn = false;
			logTail?.detach();
			stopKernelMonitor();
			void gpu.stop();
		};

		host.on('ready', onHostReady);
		host.on('down', onHostDown);
		// A hop this run does not own outlives it: leave it without our listeners.
		disposers.push(() => {
			host.off('ready', onHostReady);
			host.off('down', onHostDown);
		});
		startHops(hops);
		// A chain handed in may be up already (`--slurm` forwarding from the login node).
		if (host.client) onHostReady(host.client);
		return {
			localPort,
			relay,
			host,
			hops,
			reconnect() {
				for (const hop of hops) hop.reconnectNow();
			},
			restartBlocked: () =>
				!agent && inFallback ? noRestart : agent && !jupyter.agentServes() ? otherServer() : null,
			async restartJupyter() {
				if (!agent) throw new Error(noRestart);
				if (!jupyter.agentServes()) throw new Error(otherServer());
				await agent.connection.request('restart-jupyter', 180_000);
				jupyter.refresh();
			},
			token() {
				const token = jupyter.token();
				return token ? {token, port: localPort} : null;
			},
			async kernelAction(id, action) {
				if (agent) {
					const {message} = await agent.connection.request(
						'kernel-action',
						action === 'restart' ? 70_000 : 20_000,
						{kernel: id, action},
					);
					return message ?? `${action}: done`;
				}

				if (kernelMonitor) return kernelMonitor.act(id, action);
				throw new Error('no kernels are watched: the GPU host hop is down');
			},
			urlWithToken() {
				const token = jupyter.token();
				return token ? jupyterUrlWithToken(localPort, token) : null;
			},
			async dispose() {
				for (const dispose of disposers.reverse()) {
					await dispose();
				}

				await disposeHops(ownHops);
			},
		};
	} catch (error) {
		for (const dispose of disposers.reverse()) {
			await dispose();
		}

		await disposeHops(ownHops);
		throw error;
	}
}
