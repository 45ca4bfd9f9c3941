import {spawn, type ChildProcess} from 'node:child_process';
import {
	appendFileSync,
	chmodSync,
	closeSync,
	openSync,
	renameSync,
	statSync,
	writeSync,
} from 'node:fs';
import net from 'node:net';
import type {AppAction} from '../core/app-state.js';
import {defaultBackoff, nextDelay, stableResetMs, type BackoffPolicy} from '../core/backoff.js';
import {jupyterUrl, maskTokens} from '../core/events.js';
import {
	describeEnv,
	jupyterScript,
	jupyterShell,
	missingIpykernelMessage,
	type JupyterEnv,
} from '../core/jupyter-command.js';
import {missingIpykernelExitCode} from '../core/exit-codes.js';
import type {JupyterState, JupyterStatus} from '../core/types.js';
import {describeUid} from '../core/proc-net.js';
import {probeJupyter, type JupyterProbe} from './jupyter-probe.js';
import {FileLogTail} from './log-tail.js';
import {
	clearRecordedJupyter,
	jupyterPaths,
	loadOrCreateToken,
	readPidFile,
	readRuntimeInfo,
	type RuntimeInfo,
} from './jupyter-files.js';
import {ensurePrivateDir, writePrivateFile} from './private-file.js';
import {
	descendants,
	jupyterOwnsPort,
	localUserName,
	portHolder,
	processAlive,
	procStat,
} from './proc-table.js';

/** Options of {@link JupyterSupervisor}. Times are in milliseconds. */
export type JupyterSupervisorOptions = {
	/** The profile's state directory (`${stateDir}/<profile>`): pid, runtime info, token, log. */
	readonly dir: string;
	readonly port: number;
	/** `--jupyter-cmd`; null: `jupyter lab`, else `jupyter notebook`. */
	readonly cmd: string | null;
	readonly env: JupyterEnv;
	readonly notebookDir: string;
	/** Where status and log lines go (the app store's dispatch). */
	readonly dispatch: (action: AppAction) => void;
	/** The environment Jupyter inherits (default `process.env`); `JUPYTER_TOKEN` is set on top. */
	readonly baseEnv?: NodeJS.ProcessEnv;
	/** How often `/api/status` is asked and the process checked (default 3000). */
	readonly pollMs?: number;
	/** How often the log file is checked for new lines (default 500). */
	readonly tailMs?: number;
	/** A start that does not answer within this is reported `unreachable` (default 120 000). */
	readonly startTimeoutMs?: number;
	/** SIGTERM, then SIGKILL after this (default 10 000). */
	readonly stopTimeoutMs?: number;
	/** Spacing of restarts after crashes (default: the hops' policy). */
	readonly backoff?: BackoffPolicy;
	/** The log is rotated (to `jupyter.log.1`) when larger than this at a start (default 10 MB). */
	readonly maxLogBytes?: number;
};

function signal(pid: number, name: NodeJS.Signals, group: boolean): void {
	try {
		process.kill(group ? -pid : pid, name);
	} catch {
		// Already gone (or not a group leader: fall back to the process itself).
		if (group) signal(pid, name, false);
	}
}

/**
 * Stop Jupyter `pid`: SIGTERM to its process group (Jupyter then shuts its kernels down), SIGKILL
 * to it and every descendant after `timeoutMs`. Resolves when it is gone.
 */
export async function terminateJupyter(pid: number, timeoutMs = 10_000): Promise<void> {
	if (!processAlive(pid)) return;
	signal(pid, 'SIGTERM', true);
	const deadline = Date.now() + timeoutMs;
	while (processAlive(pid) && Date.now() < deadline) await sleep(50);
	if (processAlive(pid)) {
		const family = descendants(pid);
		signal(pid, 'SIGKILL', true);
		for (const child of family) signal(child, 'SIGKILL', false);
		const killDeadline = Date.now() + 5000;
		while (processAlive(pid) && Date.now() < killDeadline) await sleep(50);
	}
}

