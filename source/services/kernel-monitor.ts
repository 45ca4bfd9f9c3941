/**
 * The notebooks' kernels on the GPU host: every 2 s Jupyter's `/api/kernels` and `/api/sessions`,
 * joined with the process table and the GPU processes (core/kernels.ts), and the notifications
 * their changes call for. Busy and idle come from each kernel's IOPub status messages, through a
 * websocket of the monitor's own per kernel (kernel-channels.ts), not from REST's
 * `execution_state`, which a request on the control channel turns idle mid-cell; REST's where
 * the websocket cannot be opened. Kernel control (interrupt, restart, shut down) through the same REST API.
 * Runs where Jupyter runs (`gpujup host`); the token never leaves this module but in the header of
 * requests to the server the caller vouches for.
 */
import {
	type KernelAction,
	joinKernels,
	kernelNotifications,
	parseRestKernels,
	type KernelStatus,
	type Notification,
	type ProcSnapshot,
} from '../core/kernels.js';
import {channelState} from '../core/kernel-channel.js';
import type {GpuProcess} from '../core/types.js';
import {type ChannelServer, KernelChannels} from './kernel-channels.js';
import {httpRequest} from './http-request.js';
import {readProcTable} from './proc-table.js';

/** The Jupyter server to watch: only one the caller verified as the user's own. */
export type MonitoredServer = ChannelServer;

export type {KernelAction} from '../core/kernels.js';

export type KernelMonitorOptions = {
	/** The server now, or null while there is none (Jupyter down, port not ours). */
	readonly server: () => MonitoredServer | null;
	/** nvidia-smi's compute apps now (the GPU stream's last sample). */
	readonly gpuProcesses: () => readonly GpuProcess[];
	readonly onKernels: (kernels: readonly KernelStatus[], foreignGpuPids: readonly number[]) => void;
	readonly onNotify: (notification: Notification) => void;
	/** A busy → idle change notifies when the cell ran at least this long (default 60 s). */
	readonly notifyAfterMs?: number;
	readonly intervalMs?: number;
	/** The process table (tests may pass their own). */
	readonly readProcs?: () => Promise<ProcSnapshot>;
};

const requestTimeoutMs = 5000;

function endpoint(server: MonitoredServer, path: string): string {
	const base = (server.baseUrl ?? '/').replace(/\/?$/, '/');
	return `http://127.0.0.1:${server.port}${base}${path}`;
}

async function getJson(server: MonitoredServer, path: string): Promise<unknown> {
	const response = await httpRequest(endpoint(server, path), {
		headers: {authorization: `token ${server.token}`},
		timeoutMs: requestTimeoutMs,
	});
	if (response.status !== 200) throw new Error(`GET /${path}: HTTP ${response.status}`);
	return JSON.parse(response.body) as unknown;
}

export class KernelMonitor {
	readonly #options: KernelMonitorOptions;
	#timer: NodeJS.Timeout | undefined;
	#running: Promise<void> | undefined;
	#kernels: KernelStatus[] = [];
	#procs: ProcSnapshot | null = null;
	#restartsAsked = new Set<string>();
	readonly #channels = new KernelChannels();
	#disposed = false;

	constructor(options: KernelMonitorOptions) {
		this.#options = options;
	}

	/** The kernels of the last round. */
	get kernels(): readonly KernelStatus[] {
		return this.#kernels;
	}

