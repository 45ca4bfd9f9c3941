import type {Client} from 'ssh2';
import type {Duplex} from 'node:stream';
import type {ControlToken} from '../core/control-protocol.js';
import {jupyterUrl} from '../core/events.js';
import {
	describeServers,
	parseRuntimeFiles,
	pickServer,
	runtimeDiscoveryScript,
	serverSummaries,
	type JupyterServerInfo,
} from '../core/jupyter-runtime.js';
import {
	describeUid,
	listenerCheckCommand,
	parseListenerCheck,
	passwdName,
	portOwnership,
} from '../core/proc-net.js';
import {blankJupyterStatus, type JupyterState, type JupyterStatus} from '../core/types.js';
import {probeJupyter} from './jupyter-probe.js';
import {execText} from './remote-exec.js';

export type RemoteJupyterOptions = {
	/** Jupyter's port on the GPU host's loopback. */
	readonly remotePort: number;
	/** The laptop's forwarded port: the URL users open. */
	readonly localPort: number;
	readonly intervalMs?: number;
	/**
	 * A token known by other means (`connect --slurm`: the one gpujup made for the job), used where
	 * no agent serves the port and no runtime file names one; sent, like any, only to the user's
	 * own listener. `knownPid` likewise (the job's endpoint file).
	 */
	readonly knownToken?: string | null;
	readonly knownPid?: number | null;
	/** Where Jupyter listens as the hop's far side sees it (default 127.0.0.1, its loopback). */
	readonly remoteHost?: string;
	/**
	 * Runs each look-around command (listeners, user names) where Jupyter is, when the hop ends
	 * elsewhere: `connect --slurm` without ssh to the node wraps them in `srun --overlap`.
	 */
	readonly wrapCommand?: (command: string) => string;
	readonly onStatus: (status: JupyterStatus) => void;
};

/** `gpujup host` on the GPU host, as far as Jupyter goes: the token of the server it supervises. */
export type JupyterAgent = {
	/** Its Jupyter's token and port; null while it has none (stopped, restarting). */
	requestToken(): Promise<ControlToken | null>;
};

/** Whose listener is on a port of the GPU host, as the laptop can tell over exec. */
export type RemoteOwnership =
	| {readonly kind: 'free'}
	| {readonly kind: 'ours'}
	| {readonly kind: 'foreign'; readonly uid: number; readonly message: string}
	| {readonly kind: 'unknown'; readonly message: string};

type ListenerCheck = ReturnType<typeof parseListenerCheck>;

/** The SSH user's uid and the listening sockets on the GPU host (one exec); null when unknown. */
async function remoteListeners(
	client: Client,
	wrap: (command: string) => string = (command) => command,
): Promise<ListenerCheck> {
	try {
		const {stdout} = await execText(client, wrap(listenerCheckCommand), {timeoutMs: 10_000});
		return parseListenerCheck(stdout);
	} catch {
		return null;
	}
}

/** User names by uid, per GPU host connection (a squatted port is checked every few seconds). */
const userNames = new WeakMap<Client, Map<number, string | null>>();

async function remoteUserName(client: Client, uid: number): Promise<string | null> {
	const cache = userNames.get(client) ?? new Map<number, string | null>();
	userNames.set(client, cache);
	if (cache.has(uid)) return cache.get(uid)!;
	let name: string | null = null;
	try {
		const {stdout} = await execText(client, `getent passwd ${uid}`, {timeoutMs: 10_000});
		name = passwdName(stdout, uid);
	} catch {
		// Unnamed: the uid alone is still said.
	}

	cache.set(uid, name);
	return name;
}

async function ownershipFrom(
	client: Client,
	check: ListenerCheck,
	port: number,
): Promise<RemoteOwnership> {
	if (!check)
		return {
			kind: 'unknown',
			message: `cannot tell who listens on the GPU host's 127.0.0.1:${port} (no /proc/net/tcp there), so the token is not sent`,
		};
	const owner = portOwnership(check.listeners, port, check.uid);
	if (owner.kind !== 'foreign') return {kind: owner.kind};
	const who = describeUid(owner.uid, await remoteUserName(client, owner.uid));
	return {
		kind: 'foreign',
		uid: owner.uid,
		message: `something else holds the GPU host's 127.0.0.1:${port}: its listener belongs to ${who}, not to you (uid ${check.uid}); the token is not sent to it — stop that server, or pick another port with --jupyter-port`,
	};
}

/**
 * Who listens on the GPU host's 127.0.0.1:`port`: the token may go there only when it is the SSH
 * user's own socket (owner uid in /proc/net/tcp{,6}).
 */
export async function remotePortOwner(client: Client, port: number): Promise<RemoteOwnership> {
	return ownershipFrom(client, await remoteListeners(client), port);
}