async function sleep(ms: number): Promise<void> {
	await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether 127.0.0.1:`port` can be bound now. */
async function portFree(port: number): Promise<boolean> {
	return new Promise((resolve) => {
		const server = net.createServer();
		server.unref();
		server.once('error', () => resolve(false));
		server.listen({host: '127.0.0.1', port, exclusive: true}, () => {
			server.close(() => resolve(true));
		});
	});
}

async function connectLoopback(port: number): Promise<net.Socket> {
	return new Promise((resolve, reject) => {
		const socket = net.connect({host: '127.0.0.1', port});
		socket.once('connect', () => {
			socket.off('error', reject);
			resolve(socket);
		});
		socket.once('error', reject);
	});
}

/**
 * Runs Jupyter for `gpujup host` and keeps it running: adopts the one a previous gpujup left (same
 * pid, same token), else starts one in its own session so it outlives us; restarts it after a
 * crash with backoff; reports its state and its log (tokens masked) into the store.
 */
export class JupyterSupervisor {
	readonly #options: JupyterSupervisorOptions;
	readonly #files: ReturnType<typeof jupyterPaths>;
	#token = '';
	#status: JupyterStatus;
	#pid: number | null = null;
	#child: ChildProcess | null = null;
	/** Epoch ms of the last spawn (for the start deadline). */
	#spawnedAt = 0;
	/** Crash restarts since the last stable run (drives the backoff). */
	#attempt = 0;
	#runningSince: number | null = null;
	/** Set while a deliberate restart or stop runs, or after dispose: the monitor stands back. */
	#busy = false;
	#disposed = false;
	#pollTimer: NodeJS.Timeout | null = null;
	#tailTimer: NodeJS.Timeout | null = null;
	#restartTimer: NodeJS.Timeout | null = null;
	#ticking = false;
	readonly #tail: FileLogTail;

	constructor(options: JupyterSupervisorOptions) {
		this.#options = options;
		this.#files = jupyterPaths(options.dir);
		this.#tail = new FileLogTail({
			path: this.#files.log,
			// The token is read when a line is masked: it is loaded at start.
			mask: (line) => maskTokens(line, this.#token),
			onLines: (lines) => {
				if (!this.#disposed) this.#options.dispatch({type: 'log', lines});
			},
		});
		this.#status = {
			state: 'starting',
			url: jupyterUrl(options.port),
			pid: null,
			kernels: null,
			restarts: 0,
			startedAt: null,
			lastActivity: null,
			origin: null,
			message: null,
		};
	}

	/** The latest status (also dispatched as `{type: 'jupyter'}`). */
	get status(): JupyterStatus {
		return this.#status;
	}

	/** The port Jupyter serves on (127.0.0.1). */
	get port(): number {
		return this.#options.port;
	}

	/**
	 * The token. Only the control socket (for `gpujup url` and the copy key) may hand it out; it
	 * must never reach the store, events or logs.
	 */
	token(): string {
		return this.#token;
	}

	/** Adopt the running Jupyter of this profile, or start one. Resolves once that is decided. */
	async start(): Promise<void> {
		ensurePrivateDir(this.#options.dir);
		this.#token = loadOrCreateToken(this.#files.token);
		this.#publish({});
		const adopted = await this.#tryAdopt();
		if (this.#disposed) return;
		if (!adopted) await this.#spawn('starting');
		this.#startTimers();
	}

	/** Stop Jupyter (SIGTERM to its group, SIGKILL after the deadline) and start a new one. */
	async restart(): Promise<void> {
		if (this.#disposed) return;
		this.#busy = true;
		this.#clearRestartTimer();
		try {
			this.#publish({state: 'restarting', message: 'restarting on request'});
			await this.#terminate();
			this.#attempt = 0;
			if (!this.#disposed) await this.#spawn('restarting');
		} finally {
			this.#busy = false;
		}
	}

	/** Stop Jupyter for good (`--stop-jupyter`, quit with stop); its kernels end with it. */
	async stop(): Promise<void> {
		this.#busy = true;
		this.#clearRestartTimer();
		try {
			await this.#terminate();
			clearRecordedJupyter(this.#options.dir);
			this.#publish({
				state: 'exited',
				pid: null,
				kernels: null,
				startedAt: null,
				message: 'stopped',
			});
		} finally {
			this.#busy = false;
		}
	}

	/**
	 * Stop supervising and leave Jupyter running (gpujup exits; the next one adopts it). The log
	 * file keeps growing: it is Jupyter's, not ours.
	 */
	async dispose(): Promise<void> {
		this.#disposed = true;
		this.#clearRestartTimer();
		if (this.#pollTimer) clearInterval(this.#pollTimer);
		if (this.#tailTimer) clearInterval(this.#tailTimer);
		this.#pollTimer = null;
		this.#tailTimer = null;
		this.#tail.read();
		this.#child?.removeAllListeners('exit');
		this.#child = null;
	}

	#publish(patch: Partial<JupyterStatus>): void {
		this.#status = {...this.#status, ...patch};
		if (!this.#disposed) this.#options.dispatch({type: 'jupyter', jupyter: this.#status});
	}

	#startTimers(): void {
		if (this.#disposed) return;
		this.#pollTimer ??= setInterval(() => void this.#tick(), this.#options.pollMs ?? 3000);
		this.#tailTimer ??= setInterval(() => this.#tail.read(), this.#options.tailMs ?? 500);
		this.#pollTimer.unref();
		this.#tailTimer.unref();
		void this.#tick();
	}

	#clearRestartTimer(): void {
		if (this.#restartTimer) clearTimeout(this.#restartTimer);
		this.#restartTimer = null;
	}

	/**
	 * `/api/status` with the token, only when Jupyter `pid` owns the port's listener; otherwise
	 * the token stays here and the answer says who holds the port.
	 */
	async #probe(pid: number): Promise<JupyterProbe & {readonly foreign?: boolean}> {
		const owner = jupyterOwnsPort(pid, this.#options.port);
		if (owner.kind === 'free')
			return {reachable: false, message: `nothing listens on 127.0.0.1:${this.#options.port} yet`};
		if (owner.kind === 'foreign') return {reachable: false, message: owner.message, foreign: true};
		return probeJupyter(async () => connectLoopback(this.#options.port), this.#token, 5000);
	}

	async #tryAdopt(): Promise<boolean> {
		const pid = readPidFile(this.#files.pid);
		const info = readRuntimeInfo(this.#files.info);
		if (pid === null || !info || info.pid !== pid || info.port !== this.#options.port) return false;
		const stat = procStat(pid);
		if (!stat || stat.state === 'Z' || stat.state === 'X') return false;
		if (info.startTicks !== null && stat.startTicks !== info.startTicks) return false;
		const probe = await this.#probe(pid);
		const answers = probe.reachable && probe.status === 200;
		// Ours but not answering yet (gpujup restarted while it was starting): wait for it. A 403
		// means another token: not the Jupyter we started.
		if (!answers && probe.reachable) return false;
		const cmd = jupyterScript(this.#commandOptions());
		const differs = info.cmd !== cmd || info.notebookDir !== this.#options.notebookDir;
		this.#pid = pid;
		this.#spawnedAt = answers ? 0 : Date.now();
		this.#runningSince = answers ? Date.now() : null;
		this.#tail.start(true);
		this.#publish({
			state: answers ? 'running' : 'starting',
			pid,
			startedAt: info.startedAt,
			origin: 'adopted',
			kernels: answers ? probe.kernels : null,
			lastActivity: answers ? probe.lastActivity : null,
			message: differs
				? 'adopted a Jupyter started with other settings; restart it (j) to apply the new ones'
				: null,
		});
		return true;
	}

	#commandOptions() {
		return {
			cmd: this.#options.cmd,
			env: this.#options.env,
			port: this.#options.port,
			notebookDir: this.#options.notebookDir,
			allowRoot: process.getuid?.() === 0,
			dataDir: this.#files.data,
		};
	}

	async #spawn(state: JupyterState): Promise<void> {
		this.#pid = null;
		this.#runningSince = null;
		const port = this.#options.port;
		if (!(await portFree(port))) {
			const holder = portHolder(port);
			const who = holder?.pid
				? `by pid ${holder.pid}${holder.command ? ` (${holder.command})` : ''}`
				: holder
					? `by a process of ${describeUid(holder.uid, localUserName(holder.uid))}`
					: 'by another process';
			this.#publish({
				state: 'exited',
				pid: null,
				kernels: null,
				startedAt: null,
				message: `port ${port} on 127.0.0.1 is already in use ${who}: stop it, or give Jupyter another port with --jupyter-port`,
			});
			return;
		}

		if (this.#disposed) return;
		const log = this.#files.log;
		try {
			if (statSync(log).size > (this.#options.maxLogBytes ?? 10 * 1024 * 1024)) {
				renameSync(log, `${log}.1`);
				chmodSync(`${log}.1`, 0o600);
			}
		} catch {
			// No log yet.
		}

		const script = jupyterScript(this.#commandOptions());
		if (this.#options.env.kind !== 'none') ensurePrivateDir(this.#files.data);
		const fd = openSync(log, 'a', 0o600);
		let child: ChildProcess;
		try {
			chmodSync(log, 0o600);
			this.#tail.start(false);
			writeSync(
				fd,
				`[gpujup] ${new Date().toISOString()} starting Jupyter on 127.0.0.1:${port} (env ${describeEnv(this.#options.env)}): ${script}\n`,
			);
			const env: NodeJS.ProcessEnv = {...(this.#options.baseEnv ?? process.env)};
			env['JUPYTER_TOKEN'] = this.#token;
			// Its own session: a terminal hangup, our exit or systemd restarting us leave it running.
			child = spawn(jupyterShell, ['-c', script], {
				detached: true,
				stdio: ['ignore', fd, fd],
				env,
				cwd: this.#options.notebookDir,
			});
		} finally {
			closeSync(fd);
		}

		child.unref();
		child.on('error', (error) => {
			this.#publish({
				state: 'exited',
				pid: null,
				message: `cannot start Jupyter: ${error.message}`,
			});
		});
		const pid = child.pid;
		if (pid === undefined) return;
		this.#child = child;
		child.once('exit', () => {
			if (this.#child === child) void this.#tick();
		});
		this.#pid = pid;
		this.#spawnedAt = Date.now();
		const startedAt = Date.now();
		writePrivateFile(this.#files.pid, `${pid}\n`);
		const info: RuntimeInfo = {
			pid,
			port,
			startedAt,
			startTicks: procStat(pid)?.startTicks ?? null,
			cmd: script,
			env: describeEnv(this.#options.env),
			notebookDir: this.#options.notebookDir,
			log,
		};
		writePrivateFile(this.#files.info, `${JSON.stringify(info, null, '\t')}\n`);
		this.#publish({
			state,
			pid,
			startedAt,
			origin: 'started',
			kernels: null,
			lastActivity: null,
			message: null,
		});
	}

	async #terminate(): Promise<void> {
		const pid = this.#pid;
		this.#child?.removeAllListeners('exit');
		this.#child = null;
		if (pid === null) return;
		await terminateJupyter(pid, this.#options.stopTimeoutMs ?? 10_000);
		this.#pid = null;
	}

	/** One look at the process and `/api/status`. */
	async #tick(): Promise<void> {
		if (this.#ticking || this.#busy || this.#disposed || this.#restartTimer) return;
		this.#ticking = true;
		try {
			const pid = this.#pid;
			if (pid === null) return;
			if (!processAlive(pid)) {
				// Our child, dead but not reaped yet: its 'exit' (with the status) ticks again.
				const child = this.#child;
				if (child && child.exitCode === null && child.signalCode === null) return;
				this.#onDeath(pid);
				return;
			}

			const probe = await this.#probe(pid);
			if (this.#busy || this.#disposed || this.#pid !== pid) return;
			if (probe.reachable && probe.status === 200) {
				this.#runningSince ??= Date.now();
				if (Date.now() - this.#runningSince > stableResetMs) this.#attempt = 0;
				this.#publish({
					state: 'running',
					kernels: probe.kernels,
					lastActivity: probe.lastActivity,
					message: this.#status.state === 'running' ? this.#status.message : null,
				});
				return;
			}

			if (!probe.reachable && probe.foreign) {
				this.#publish({
					state: this.#runningSince === null ? this.#status.state : 'unreachable',
					kernels: null,
					message: probe.message,
				});
				return;
			}

			const why = probe.reachable
				? `/api/status answered ${probe.status} (another server on the port?)`
				: probe.message;
			const starting = this.#runningSince === null;
			const timeout = this.#options.startTimeoutMs ?? 120_000;
			if (starting && Date.now() - this.#spawnedAt < timeout) return;
			this.#publish({
				state: 'unreachable',
				message: starting ? `no answer ${Math.round(timeout / 1000)} s after start: ${why}` : why,
			});
		} finally {
			this.#ticking = false;
		}
	}

	#onDeath(pid: number): void {
		this.#tail.read();
		const exitCode = this.#child?.exitCode;
		const signalCode = this.#child?.signalCode;
		this.#child = null;
		this.#pid = null;
		const how =
			signalCode != null
				? `killed by ${signalCode}`
				: exitCode != null
					? `exited with code ${exitCode}`
					: 'exited';
		if (exitCode === missingIpykernelExitCode) {
			// The env cannot run kernels: restarting would fail the same way until the user fixes it.
			this.#publish({
				state: 'exited',
				pid: null,
				kernels: null,
				startedAt: null,
				message: missingIpykernelMessage(this.#options.env),
			});
			return;
		}

		const last = this.#tail.lastLine;
		this.#attempt += 1;
		const delay = nextDelay(this.#attempt, this.#options.backoff ?? defaultBackoff);
		// Said in the log too, where a laptop's log pane and the log events see it.
		const died =
			signalCode != null
				? `died: ${signalCode}`
				: exitCode != null
					? `exited with code ${exitCode}`
					: 'died (adopted, so its exit status is unknown)';
		this.#logLine(
			`Jupyter (pid ${pid}) ${died}; restarting${delay > 0 ? ` in ${(delay / 1000).toFixed(1)} s` : ''}`,
		);
		this.#publish({
			state: 'restarting',
			pid: null,
			kernels: null,
			restarts: this.#status.restarts + 1,
			message: `Jupyter (pid ${pid}) ${how}${last ? `; last log line: ${last}` : ''}; restarting${delay > 0 ? ` in ${(delay / 1000).toFixed(1)} s` : ''}`,
		});
		this.#restartTimer = setTimeout(() => {
			this.#restartTimer = null;
			if (this.#busy || this.#disposed) return;
			void this.#spawn('restarting').then(() => this.#tick());
		}, delay);
	}

	/** A `[gpujup]` line of ours in Jupyter's log file, read back at once so the tail has it. */
	#logLine(text: string): void {
		try {
			appendFileSync(this.#files.log, `[gpujup] ${new Date().toISOString()} ${text}\n`, {
				mode: 0o600,
			});
		} catch {
			// No log file to write to: the status message still says it.
		}

		this.#tail.read();
	}
}
