/**
 * `gpujup connect --slurm`: the chain ends at the cluster's login node (any chain: `--relay`, an
 * alias with ProxyJump); over that hop gpujup finds the user's job `gpujup-<profile>` or submits
 * one (services/slurm-job.ts), follows it in the store (pending with Slurm's reason, running on its
 * node, time left), and once the job wrote where its Jupyter is, appends the compute node as the
 * chain's last hop — `forwardOut(node, --node-ssh-port)` from the login node, an SSH hop of its own
 * — and runs the same connect machinery over it as for a box (wiring/connect.ts), with the token
 * gpujup made for the job. The job outlives gpujup: a restart finds it again by name.
 */
import type {ChainHop, Config, SlurmConfig} from '../config/types.js';
import {
	initialHop,
	initialState,
	reduce,
	type AppAction,
	type AppState,
	type StoredJob,
} from '../core/app-state.js';
import {hostPatternFor} from '../core/known-hosts.js';
import type {KernelAction} from '../core/kernels.js';
import type {SessionHandle} from '../core/session-handle.js';
import {
	jobFiles,
	jobName,
	jobNotifications,
	jobObject,
	type JobEndpoint,
	type SlurmJob,
} from '../core/slurm.js';
import {shellQuote} from '../core/shell.js';
import {createStore, type Store} from '../core/store.js';
import type {HopStatus} from '../core/types.js';
import {readFileSync} from 'node:fs';
import path from 'node:path';
import {sshRunner} from '../services/command-runner.js';
import {ensurePrivateDir, writePrivateFile} from '../services/private-file.js';
import {deliverNotification} from '../services/notify-url.js';
import {SlurmJobService, type SlurmError, type SlurmJobOptions} from '../services/slurm-job.js';
import type {KeyCache} from '../services/ssh-auth.js';
import {SshHop} from '../services/ssh-hop.js';
import {disposeHops, runConnect, startHops, type ConnectHandle} from './connect.js';
import {
	authOptions,
	chainOf,
	chainRole,
	hostKeyOptions,
	keepalive,
	profileDir,
	type AskerFactory,
} from './ssh-options.js';

/** The chain to the login node: the alias's (ProxyJump and all), or `--relay` alone. */
export function loginChain(config: SlurmConfig): readonly ChainHop[] {
	if (config.hostAlias && config.chain.length > 0) return config.chain;
	return chainOf(config).slice(0, 1);
}

/**
 * The compute node as one more hop: reached from the login node at `node:--node-ssh-port` as the
 * same user with the same keys; its host key looked up as `[node]:port` (or `node`) under the
 * login node's policy (a cluster's ssh_known_hosts usually lists its nodes).
 */
export function nodeTarget(config: SlurmConfig, login: ChainHop, node: string): ChainHop {
	const port = config.slurm.nodeSshPort;
	const host = node.toLowerCase();
	return {
		name: node,
		host,
		port,
		user: login.user,
		identities: login.identities,
		hostKeys: {...login.hostKeys, alias: null, pin: null},
		keyNames: [hostPatternFor(host, port)],
	};
}

const address = (hop: {host: string; port: number}) =>
	hop.port === 22 ? hop.host : `${hop.host}:${hop.port}`;

const hopLabel = (hop: ChainHop) =>
	hop.name === hop.host ? address(hop) : `${hop.name} (${address(hop)})`;

const pendingNodeLabel = 'compute node (waiting for the job)';

/** How a node says no to ssh: refused, forbidden (the login node's sshd), auth (pam_slurm_adopt). */
const refusals: ReadonlySet<string> = new Set(['refused', 'forbidden', 'auth']);

/** The refusal in words (the hop's own message speaks of a GPU host's reverse tunnel). */
const refusalWords: Readonly<Record<string, string>> = {
	refused: 'refused: no sshd there?',
	forbidden: "the login node's sshd forbids forwarding there",
	auth: 'the node refused the login: pam_slurm_adopt lets in only users with a job there',
};

