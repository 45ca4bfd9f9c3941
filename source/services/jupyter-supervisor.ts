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
import type {BackoffPolicy} from '../core/backoff.js';
import {jupyterUrl, maskTokens} from '../core/events.js';
import {
	describeEnv,
	jupyterScript,
	jupyterShell,
	type JupyterEnv,
} from '../core/jupyter-command.js';
import {
	initialJupyterMachine,
	probeEvent,
	transition,
	type JupyterEffect,
	type JupyterEvent,
	type JupyterMachineState,
	type ProbeResult,
} from '../core/jupyter-machine.js';
import type {JupyterStatus} from '../core/types.js';
import {describeUid} from '../core/proc-net.js';
import {probeJupyter} from './jupyter-probe.js';
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
import {loopbackPortFree} from './tcp-probe.js';
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
 * crash with backoff; reports its state and its log (tokens masked) into the store. What to do
 * is decided by core/jupyter-machine.ts; this class runs its effects and feeds it what happened.
 */
export class JupyterSupervisor {
	readonly #options: JupyterSupervisorOptions;
	readonly #files: ReturnType<typeof jupyterPaths>;
	#token = '';
	#machine: JupyterMachineState;
	#child: ChildProcess | null = null;
	#pollTimer: NodeJS.Timeout | null = null;
	#tailTimer: NodeJS.Timeout | null = null;
	#restartTimer: NodeJS.Timeout | null = null;
	#ticking = false;
	/** The deliberate restart or stop in progress: a second request waits for it. */
	#operation: Promise<void> = Promise.resolve();
	readonly #tail: FileLogTail;