/** Opens a direct-tcpip channel to the GPU host's loopback port. */
export async function openRemoteStream(
	client: Client,
	port: number,
	host = '127.0.0.1',
): Promise<Duplex> {
	return new Promise((resolve, reject) => {
		client.forwardOut('127.0.0.1', 0, host, port, (error, channel) => {
			if (error) reject(error);
			else {
				channel.on('error', () => {
					// Reported through the request that owns it.
				});
				resolve(channel);
			}
		});
	});
}

/**
 * Watches Jupyter on the GPU host over the second hop. The token comes from `gpujup host` when it
 * supervises the server on this port, else from Jupyter's runtime files (one exec); liveness and
 * kernels from `/api/status` through a channel of its own (the user's forward is left alone). The
 * token is sent only to a listener of the SSH user's, and forgotten while nothing of theirs listens.
 */
export class RemoteJupyter {
	private client: Client | null = null;
	private timer: NodeJS.Timeout | undefined;
	private epoch = 0;
	private currentToken: string | null = null;
	private pid: number | null = null;
	private agent: JupyterAgent | null = null;
	/** What the agent last said of its own Jupyter (it may serve another port than ours). */
	private agentJupyter: {port: number | null; state: JupyterState; pid: number | null} | null =
		null;
	/** The runtime files seen at the last discovery. */
	private discovered: JupyterServerInfo[] = [];
	/** The user's listening ports at the last discovery: a change means a server came or went. */
	private portsKey: string | null = null;
	private status: JupyterStatus;
	private readonly intervalMs: number;

	constructor(private readonly options: RemoteJupyterOptions) {
		this.intervalMs = options.intervalMs ?? 3000;
		this.status = blankJupyterStatus(
			'unreachable',
			jupyterUrl(options.localPort),
			'waiting for the GPU host hop',
		);
	}

	/**
	 * `gpujup host` answers on the GPU host (null: it went away). Its token counts only when its
	 * Jupyter serves our port; otherwise the runtime files tell.
	 */
	setAgent(agent: JupyterAgent | null, token: ControlToken | null = null): void {
		this.agent = agent;
		this.currentToken = null;
		if (agent && token) {
			this.agentJupyter = {
				port: token.port,
				state: this.agentJupyter?.state ?? 'running',
				pid: this.agentJupyter?.pid ?? null,
			};
			if (token.port === this.options.remotePort) this.currentToken = token.token;
		}

		if (!agent) this.agentJupyter = null;
		this.refresh();
	}

	/** Whether the agent's own Jupyter is the one on our port (its state, pid and log are ours). */
	agentServes(): boolean {
		return this.agentJupyter?.port === this.options.remotePort;
	}

	/** The agent's port, when known. */
	agentPort(): number | null {
		return this.agentJupyter?.port ?? null;
	}