/** The store of `connect --slurm`: the login chain's hops, then the compute node's (once known). */
export function slurmStore(
	config: SlurmConfig,
	extra: {configFile?: string | null} = {},
): Store<AppState, AppAction> {
	const login = loginChain(config);
	const total = login.length + 1;
	return createStore(
		reduce,
		initialState({
			role: 'connect',
			title: '',
			subtitle: `Slurm via ${login.map((hop) => hop.name).join(' → ')}`,
			...extra,
			hops: [
				...login.map((hop, index) =>
					initialHop(chainRole(index, total), hopLabel(hop), {name: hop.name}),
				),
				initialHop('host', pendingNodeLabel, {name: 'node'}),
			],
		}),
	);
}

/**
 * The login chain's hops (started by the caller) and a maker for the compute node's, each an
 * SshHop over the one before, dispatching into the store at its place in the chain (the node is
 * the last, `host`; the login node `relay` or `jump`). One key's passphrase is asked once.
 */
export function createSlurmHops(
	config: SlurmConfig,
	store: Store<AppState, AppAction>,
	asker: AskerFactory,
): {
	loginHops: SshHop[];
	makeHop: (target: ChainHop, index: number, via: SshHop | undefined, label: string) => SshHop;
} {
	const login = loginChain(config);
	const total = login.length + 1;
	const keyCache: KeyCache = new Map();
	const makeHop = (target: ChainHop, index: number, via: SshHop | undefined, label: string) => {
		const role = chainRole(index, total);
		const ask = asker(role);
		return new SshHop({
			...hostKeyOptions(target.hostKeys, target.keyNames, ask),
			auth: {...authOptions(config, ask, target.identities), keyCache},
			...keepalive(config),
			name: role,
			label,
			host: target.host,
			port: target.port,
			username: target.user,
			...(via ? {via, viaTarget: {host: target.host, port: target.port}} : {}),
			onStatus(patch) {
				// The node refusing the login (pam_slurm_adopt) has a way round it, the forward from
				// the login node: not final, so --no-tui does not end on it.
				const refusedNode =
					index === total - 1 && patch.state === 'failed' && patch.error?.kind === 'auth';
				store.dispatch({
					type: 'hop',
					hop: role,
					index,
					patch: refusedNode ? {...patch, state: 'waiting'} : patch,
				});
			},
		});
	};
	const loginHops: SshHop[] = [];
	for (const [index, target] of login.entries())
		loginHops.push(makeHop(target, index, loginHops[index - 1], hopLabel(target)));
	return {loginHops, makeHop};
}

/**
 * Where this profile's cluster refused ssh to its nodes, the laptop remembers it (a 0600 file in
 * the profile's state dir), so the next job gpujup submits has Jupyter on the node's address at once.
 */
function noNodeSshFile(config: Config): string {
	return path.join(profileDir(config), 'slurm-no-node-ssh');
}

export function rememberedNoNodeSsh(config: Config): boolean {
	try {
		return readFileSync(noNodeSshFile(config), 'utf8').trim() !== '';
	} catch {
		return false;
	}
}

function rememberNoNodeSsh(config: Config, why: string): void {
	try {
		ensurePrivateDir(profileDir(config));
		writePrivateFile(noNodeSshFile(config), `${new Date().toISOString()} ${why}\n`);
	} catch {
		// Only a shortcut for next time.
	}
}

/** What the user reads of the job's state in the log. */
export function jobLine(job: SlurmJob): string {
	switch (job.state) {
		case 'PENDING': {
			return `[gpujup] job ${job.id} PENDING${job.reason ? ` (${job.reason})` : ''}`;
		}
		case 'RUNNING':
		case 'COMPLETING': {
			return `[gpujup] job ${job.id} ${job.state} on ${job.node ?? 'its node'}`;
		}
		case 'ENDED': {
			return `[gpujup] job ${job.id} ended (${job.reason ?? job.slurmState}): r submits a new one`;
		}
	}
}

/** The running `connect --slurm`, as the session shell drives it. */
export type SlurmHandle = SessionHandle & {
	readonly service: SlurmJobService;
	/** The connect machinery over the compute node, while the job runs and its node is reached. */
	tail(): ConnectHandle | null;
};

/**
 * What the job service (and `doctor --slurm`'s checks) need from the config, commands going to
 * the login node `loginHop`: the same for connect, status and doctor.
 */