	constructor(options: JupyterSupervisorOptions) {
		this.#options = options;
		this.#files = jupyterPaths(options.dir);
		this.#tail = new FileLogTail({
			path: this.#files.log,
			// The token is read when a line is masked: it is loaded at start.
			mask: (line) => maskTokens(line, this.#token),
			onLines: (lines) => {
				if (!this.#machine.disposed) this.#options.dispatch({type: 'log', lines});
			},
		});
		this.#machine = initialJupyterMachine({
			url: jupyterUrl(options.port),
			env: options.env,
			policy: options.backoff,
			startTimeoutMs: options.startTimeoutMs,
		});
	}

	/** The latest status (also dispatched as `{type: 'jupyter'}`). */
	get status(): JupyterStatus {
		return this.#machine.status;
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
		await this.#run({type: 'start'});
		await this.#run(await this.#adoption());
		if (this.#machine.disposed) return;
		this.#startTimers();
	}

	/** Stop Jupyter (SIGTERM to its group, SIGKILL after the deadline) and start a new one. */
	async restart(): Promise<void> {
		return this.#request({type: 'restart-requested'});
	}

	/** Stop Jupyter for good (`--stop-jupyter`, quit with stop); its kernels end with it. */
	async stop(): Promise<void> {
		return this.#request({type: 'stop-requested'});
	}

	/**
	 * Stop supervising and leave Jupyter running (gpujup exits; the next one adopts it). The log
	 * file keeps growing: it is Jupyter's, not ours.
	 */
	async dispose(): Promise<void> {
		await this.#run({type: 'dispose'});
		if (this.#pollTimer) clearInterval(this.#pollTimer);
		if (this.#tailTimer) clearInterval(this.#tailTimer);
		this.#pollTimer = null;
		this.#tailTimer = null;
		this.#tail.read();
		this.#child?.removeAllListeners('exit');
		this.#child = null;
	}

	/** A restart or stop: refused by the machine while another one runs, which it then waits for. */
	async #request(event: JupyterEvent): Promise<void> {
		const before = this.#machine;
		const running = this.#run(event);
		if (this.#machine === before) return this.#operation;
		this.#operation = running;
		return running;
	}

	/** Feed the machine one event and run its effects in order. */
	async #run(event: JupyterEvent): Promise<void> {
		const {state, effects} = transition(this.#machine, event);
		this.#machine = state;
		for (const effect of effects) await this.#execute(effect);
	}

	async #execute(effect: JupyterEffect): Promise<void> {
		switch (effect.type) {
			case 'publish': {
				this.#options.dispatch({type: 'jupyter', jupyter: effect.status});
				break;
			}

			case 'spawn': {
				await this.#spawn(effect.epoch);
				void this.#poll();
				break;
			}

			case 'record': {
				this.#record(effect.pid, effect.startedAt);
				break;
			}

			case 'clear-records': {
				clearRecordedJupyter(this.#options.dir);
				break;
			}

			case 'follow-log': {
				this.#tail.start(true);
				break;
			}

			case 'check': {
				await this.#check(effect.epoch, effect.pid);
				break;
			}

			case 'log-line': {
				this.#logLine(effect.text);
				break;
			}

			case 'schedule-restart': {
				this.#clearRestartTimer();
				this.#restartTimer = setTimeout(() => {
					this.#restartTimer = null;
					void this.#run({type: 'restart-due', epoch: effect.epoch});
				}, effect.ms);
				break;
			}

			case 'cancel-restart': {
				this.#clearRestartTimer();
				break;
			}

			case 'terminate': {
				this.#child?.removeAllListeners('exit');
				this.#child = null;
				if (effect.pid !== null)
					await terminateJupyter(effect.pid, this.#options.stopTimeoutMs ?? 10_000);
				await this.#run({type: 'terminated', epoch: effect.epoch});
				break;
			}

			case 'kill': {
				await terminateJupyter(effect.pid, this.#options.stopTimeoutMs ?? 10_000);
				break;
			}
		}
	}

	#startTimers(): void {
		if (this.#machine.disposed) return;
		this.#pollTimer ??= setInterval(() => void this.#poll(), this.#options.pollMs ?? 3000);
		this.#tailTimer ??= setInterval(() => this.#tail.read(), this.#options.tailMs ?? 500);
		this.#pollTimer.unref();
		this.#tailTimer.unref();
		void this.#poll();
	}

	#clearRestartTimer(): void {
		if (this.#restartTimer) clearTimeout(this.#restartTimer);
		this.#restartTimer = null;
	}

	/** One look at the process and `/api/status`, one at a time. */
	async #poll(): Promise<void> {
		if (this.#ticking) return;
		this.#ticking = true;
		try {
			await this.#run({type: 'poll-due'});
		} finally {
			this.#ticking = false;
		}
	}

	/**
	 * `/api/status` with the token, only when Jupyter `pid` owns the port's listener; otherwise
	 * the token stays here and the answer says who holds the port.
	 */
	async #probe(pid: number): Promise<ProbeResult> {
		const owner = jupyterOwnsPort(pid, this.#options.port);
		if (owner.kind === 'free')
			return {reachable: false, message: `nothing listens on 127.0.0.1:${this.#options.port} yet`};
		if (owner.kind === 'foreign') return {reachable: false, message: owner.message, foreign: true};
		return probeJupyter(async () => connectLoopback(this.#options.port), this.#token, 5000);
	}

	/** The Jupyter the profile's records name, when it is still ours and alive, with its answer. */
	async #adoption(): Promise<JupyterEvent> {
		const pid = readPidFile(this.#files.pid);
		const info = readRuntimeInfo(this.#files.info);
		if (pid === null || !info || info.pid !== pid || info.port !== this.#options.port)
			return {type: 'nothing-to-adopt'};
		const stat = procStat(pid);
		if (!stat || stat.state === 'Z' || stat.state === 'X') return {type: 'nothing-to-adopt'};
		if (info.startTicks !== null && stat.startTicks !== info.startTicks)
			return {type: 'nothing-to-adopt'};
		const probe = await this.#probe(pid);
		const cmd = jupyterScript(this.#commandOptions());
		return {
			type: 'adopt-candidate',
			pid,
			startedAt: info.startedAt,
			differs: info.cmd !== cmd || info.notebookDir !== this.#options.notebookDir,
			probe,
			now: Date.now(),
		};
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

	/** Start Jupyter for `epoch`, and say how that went. */
	async #spawn(epoch: number): Promise<void> {
		const port = this.#options.port;
		if (!(await loopbackPortFree(port))) {
			const holder = portHolder(port);
			const who = holder?.pid
				? `by pid ${holder.pid}${holder.command ? ` (${holder.command})` : ''}`
				: holder
					? `by a process of ${describeUid(holder.uid, localUserName(holder.uid))}`
					: 'by another process';
			await this.#run({
				type: 'port-busy',
				epoch,
				message: `port ${port} on 127.0.0.1 is already in use ${who}: stop it, or give Jupyter another port with --jupyter-port`,
			});
			return;
		}

		if (this.#machine.disposed) return;
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
			void this.#run({
				type: 'spawn-error',
				epoch,
				message: `cannot start Jupyter: ${error.message}`,
			});
		});
		const pid = child.pid;
		if (pid === undefined) return;
		this.#child = child;
		child.once('exit', () => {
			if (this.#child === child) void this.#poll();
		});
		await this.#run({type: 'spawned', epoch, pid, now: Date.now()});
	}

	/** The pid file and `jupyter.json`: what the next gpujup adopts. */
	#record(pid: number, startedAt: number): void {
		writePrivateFile(this.#files.pid, `${pid}\n`);
		const info: RuntimeInfo = {
			pid,
			port: this.#options.port,
			startedAt,
			startTicks: procStat(pid)?.startTicks ?? null,
			cmd: jupyterScript(this.#commandOptions()),
			env: describeEnv(this.#options.env),
			notebookDir: this.#options.notebookDir,
			log: this.#files.log,
		};
		writePrivateFile(this.#files.info, `${JSON.stringify(info, null, '\t')}\n`);
	}

	/** Whether `pid` still lives, and if so what `/api/status` says. */
	async #check(epoch: number, pid: number): Promise<void> {
		if (!processAlive(pid)) {
			// Our child, dead but not reaped yet: its 'exit' (with the status) polls again.
			const child = this.#child;
			if (child && child.exitCode === null && child.signalCode === null) return;
			this.#tail.read();
			this.#child = null;
			await this.#run({
				type: 'died',
				epoch,
				exitCode: child?.exitCode ?? null,
				signal: child?.signalCode ?? null,
				lastLine: this.#tail.lastLine,
				random: Math.random(),
			});
			return;
		}

		const probe = await this.#probe(pid);
		await this.#run(probeEvent(epoch, Date.now(), probe));
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
