import {GpuStream} from '../services/gpu-stream.js';
import {localRunner} from '../services/command-runner.js';
import {startHostStats} from '../services/host-stats.js';
import type {Config, RelayConfig} from '../config/types.js';
import {
	initialHop,
	initialState,
	reduce,
	type AppAction,
	type AppState,
} from '../core/app-state.js';
import {errnoOf} from '../core/classify-error.js';
import {jupyterUrlWithToken} from '../core/events.js';
import type {SessionHandle} from '../core/session-handle.js';
import {
	initialServiceMemory,
	serviceNotifications,
	type KernelAction,
	type Notification,
} from '../core/kernels.js';
import type {GpuProcess} from '../core/types.js';
import {KernelMonitor} from '../services/kernel-monitor.js';
import {deliverNotification, NotifyUrl, safeOrigin} from '../services/notify-url.js';
import {createStore, type Store} from '../core/store.js';
import {requestControl} from '../services/control-socket.js';
import {clearRecordedJupyter, recordedJupyter} from '../services/jupyter-files.js';
import {JupyterSupervisor, terminateJupyter} from '../services/jupyter-supervisor.js';
import {ensurePrivateDir} from '../services/private-file.js';
import {formatPairing} from '../core/pairing.js';
import {ReverseTunnel, type PairingKeys} from '../services/reverse-tunnel.js';
import os from 'node:os';
import {osUser} from '../config/helpers.js';
import {
	authOptions,
	configSources,
	controlSocketPath,
	hostKeyOptions,
	keepalive,
	profileDir,
	relayAsTyped,
	relayKeyNames,
	type Asker,
} from './ssh-options.js';

/** What `runHost` needs besides the config: the store, and the dashboard's prompts (TTY only). */
export type HostIo = {
	readonly store: Store<AppState, AppAction>;
	readonly askSecret?: Asker['askSecret'];
	readonly confirmHostKey?: Asker['confirmHostKey'];
	/** The environment Jupyter starts with (default `process.env`). */
	readonly jupyterEnv?: NodeJS.ProcessEnv;
	/**
	 * Given the handle as soon as it exists, before Jupyter is started or adopted: the control
	 * socket (wiring/control.ts) can stop or restart it while it starts.
	 */
	readonly attach?: (handle: HostHandle) => void;
};

/**
 * The running host role, as the session shell drives it (core/session-handle.ts): `r` reconnects
 * the reverse tunnel, `j` (confirmed) restarts Jupyter, a new process with its kernels lost; the
 * token only while Jupyter runs, for `gpujup url` and the copy key.
 */
export type HostHandle = SessionHandle & {
	/** Stop the tunnel and the services; Jupyter keeps running unless `stopJupyter`. */
	dispose(options?: {stopJupyter?: boolean}): Promise<void>;
	/** `i`, `K`, `x` on a kernel (and the socket's `kernel-action`): what was done, in words. */
	kernelAction(id: string, action: KernelAction): Promise<string>;
};

/** `<relay> (listening :<relay-port>)`, the reverse hop's label. */
export function reverseLabel(config: RelayConfig): string {
	const {relay} = config;
	return `${relay.alias ?? relay.host} (listening :${config.relayPort})`;
}

/**
 * The GPU host's store: its own name in the header, `→` the relay as the user typed it
 * (`→ me@relay.example.org:2222`, or the alias), and the reverse hop.
 */
export function hostStore(config: RelayConfig): Store<AppState, AppAction> {
	const {relay} = config;
	const name = relay.alias ?? relay.host;
	return createStore(
		reduce,
		initialState({
			role: 'host',
			title: os.hostname(),
			subtitle: `→ ${relayAsTyped(relay)}`,
			configFile: configSources(config),
			hops: [initialHop('reverse', reverseLabel(config), {name})],
		}),
	);
}

/**
 * `gpujup host`: adopt or start Jupyter and keep the reverse tunnel up; everything reports into
 * `io.store`. The session serves the control socket first (wiring/control.ts), refusing when
 * another host runs for the profile.
 */