export function slurmJobOptions(config: SlurmConfig, loginHop: SshHop): SlurmJobOptions {
	const settings = config.slurm;
	return {
		runner: sshRunner(() => loginHop.client),
		profile: config.profile ?? 'default',
		sbatchArgs: settings.sbatchArgs,
		env: settings.env ?? {kind: 'none'},
		jupyterCmd: config.jupyterCmd,
		notebookDir: settings.notebookDir,
	};
}

/** Options the tests (and only they) change. */
export type SlurmConnectOptions = {
	/** How often squeue is asked (default 5 s). */
	readonly pollMs?: number;
};

export async function runSlurmConnect(
	config: SlurmConfig,
	store: Store<AppState, AppAction>,
	asker: AskerFactory,
	options: SlurmConnectOptions = {},
): Promise<SlurmHandle> {
	const settings = config.slurm;
	const profile = config.profile ?? 'default';
	const login = loginChain(config);
	const log = (line: string) => {
		store.dispatch({type: 'log', lines: [line]});
	};

	const {makeHop, loginHops} = createSlurmHops(config, store, asker);
	const loginHop = loginHops.at(-1)!;

	const service = new SlurmJobService({
		...slurmJobOptions(config, loginHop),
		...(options.pollMs ? {pollMs: options.pollMs} : {}),
		...(rememberedNoNodeSsh(config) ? {listen: 'node' as const} : {}),
	});

	let disposed = false;
	let seen: SlurmJob | null = null;
	/** Set while a cancel asked for at quit has not been confirmed (its failure, in words). */
	let uncancelled: string | null = null;
	let attached = false;
	let attaching = false;
	let lastError: string | null = null;
	/** The connect machinery over the node, and the endpoint it was built for. */
	let tail: {handle: ConnectHandle; endpoint: JobEndpoint; unwatch: () => void} | null = null;
	/** A job whose Jupyter the login node cannot reach (loopback only, ssh to its node refused). */
	let stuck: JobEndpoint | null = null;
	/** Bumped whenever the tail is to change: a build that finds it moved on throws its work away. */
	let tailEpoch = 0;
	let building: Promise<void> = Promise.resolve();
	/** With `--local-port 0`, the port picked first is kept for the jobs after. */
	let localPort = config.localPort;
	let dir: string | null = null;

	const storeJob = (job: SlurmJob | null) => {
		const stored: StoredJob | null = job
			? {...jobObject(job), seenAt: Date.now(), onQuit: settings.onQuit}
			: null;
		store.dispatch({type: 'job', job: stored});
	};

	const slurmError = (error: SlurmError) => {
		// A login node that is down shows as its hop; Slurm's own complaints go to the log, once.
		if (error.kind === 'link') return;
		if (error.message === lastError) return;
		lastError = error.message;
		log(`[gpujup] slurm: ${error.message}`);
	};

	/**
	 * Ends the tail there is (its forward, its node hop) under a new epoch; resolves that epoch,
	 * or null once a later change or the quit has overtaken it.
	 */
	const dropTail = async (): Promise<number | null> => {
		const epoch = ++tailEpoch;
		const old = tail;
		tail = null;
		old?.unwatch();
		await old?.handle.dispose();
		return epoch === tailEpoch && !disposed ? epoch : null;
	};

	const teardownTail = async () => {
		if (!tail) {
			tailEpoch += 1;
			return;
		}
		await dropTail();
		store.dispatch({
			type: 'hop',
			hop: 'host',
			index: login.length,
			patch: {label: pendingNodeLabel, state: 'closed', error: null, rttMs: null},
		});
		store.dispatch({type: 'jupyter', jupyter: null});
	};

	const nodeEntry = (patch: Partial<Omit<HopStatus, 'hop' | 'index'>>) => {
		store.dispatch({type: 'hop', hop: 'host', index: login.length, patch});
	};

	/** Token, log dir; null when the tail moved on meanwhile. */
	const tailInputs = async (epoch: number) => {
		const token = await service.readToken().catch((error: unknown) => {
			log(`[gpujup] ${error instanceof Error ? error.message : String(error)}`);
			return null;
		});
		dir ??= await service.dir();
		return epoch === tailEpoch && !disposed ? {token, dir} : null;
	};

	const tailConfig = (
		endpoint: JobEndpoint,
		logDir: string,
		chain: readonly ChainHop[],
	): SlurmConfig => ({
		...config,
		hostAlias: config.hostAlias ?? login[0]!.name,
		chain,
		jupyterPort: endpoint.port,
		localPort,
		// The job's output is Jupyter's log, on the shared filesystem the node sees too.
		jupyterLog: jobFiles(logDir, endpoint.jobId).log,
	});

	const settle = async (
		epoch: number,
		endpoint: JobEndpoint,
		handle: ConnectHandle,
		unwatch: () => void,
		how: string,
	) => {
		if (epoch !== tailEpoch || disposed) {
			unwatch();
			await handle.dispose();
			return;
		}
		localPort = handle.localPort;
		tail = {handle, endpoint, unwatch};
		log(
			`[gpujup] job ${endpoint.jobId}: Jupyter on ${endpoint.node}'s ${endpoint.host}:${endpoint.port} (pid ${endpoint.pid}), ${how}, forwarded to 127.0.0.1:${handle.localPort}`,
		);
	};

	/**
	 * Where ssh to the node is refused: the login node forwards to the node's address, where the
	 * job's Jupyter listens (token required); what gpujup looks at on the node (listeners, processes,
	 * GPUs) runs there through `srun --jobid … --overlap`.
	 */
	const buildForwardTail = async (endpoint: JobEndpoint, epoch: number) => {
		const inputs = await tailInputs(epoch);
		if (!inputs) return;
		const srun = `srun --jobid=${endpoint.jobId} --overlap --ntasks=1 --nodes=1`;
		const label = `${endpoint.node} ${endpoint.host}:${endpoint.port} (job ${endpoint.jobId}, forwarded by ${login.at(-1)!.name}; no ssh)`;
		// Its state is the login node's: that hop carries it.
		const mirror = () => {
			nodeEntry({
				label,
				name: endpoint.node,
				state: loginHop.client ? 'ready' : 'waiting',
				error: null,
				attempt: 0,
			});
		};
		mirror();
		loginHop.on('ready', mirror);
		loginHop.on('down', mirror);
		const unwatch = () => {
			loginHop.off('ready', mirror);
			loginHop.off('down', mirror);
		};
		const handle = await runConnect(
			{...tailConfig(endpoint, inputs.dir, login), nvidiaSmi: `${srun} ${config.nvidiaSmi}`},
			store,
			asker,
			undefined,
			{
				chain: {relay: loginHops[0]!, host: loginHop, hops: loginHops},
				owned: [],
				token: inputs.token,
				pid: endpoint.pid,
				remoteHost: endpoint.host,
				wrapCommand: (command) => `${srun} sh -c ${shellQuote(command)}`,
				relabel: false,
			},
		);
		await settle(epoch, endpoint, handle, unwatch, 'no ssh to the node');
	};

	/** ssh to the job's node was refused: say so, and forward to the node's address instead. */
	const nodeRefusedFor = async (endpoint: JobEndpoint, why: string) => {
		const epoch = await dropTail();
		if (epoch === null) return;
		service.setListen('node');
		rememberNoNodeSsh(config, why);
		const where = `${endpoint.node}:${settings.nodeSshPort}`;
		log(
			`[gpujup] no ssh to node ${where} from the login node (${why}): forwarding to the node's address instead`,
		);
		if (endpoint.listen === 'node') {
			await buildForwardTail(endpoint, epoch);
			return;
		}
		if (config.noTui) {
			// Nobody to press r: the job cannot serve this laptop, so it is replaced at once.
			log(
				`[gpujup] job ${endpoint.jobId}'s Jupyter is on ${endpoint.node}'s loopback only: replacing the job with one on the node's address`,
			);
			void replaceStuck(endpoint);
			return;
		}
		stuck = endpoint;
		const text = `job ${endpoint.jobId}'s Jupyter is on ${endpoint.node}'s loopback only: r replaces the job with one on the node's address`;
		log(`[gpujup] ${text}`);
		nodeEntry({
			label: `${endpoint.node} (no ssh)`,
			state: 'failed',
			error: {
				kind: 'forbidden',
				message: `no ssh to ${where} from the login node: r replaces job ${endpoint.jobId} with one whose Jupyter the login node can reach`,
			},
		});
		store.dispatch({type: 'notice', notice: {text, level: 'warn', at: Date.now()}});
	};

	const buildTail = async (endpoint: JobEndpoint) => {
		const epoch = await dropTail();
		if (epoch === null) return;
		// A job made for clusters without ssh to their nodes: no ssh is tried.
		if (endpoint.listen === 'node') {
			await buildForwardTail(endpoint, epoch);
			return;
		}
		const inputs = await tailInputs(epoch);
		if (!inputs) return;
		const target = nodeTarget(config, login.at(-1)!, endpoint.node);
		const label = `${endpoint.node} (job ${endpoint.jobId}, via ${login.at(-1)!.name})`;
		const nodeHop = makeHop(target, login.length, loginHop, label);
		nodeEntry({label, name: endpoint.node});
		// The node refusing us (pam_slurm_adopt, no sshd, forwarding to it forbidden) while the
		// login node is up: the fallback. Watched from before the hop's first attempt.
		const unwatch = store.subscribe(() => {
			if (epoch !== tailEpoch) {
				unwatch();
				return;
			}
			const hop = store.getSnapshot().hops[login.length];
			if (
				hop?.error &&
				(hop.state === 'failed' || hop.state === 'waiting') &&
				refusals.has(hop.error.kind) &&
				loginHop.client
			) {
				const why = refusalWords[hop.error.kind] ?? hop.error.kind;
				unwatch();
				changeTail(async () => nodeRefusedFor(endpoint, why));
			}
		});
		const handle = await runConnect(
			tailConfig(endpoint, inputs.dir, [...login, target]),
			store,
			asker,
			undefined,
			{
				chain: {relay: loginHops[0]!, host: nodeHop, hops: [...loginHops, nodeHop]},
				owned: [nodeHop],
				token: inputs.token,
				pid: endpoint.pid,
			},
		);
		await settle(epoch, endpoint, handle, unwatch, 'over ssh to the node');
	};

	/** Serialised: one tail change at a time, in order. */
	const changeTail = (change: () => Promise<void>) => {
		building = building.then(change).catch((error: unknown) => {
			log(`[gpujup] ${error instanceof Error ? error.message : String(error)}`);
		});
	};

	service.on((event) => {
		if (disposed) return;
		switch (event.type) {
			case 'job': {
				const {job} = event;
				lastError = null;
				const previous = seen;
				seen = job;
				storeJob(job);
				if (
					!previous ||
					previous.id !== job.id ||
					previous.state !== job.state ||
					previous.reason !== job.reason ||
					previous.node !== job.node
				)
					log(jobLine(job));
				for (const note of jobNotifications(previous, job))
					deliverNotification(store.dispatch, note);
				if (job.state === 'ENDED' && tail) changeTail(teardownTail);
				break;
			}
			case 'endpoint': {
				const {endpoint} = event;
				const current = tail?.endpoint;
				if (
					current?.jobId === endpoint.jobId &&
					current.node === endpoint.node &&
					current.port === endpoint.port
				)
					break;
				changeTail(async () => buildTail(endpoint));
				break;
			}
			case 'error': {
				slurmError(event.error);
				break;
			}
		}
	});

	const attach = async () => {
		if (attached || attaching || disposed) return;
		attaching = true;
		try {
			const found = await service.find();
			if (found) {
				log(`[gpujup] found job ${found.id} (${jobName(profile)}): re-attaching`);
				await service.attach();
			} else {
				log(`[gpujup] no ${jobName(profile)} job running: submitting one`);
				const job = await service.submit();
				log(`[gpujup] submitted job ${job.id}`);
			}
			attached = true;
			service.start();
		} catch (error: unknown) {
			const message = error instanceof Error ? error.message : String(error);
			log(`[gpujup] slurm: ${message}`);
			store.dispatch({
				type: 'notice',
				notice: {text: `Slurm: ${message}`, level: 'error', at: Date.now()},
			});
		} finally {
			attaching = false;
		}
	};

	const replaceStuck = async (endpoint: JobEndpoint) => {
		stuck = null;
		log(
			`[gpujup] cancelling job ${endpoint.jobId} and submitting one with Jupyter on the node's address`,
		);
		try {
			await service.cancel();
			const job = await service.submit();
			log(`[gpujup] submitted job ${job.id}`);
		} catch (error: unknown) {
			log(`[gpujup] slurm: ${error instanceof Error ? error.message : String(error)}`);
		}
	};

	const notify = (text: string, level: 'info' | 'error') => {
		store.dispatch({type: 'notice', notice: {text, level, at: Date.now()}});
	};

	const resubmit = async () => {
		log('[gpujup] submitting a new job');
		try {
			const job = await service.submit();
			log(`[gpujup] submitted job ${job.id}`);
			notify(`submitted Slurm job ${job.id}`, 'info');
		} catch (error: unknown) {
			const message = error instanceof Error ? error.message : String(error);
			log(`[gpujup] slurm: ${message}`);
			notify(`Slurm: ${message}`, 'error');
		}
	};

	if (rememberedNoNodeSsh(config))
		log(
			`[gpujup] ssh to this cluster's nodes was refused before: a new job gets Jupyter on its node's address (delete ${noNodeSshFile(config)} to try ssh again)`,
		);

	const onLoginReady = () => {
		void attach();
	};
	loginHop.on('ready', onLoginReady);
	startHops(loginHops);

	const jobJupyter = (id: string) =>
		`Jupyter is Slurm job ${id} itself: restarting it means a new job (quit, cancelling the job, and connect again)`;
	const noJupyter = () =>
		seen?.state === 'ENDED'
			? `job ${seen.id} ended: r submits a new one`
			: seen
				? `job ${seen.id} is ${seen.state}: its Jupyter is not reached yet`
				: 'no Slurm job yet';

	return {
		service,
		tail: () => tail?.handle ?? null,
		reconnect() {
			if (stuck && seen?.id === stuck.jobId && seen.state !== 'ENDED') {
				void replaceStuck(stuck);
				return;
			}
			if (seen?.state === 'ENDED') {
				void resubmit();
				return;
			}
			if (!attached) void attach();
			for (const hop of loginHops) hop.reconnectNow();
			tail?.handle.reconnect();
		},
		// Jupyter is the job's own process (the batch script execs it): no agent restarts it.
		restartBlocked: () => (tail ? jobJupyter(tail.endpoint.jobId) : noJupyter()),
		async restartJupyter() {
			throw new Error(tail ? jobJupyter(tail.endpoint.jobId) : noJupyter());
		},
		urlWithToken: () => tail?.handle.urlWithToken() ?? null,
		token: () => tail?.handle.token() ?? null,
		async kernelAction(id: string, action: KernelAction) {
			if (!tail) throw new Error(noJupyter());
			return tail.handle.kernelAction(id, action);
		},
		async dispose({stopJupyter}) {
			disposed = true;
			service.stop();
			loginHop.off('ready', onLoginReady);
			// `ask` asked in the dashboard (stopJupyter is its yes); without one it keeps the job.
			const cancel = settings.onQuit === 'cancel' || (settings.onQuit === 'ask' && stopJupyter);
			if (cancel && seen && seen.state !== 'ENDED') {
				// Until scancel answers, the job may still hold its GPUs: the shell's deadline can end
				// the wait, and the line printed after the dashboard then says so.
				const {id} = seen;
				const stillRunning = (why: string) =>
					`Slurm job ${id} may still be running (${why}): on the login node, run scancel ${id}`;
				uncancelled = stillRunning('gpujup quit before scancel answered');
				try {
					await service.cancel();
					uncancelled = null;
					log(`[gpujup] job ${id} cancelled`);
				} catch (error: unknown) {
					const why = error instanceof Error ? error.message : String(error);
					uncancelled = stillRunning(why);
					log(`[gpujup] slurm: ${why}`);
				}
			}
			tailEpoch += 1;
			await building;
			tail?.unwatch();
			await tail?.handle.dispose();
			tail = null;
			service.dispose();
			await disposeHops(loginHops);
		},
		farewell: () => (uncancelled ? [uncancelled] : []),
	};
}