	/** A `jupyter` event of the agent: its state (starting, restarting…) wins over a probe's. */
	agentEvent(event: {state: JupyterState; pid: number | null; url: string | null}): void {
		const port = Number(/^http:\/\/[^/]*:(\d+)\//.exec(event.url ?? '')?.[1]) || null;
		this.agentJupyter = {port, state: event.state, pid: event.pid};
		if (!this.agentServes()) return;
		// Another pid is another Jupyter (a requested restart or a crash): count it, and its uptime
		// starts again (the probe fills it in from the new server).
		if (this.pid !== null && event.pid !== null && event.pid !== this.pid)
			this.update({restarts: this.status.restarts + 1, startedAt: null, pid: event.pid});
		this.pid = event.pid;
		if (event.state !== 'running') this.currentToken = null;
		if (event.state !== 'running' && event.state !== 'unreachable')
			this.update({
				state: event.state,
				pid: this.pid,
				origin: 'gpujup host',
				kernels: null,
				message: null,
			});
		else this.refresh();
	}

	/** The token, for `gpujup url` and the copy key only. */
	token(): string | null {
		return this.currentToken;
	}

	/** The second hop is ready: look now, then every few seconds. */
	attach(client: Client): void {
		this.client = client;
		const epoch = ++this.epoch;
		clearTimeout(this.timer);
		void this.tick(epoch, true);
	}

	/** The second hop is down. */
	detach(message: string): void {
		this.client = null;
		this.agent = null;
		this.agentJupyter = null;
		this.currentToken = null;
		this.portsKey = null;
		this.epoch++;
		clearTimeout(this.timer);
		this.update({state: 'unreachable', kernels: null, message});
	}

	/** Look again at once (after a restart request, say). */
	refresh(): void {
		if (!this.client) return;
		const epoch = ++this.epoch;
		clearTimeout(this.timer);
		void this.tick(epoch, true);
	}

	dispose(): void {
		this.epoch++;
		this.client = null;
		clearTimeout(this.timer);
	}

	private update(patch: Partial<JupyterStatus>): void {
		this.status = {...this.status, ...patch};
		this.options.onStatus(this.status);
	}

	private async discover(client: Client): Promise<void> {
		try {
			const {stdout} = await execText(client, runtimeDiscoveryScript, {timeoutMs: 10_000});
			this.discovered = parseRuntimeFiles(stdout);
		} catch {
			// No exec allowed or a slow host: the probe still tells whether Jupyter answers.
		}
	}

	/** The token for our port: the agent's when it serves it, else the runtime file's. */
	private async findToken(): Promise<void> {
		if (this.agentServes() && this.agent) {
			if (this.currentToken) return;
			const token = await this.agent.requestToken().catch(() => null);
			this.currentToken = token?.port === this.options.remotePort ? token.token : null;
			return;
		}

		const server = pickServer(this.discovered, this.options.remotePort);
		this.currentToken = server?.token || this.options.knownToken || null;
		this.pid = server?.pid ?? this.options.knownPid ?? null;
	}

	private async tick(epoch: number, rediscover: boolean): Promise<void> {
		const client = this.client;
		if (!client || epoch !== this.epoch) return;
		const port = this.options.remotePort;
		const check = await remoteListeners(client, this.options.wrapCommand);
		if (epoch !== this.epoch) return;
		const userPorts = check
			? new Set(check.listeners.filter((l) => l.uid === check.uid).map((l) => l.port))
			: null;
		const key = userPorts ? [...userPorts].sort((a, b) => a - b).join(',') : null;
		// Runtime files are read again when a server of the user's came or went (or on request).
		if (rediscover || key === null || key !== this.portsKey) {
			await this.discover(client);
			this.portsKey = key;
		}

		if (epoch !== this.epoch) return;
		const servers = serverSummaries(this.discovered, userPorts);
		const owner = await ownershipFrom(client, check, port);
		if (epoch !== this.epoch) return;
		const others = servers.filter((s) => s.port !== port);
		const pick =
			others.length > 0
				? ` — the GPU host runs Jupyter on ${describeServers(others)}: pick one with --jupyter-port`
				: '';
		if (owner.kind === 'free' || owner.kind === 'foreign') {
			// Nothing of ours listens: forget the token, so nobody who binds the port later gets it.
			this.currentToken = null;
			if (!this.agentServes()) this.pid = null;
			const agentState = this.agentServes() ? this.agentJupyter!.state : null;
			this.update({
				state:
					agentState && agentState !== 'running' && agentState !== 'unreachable'
						? agentState
						: 'unreachable',
				pid: this.pid,
				kernels: null,
				servers,
				message:
					owner.kind === 'foreign'
						? owner.message
						: `nothing answers on the GPU host's ${this.options.remoteHost ?? '127.0.0.1'}:${port} — is Jupyter running there?${pick}`,
			});
			this.schedule(epoch, false);
			return;
		}

		if (owner.kind === 'ours') await this.findToken();
		if (epoch !== this.epoch) return;
		const token = owner.kind === 'ours' ? this.currentToken : null;
		const probe = await probeJupyter(
			async () => openRemoteStream(client, port, this.options.remoteHost),
			token,
		);
		if (epoch !== this.epoch) return;
		let again = false;
		if (probe.reachable) {
			if (probe.status === 403 && token && !rediscover) {
				again = true;
				this.currentToken = null;
			}

			const origin = this.agentServes() ? 'gpujup host' : token ? 'runtime file' : null;
			this.update({
				state: 'running',
				pid: this.pid,
				kernels: probe.kernels,
				lastActivity: probe.lastActivity,
				startedAt: probe.started ? Date.parse(probe.started) : this.status.startedAt,
				origin,
				servers,
				message:
					owner.kind === 'unknown'
						? owner.message
						: probe.status === 200
							? others.length > 0
								? `this forward goes to ${port}; the GPU host also runs Jupyter on ${describeServers(others)} (--jupyter-port picks)`
								: null
							: token
								? `Jupyter answers ${probe.status} to the known token`
								: `Jupyter answers (${probe.status}); no runtime file with its token was found`,
			});
		} else {
			this.currentToken = null;
			this.update({
				state: 'unreachable',
				kernels: null,
				servers,
				message: `nothing answers on the GPU host's ${this.options.remoteHost ?? '127.0.0.1'}:${port} (${probe.message}) — is Jupyter running there?${pick}`,
			});
		}

		this.schedule(epoch, again);
	}

	private schedule(epoch: number, rediscover: boolean): void {
		this.timer = setTimeout(() => void this.tick(epoch, rediscover), this.intervalMs);
		this.timer.unref?.();
	}
}