export async function runHost(config: RelayConfig, io: HostIo): Promise<HostHandle> {
	const dir = profileDir(config);
	ensurePrivateDir(dir);

	let supervisor: JupyterSupervisor | null = null;
	const stopJupyter = async () => {
		const pid = supervisor?.status.pid ?? null;
		await supervisor?.stop();
		return {pid};
	};

	// Only while Jupyter answers on its port (the supervisor checked that its pid owns the socket):
	// a URL handed out while the port is down or held by another user would give the token away.
	const token = () => {
		if (!supervisor || supervisor.status.state !== 'running' || supervisor.status.pid === null)
			return null;
		return {token: supervisor.token(), port: supervisor.port};
	};

	// The pairing string, logged when it is new (first session, or a key changed): no secret in it.
	let pairingLine = '';
	const tunnel = new ReverseTunnel({
		...tunnelOptions(config, io),
		onStatus: (patch) => io.store.dispatch({type: 'hop', hop: 'reverse', patch}),
		onPairingKeys(keys) {
			const line =
				'problem' in keys
					? `[gpujup] no pairing string for \`gpujup pair\` yet: ${keys.problem}`
					: `[gpujup] pair a laptop: gpujup pair '${pairingString(config, keys)}'`;
			if (line === pairingLine) return;
			pairingLine = line;
			io.store.dispatch({type: 'log', lines: [line]});
		},
	});

	const notifyUrl = config.notifyUrl
		? new NotifyUrl({
				url: config.notifyUrl,
				onProblem(message) {
					io.store.dispatch({type: 'log', lines: [`[gpujup] ${message}`]});
				},
			})
		: null;
	if (config.notifyUrl)
		io.store.dispatch({
			type: 'log',
			lines: [`[gpujup] notifications go to ${safeOrigin(config.notifyUrl)}`],
		});
	const deliver = (notification: Notification) => {
		deliverNotification(io.store.dispatch, notification, notifyUrl);
	};

	let gpuProcesses: readonly GpuProcess[] = [];
	const kernels = new KernelMonitor({
		server() {
			// Only the supervised server while the supervisor says it runs: the token is sent to no other.
			if (!supervisor || supervisor.status.state !== 'running') return null;
			return {port: supervisor.port, token: supervisor.token()};
		},
		gpuProcesses: () => gpuProcesses,
		notifyAfterMs: config.notifyAfterS * 1000,
		onKernels(list, foreignGpuPids) {
			io.store.dispatch({type: 'kernels', kernels: list, foreignGpuPids});
		},
		onNotify: deliver,
	});
	const kernelAction = async (id: string, action: KernelAction) => kernels.act(id, action);

	supervisor = new JupyterSupervisor({
		dir,
		port: config.jupyterPort,
		cmd: config.jupyterCmd,
		env: config.env,
		notebookDir: config.notebookDir,
		dispatch: io.store.dispatch,
		...(io.jupyterEnv ? {baseEnv: io.jupyterEnv} : {}),
	});
	const running = supervisor;
	let started = false;
	let disposed = false;
	const gpu = new GpuStream({
		runner: localRunner(),
		nvidiaSmi: config.nvidiaSmi,
		onStatus(status) {
			gpuProcesses = status.processes;
			io.store.dispatch({type: 'gpu', gpu: status});
		},
	});
	let unwatch = () => {};
	let hostStats: {dispose(): void} | null = null;
	const handle: HostHandle = {
		async dispose(options = {}) {
			if (disposed) return;
			disposed = true;
			unwatch();
			kernels.dispose();
			notifyUrl?.dispose();
			hostStats?.dispose();
			await Promise.all([
				gpu.dispose(),
				tunnel.dispose(),
				options.stopJupyter
					? running.stop().then(async () => running.dispose())
					: running.dispose(),
			]);
		},
		reconnect: () => {
			if (started) tunnel.reconnectNow();
		},
		restartJupyter: async () => running.restart(),
		urlWithToken() {
			const t = token();
			return t ? jupyterUrlWithToken(t.port, t.token) : null;
		},
		token,
		kernelAction,
		stopJupyter,
	};
	io.attach?.(handle);
	try {
		await supervisor.start();
	} catch (error) {
		await handle.dispose();
		throw error;
	}

	if (disposed) return handle;
	started = true;

	tunnel.start();
	// The GPUs and the box itself, served to laptops through the control socket's subscribe.
	gpu.start();
	kernels.start();
	// Jupyter crashed and is back, the tunnel is back after a long time down: news for the user.
	let memory = initialServiceMemory;
	const watchServices = () => {
		const state = io.store.getSnapshot();
		const next = serviceNotifications(
			memory,
			{
				reverse: state.hops.find((h) => h.hop === 'reverse')?.state ?? null,
				jupyter: state.jupyter,
			},
			Date.now(),
			config.tunnelBackAfterS * 1000,
		);
		memory = next.memory;
		for (const note of next.notes) deliver(note);
	};

	watchServices();
	unwatch = io.store.subscribe(watchServices);
	hostStats = startHostStats({
		intervalMs: 2000,
		onStats: (stats) => io.store.dispatch({type: 'host-stats', host: stats}),
	});
	return handle;
}