	start(): void {
		if (this.#timer || this.#disposed) return;
		void this.refresh();
		this.#timer = setInterval(() => void this.refresh(), this.#options.intervalMs ?? 2000);
		this.#timer.unref();
	}

	/** One round now (a round already running is awaited instead). */
	async refresh(): Promise<void> {
		this.#running ??= this.#round().finally(() => {
			this.#running = undefined;
		});
		return this.#running;
	}

	async #round(): Promise<void> {
		const server = this.#options.server();
		if (!server) {
			this.#channels.sync(null, []).catch(() => {});
			this.#publish([], [], false);
			return;
		}

		let rest;
		let procs: ProcSnapshot;
		// Jupyter counts these in the `connections` it is about to answer.
		const counted = this.#channels.openIds();
		try {
			const [kernels, sessions, table] = await Promise.all([
				getJson(server, 'api/kernels'),
				getJson(server, 'api/sessions'),
				(this.#options.readProcs ?? readProcTable)(),
			]);
			rest = parseRestKernels(kernels, sessions);
			procs = table;
		} catch {
			// Jupyter restarting or gone: the supervisor reports that; keep the last kernels.
			return;
		}

		await this.#channels.sync(
			server,
			rest.map((k) => k.id),
		);
		if (this.#disposed) return;
		const now = Date.now();
		const joined = joinKernels({
			rest: rest.map((kernel) => {
				const view = this.#channels.view(kernel.id);
				const verdict = channelState(kernel, view, now);
				const last = this.#kernels.find((k) => k.id === kernel.id);
				const state = verdict.state === 'before' ? (last?.state ?? kernel.state) : verdict.state;
				const since = verdict.state === 'before' ? 'before' : verdict.since;
				return {
					...kernel,
					state,
					// 'before': as shown so far (an idle after a probe's wait: no cell-done).
					stateSince: since === 'before' ? (last?.since ?? null) : since,
					// Jupyter counts the monitor's own websocket: not one of the user's.
					connections: counted.has(kernel.id)
						? Math.max(0, kernel.connections - 1)
						: kernel.connections,
				};
			}),
			procs,
			previousProcs: this.#procs,
			gpuProcesses: this.#options.gpuProcesses(),
			previous: this.#kernels,
			now,
		});
		this.#procs = procs;
		this.#publish(joined.kernels, joined.foreignGpuPids, true);
	}

	#publish(kernels: KernelStatus[], foreign: readonly number[], notify: boolean): void {
		const before = this.#kernels;
		this.#kernels = kernels;
		if (notify) {
			const notes = kernelNotifications(before, kernels, {
				notifyAfterMs: this.#options.notifyAfterMs ?? 60_000,
				now: Date.now(),
				restartsAsked: this.#restartsAsked,
			});
			// A restart asked for is spent once the kernel has its new process.
			for (const kernel of kernels) {
				const old = before.find((k) => k.id === kernel.id);
				const oldPid = old?.pids[0] ?? old?.lostPid;
				if (kernel.pids.length > 0 && oldPid != null && kernel.pids[0] !== oldPid)
					this.#restartsAsked.delete(kernel.id);
			}

			for (const note of notes) this.#options.onNotify(note);
		}

		this.#options.onKernels(kernels, foreign);
	}

	/** Interrupt, restart or shut down kernel `id`; resolves with what to tell the user. */
	async act(id: string, action: KernelAction): Promise<string> {
		const server = this.#options.server();
		if (!server) throw new Error('Jupyter is not running (or its port is not ours)');
		const kernel = this.#kernels.find((k) => k.id === id);
		if (!kernel) throw new Error(`no kernel ${id} on this Jupyter`);
		const path = action === 'shutdown' ? `api/kernels/${id}` : `api/kernels/${id}/${action}`;
		if (action === 'restart') this.#restartsAsked.add(id);
		const response = await httpRequest(endpoint(server, path), {
			method: action === 'shutdown' ? 'DELETE' : 'POST',
			headers: {authorization: `token ${server.token}`, 'content-type': 'application/json'},
			...(action === 'shutdown' ? {} : {body: '{}'}),
			// A restart waits for the new kernel to answer.
			timeoutMs: action === 'restart' ? 60_000 : 15_000,
		});
		if (response.status < 200 || response.status > 299) {
			this.#restartsAsked.delete(id);
			throw new Error(`Jupyter answered HTTP ${response.status} to ${action}`);
		}

		void this.refresh();
		const name = kernel.notebook ?? `kernel ${id.slice(0, 8)}`;
		switch (action) {
			case 'interrupt': {
				return `interrupted ${name}`;
			}

			case 'restart': {
				return `restarted ${name}`;
			}

			case 'shutdown': {
				return `shut down ${name}`;
			}
		}
	}

	dispose(): void {
		this.#disposed = true;
		this.#channels.dispose();
		clearInterval(this.#timer);
		this.#timer = undefined;
	}
}
