import type {Client} from 'ssh2';
import type {Duplex} from 'node:stream';
import {jupyterUrl} from '../core/events.js';
import {parseRuntimeFiles, pickServer, runtimeDiscoveryScript} from '../core/jupyter-runtime.js';
import type {JupyterStatus} from '../core/types.js';
import {probeJupyter} from './jupyter-probe.js';
import {execText} from './remote-exec.js';

export type RemoteJupyterOptions = {
	/** Jupyter's port on the GPU host's loopback. */
	readonly remotePort: number;
	/** The laptop's forwarded port: the URL users open. */
	readonly localPort: number;
	readonly intervalMs?: number;
	readonly onStatus: (status: JupyterStatus) => void;
};

/** Opens a direct-tcpip channel to the GPU host's loopback port. */
export async function openRemoteStream(client: Client, port: number): Promise<Duplex> {
	return new Promise((resolve, reject) => {
		client.forwardOut('127.0.0.1', 0, '127.0.0.1', port, (error, channel) => {
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
 * Watches Jupyter on the GPU host over the second hop, with no agent there: the token and pid
 * come from Jupyter's runtime files (one exec), liveness and kernels from `/api/status` through
 * a channel of its own (the user's forward is left alone).
 */
export class RemoteJupyter {
	private client: Client | null = null;
	private timer: NodeJS.Timeout | undefined;
	private epoch = 0;
	private currentToken: string | null = null;
	private pid: number | null = null;
	private agent = false;
	private status: JupyterStatus;
	private readonly intervalMs: number;

	constructor(private readonly options: RemoteJupyterOptions) {
		this.intervalMs = options.intervalMs ?? 3000;
		this.status = {
			state: 'unreachable',
			url: jupyterUrl(options.localPort),
			pid: null,
			kernels: null,
			restarts: 0,
			startedAt: null,
			lastActivity: null,
			origin: null,
			message: 'waiting for the GPU host hop',
		};
	}

	/**
	 * `gpujup host` on the GPU host told us the token and how its Jupyter is: no runtime-file
	 * discovery then, and its state (starting, restarting…) wins over what a probe can see.
	 */
	useAgent(info: {
		token: string | null;
		state?: JupyterStatus['state'];
		pid?: number | null;
	}): void {
		if (info.token) this.currentToken = info.token;
		this.agent = true;
		if (info.pid !== undefined) {
			// Another pid is another Jupyter (a requested restart or a crash): count it, and its
			// uptime starts again (the probe fills it in from the new server).
			if (this.pid !== null && info.pid !== null && info.pid !== this.pid)
				this.update({restarts: this.status.restarts + 1, startedAt: null, pid: info.pid});
			this.pid = info.pid;
		}
		if (info.state && info.state !== 'running' && info.state !== 'unreachable')
			this.update({state: info.state, pid: this.pid, origin: 'gpujup host', message: null});
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
		this.agent = false;
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
			const server = pickServer(parseRuntimeFiles(stdout), this.options.remotePort);
			if (server) {
				this.currentToken = server.token || null;
				this.pid = server.pid;
			}
		} catch {
			// No exec allowed or a slow host: the probe still tells whether Jupyter answers.
		}
	}

	private async tick(epoch: number, rediscover: boolean): Promise<void> {
		const client = this.client;
		if (!client || epoch !== this.epoch) return;
		if (!this.agent && (rediscover || !this.currentToken)) await this.discover(client);
		if (epoch !== this.epoch) return;
		const probe = await probeJupyter(
			async () => openRemoteStream(client, this.options.remotePort),
			this.currentToken,
		);
		if (epoch !== this.epoch) return;
		let again = false;
		if (probe.reachable) {
			if (probe.status === 403 && this.currentToken && !rediscover) again = true;
			this.update({
				state: 'running',
				pid: this.pid,
				kernels: probe.kernels,
				lastActivity: probe.lastActivity,
				startedAt: probe.started ? Date.parse(probe.started) : this.status.startedAt,
				origin: this.agent ? 'gpujup host' : this.currentToken ? 'runtime file' : null,
				message:
					probe.status === 200
						? null
						: this.currentToken
							? `Jupyter answers ${probe.status} to the known token`
							: `Jupyter answers (${probe.status}); no runtime file with its token was found`,
			});
		} else {
			this.update({
				state: 'unreachable',
				kernels: null,
				message: `nothing answers on the GPU host's 127.0.0.1:${this.options.remotePort} (${probe.message}) — is Jupyter running there?`,
			});
		}

		this.timer = setTimeout(() => void this.tick(epoch, again), this.intervalMs);
		this.timer.unref?.();
	}
}