/** The reverse tunnel's options from the config (for `host` and `host --pair`). */
function tunnelOptions(config: RelayConfig, io: Pick<HostIo, 'askSecret' | 'confirmHostKey'>) {
	const {relay} = config;
	return {
		label: reverseLabel(config),
		relay: {host: relay.host, port: relay.port, username: relay.user},
		relayPort: config.relayPort,
		sshPort: config.sshPort,
		...hostKeyOptions(
			config.relayHostKeys,
			relayKeyNames(config),
			io.confirmHostKey ? {confirmHostKey: io.confirmHostKey} : {},
		),
		auth: authOptions(config, io.askSecret ? {askSecret: io.askSecret} : {}),
		...keepalive(config),
	};
}

/** The user a laptop logs in as on this machine: the one running gpujup host. */
/** The string `gpujup pair` takes, from the config and the keys the tunnel read. */
export function pairingString(config: RelayConfig, keys: PairingKeys): string {
	const {relay} = config;
	return formatPairing({
		relay: {user: relay.user, host: relay.host, port: relay.port},
		relayPort: config.relayPort,
		hostUser: osUser(),
		jupyterPort: config.jupyterPort,
		relayKey: keys.relayKey,
		hostKey: keys.hostKey,
	});
}

/**
 * `gpujup host --pair`: one session to the relay (the port held for the time it takes, unless a
 * tunnel to this machine already holds it), both keys read, the pairing string resolved. Rejects
 * with the first error (relay unreachable, key refused, the port leads elsewhere): no retry.
 */
export async function pairHost(config: RelayConfig): Promise<string> {
	let settle: {resolve: (keys: PairingKeys) => void; reject: (error: Error) => void} | undefined;
	const result = new Promise<PairingKeys>((resolve, reject) => {
		settle = {resolve, reject};
	});
	const tunnel = new ReverseTunnel({
		...tunnelOptions(config, {}),
		pairOnly: true,
		onStatus(patch) {
			if (patch.error && (patch.state === 'waiting' || patch.state === 'failed'))
				settle?.reject(new Error(`${reverseLabel(config)}: ${patch.error.message}`));
		},
		onPairingKeys(keys) {
			if ('problem' in keys) settle?.reject(new Error(keys.problem));
			else settle?.resolve(keys);
		},
	});
	tunnel.start();
	try {
		return pairingString(config, await result);
	} finally {
		await tunnel.dispose();
	}
}

/**
 * `gpujup host --stop-jupyter`: ask the running host to stop its Jupyter (so it does not restart
 * it as a crash); with no host running, stop the one the profile's pid file names. Resolves the
 * message to print.
 */
export async function stopJupyterForProfile(config: Config): Promise<string> {
	const profile = config.profile ?? 'default';
	try {
		const {pid} = await requestControl(controlSocketPath(config, 'host'), 'stop-jupyter', 30_000);
		return `stopped Jupyter${pid === null ? '' : ` (pid ${pid})`} of the running gpujup host for profile ${profile}`;
	} catch (error) {
		const code = errnoOf(error);
		if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw error;
	}

	const dir = profileDir(config);
	const recorded = recordedJupyter(dir);
	if (!recorded) {
		clearRecordedJupyter(dir);
		return `no Jupyter running for profile ${profile}`;
	}

	await terminateJupyter(recorded.pid);
	clearRecordedJupyter(dir);
	return `stopped Jupyter (pid ${recorded.pid}, port ${recorded.port}) for profile ${profile}`;
}
