/**
 * Live GPU telemetry from nvidia-smi, here (`gpujup host`) or on the GPU host over the second hop
 * (`connect`/`status` without a host agent): the runner decides where.
 *
 * At most two long-lived nvidia-smi per host, never one per sample (SPEC "Numbers to reach"):
 * `--query-gpu … -lms <interval>` for the devices and a slower `--query-compute-apps … -lms` for the
 * processes, plus a short `ps` when new pids appear, to name their user and full command line.
 * A field the driver lacks is dropped from the query (nvidia-smi names it) and the query goes on.
 * A hung nvidia-smi (a stuck driver) is caught by a local deadline: no sample for `timeoutMs` ends
 * both streams, reports `timeout`, and restarts them with backoff; the runner's guard makes sure
 * the hung process dies with its channel. Failures (no driver, mismatch) are reported with
 * nvidia-smi's own message and retried with backoff, so a driver that comes back is picked up.
 */
import {createInterface} from 'node:readline';
import type {Readable} from 'node:stream';
import {defaultBackoff, nextDelay, type BackoffPolicy} from '../core/backoff.js';
import {
	computeAppsQueryCommand,
	computeAppsQueryFields,
	gpuQueryCommand,
	gpuQueryFields,
	invalidFieldIn,
	joinProcesses,
	mergePsEntry,
	parseComputeAppRow,
	parseGpuRow,
	parsePsOutput,
	psCommand,
	recognizeNvidiaSmiError,
	requiredComputeAppsFields,
	requiredGpuFields,
	type PsEntry,
} from '../core/nvidia-smi.js';
import type {GpuErrorKind, GpuInfo, GpuProcess, GpuStatus} from '../core/types.js';
import type {CommandRunner, RunningCommand} from './command-runner.js';

/** Options for {@link GpuStream}. */
export type GpuStreamOptions = {
	readonly runner: CommandRunner;
	/** The nvidia-smi command (`--nvidia-smi`): a name on PATH, a path, or a command with args. */
	readonly nvidiaSmi: string;
	/** Device sample period (default 1000 ms). */
	readonly intervalMs?: number;
	/** Process sample period (default 2000 ms). */
	readonly processIntervalMs?: number;
	/** No device sample for this long counts as a hung nvidia-smi (default 10 s). */
	readonly timeoutMs?: number;
	/** Restart spacing after failures (default: core/backoff's). */
	readonly backoff?: BackoffPolicy;
	/** Called with a status per device sample, and with each error. */
	readonly onStatus: (status: GpuStatus) => void;
};

/** Rows of one `-lms` round arrive together; this much quiet ends a round. */
const roundQuietMs = 50;
/** How long a `ps` may take, there and here. */
const psDeadlineMs = 5000;
/** How long stop() waits for the commands to go before it returns anyway (a dead link). */
const stopWaitMs = 3000;
/** Lines of non-row output kept for the error message. */
const maxJunkLines = 20;

/** Split a stream into lines; `onLine` for each. */
function readLines(stream: Readable, onLine: (line: string) => void): void {
	const lines = createInterface({input: stream, crlfDelay: Number.POSITIVE_INFINITY});
	lines.on('line', onLine);
	// A stream destroyed under us (a dropped channel) must not throw.
	stream.on('error', () => {});
}

function collectText(stream: Readable, maxChars = 16_384): () => string {
	let text = '';
	stream.setEncoding('utf8');
	stream.on('data', (chunk: string) => {
		if (text.length < maxChars) text += chunk;
	});
	stream.on('error', () => {});
	return () => text;
}

/**
 * Streams `GpuStatus` from nvidia-smi. `start()` after `stop()` starts afresh (the lead restarts it
 * on each reconnect of the second hop); `dispose()` is a final stop.
 */
export class GpuStream {
	readonly #options: Required<Omit<GpuStreamOptions, 'backoff'>> & {backoff: BackoffPolicy};
	#epoch = 0;
	#running = false;
	#disposed = false;
	// Fields this driver answers: shrink when nvidia-smi rejects one, and stay shrunk.
	readonly #gpuFields: string[] = [...gpuQueryFields];
	readonly #appFields: string[] = [...computeAppsQueryFields];
	#device: RunningCommand | null = null;
	#apps: RunningCommand | null = null;
	#ps: RunningCommand | null = null;
	readonly #timers = new Set<NodeJS.Timeout>();
	#watchdog: NodeJS.Timeout | undefined;
	#emitTimer: NodeJS.Timeout | undefined;
	#appsCommitTimer: NodeJS.Timeout | undefined;
	#appsExpiry: NodeJS.Timeout | undefined;
	#failures = 0;
	#appFailures = 0;
	readonly #gpus = new Map<string, GpuInfo>();
	readonly #round = new Set<string>();
	#driverVersion: string | null = null;
	#processes: GpuProcess[] = [];
	#pendingApps: GpuProcess[] = [];
	// pid → what ps said (null: ps does not know it, e.g. another pid namespace).
	readonly #psCache = new Map<number, PsEntry | null>();

	constructor(options: GpuStreamOptions) {
		this.#options = {
			intervalMs: 1000,
			processIntervalMs: 2000,
			timeoutMs: 10_000,
			...options,
			backoff: options.backoff ?? defaultBackoff,
		};
	}

	/** Start sampling (no-op while running). */
	start(): void {
		if (this.#disposed || this.#running) return;
		this.#running = true;
		this.#epoch++;
		this.#failures = 0;
		this.#appFailures = 0;
		this.#startSession(this.#epoch);
	}

	/** Stop sampling and wait (briefly, never on a dead link) for the commands to end. */
	async stop(): Promise<void> {
		this.#running = false;
		this.#epoch++;
		for (const timer of this.#timers) clearTimeout(timer);
		this.#timers.clear();
		const commands = this.#killAll();
		this.#reset();
		if (commands.length === 0) return;
		let timer: NodeJS.Timeout | undefined;
		await Promise.race([
			Promise.all(commands.map(async (command) => command.exited)),
			new Promise((resolve) => {
				timer = setTimeout(resolve, stopWaitMs);
			}),
		]);
		clearTimeout(timer);
	}

	/** Stop for good. */
	async dispose(): Promise<void> {
		this.#disposed = true;
		await this.stop();
	}

	#later(epoch: number, ms: number, fn: () => void): NodeJS.Timeout {
		const timer = setTimeout(() => {
			this.#timers.delete(timer);
			if (epoch === this.#epoch) fn();
		}, ms);
		this.#timers.add(timer);
		return timer;
	}

	#cancel(timer: NodeJS.Timeout | undefined): void {
		if (!timer) return;
		clearTimeout(timer);
		this.#timers.delete(timer);
	}

	#reset(): void {
		this.#gpus.clear();
		this.#round.clear();
		this.#processes = [];
		this.#pendingApps = [];
		this.#psCache.clear();
		this.#watchdog = undefined;
		this.#emitTimer = undefined;
		this.#appsCommitTimer = undefined;
		this.#appsExpiry = undefined;
	}

	/** Kill every command of the current session; their exit handlers see they are no longer current. */
	#killAll(): RunningCommand[] {
		const commands = [this.#device, this.#apps, this.#ps].filter(
			(command): command is RunningCommand => command !== null,
		);
		this.#device = null;
		this.#apps = null;
		this.#ps = null;
		for (const command of commands) command.kill();
		return commands;
	}

	#startSession(epoch: number): void {
		this.#startDevice(epoch);
		this.#startApps(epoch);
	}

	/** End both streams, report, and start again after the backoff. */
	#restartSession(epoch: number, error: {kind: GpuErrorKind; message: string}): void {
		this.#failures++;
		this.#killAll();
		for (const timer of [this.#watchdog, this.#emitTimer, this.#appsCommitTimer, this.#appsExpiry])
			this.#cancel(timer);
		this.#reset();
		this.#options.onStatus({
			gpus: [],
			processes: [],
			error,
			driverVersion: null,
			simulated: false,
		});
		this.#later(epoch, nextDelay(this.#failures, this.#options.backoff), () =>
			this.#startSession(epoch),
		);
	}

	#armWatchdog(epoch: number, command: RunningCommand): void {
		this.#cancel(this.#watchdog);
		const {timeoutMs} = this.#options;
		this.#watchdog = this.#later(epoch, timeoutMs, () => {
			if (this.#device !== command) return;
			this.#restartSession(epoch, {
				kind: 'timeout',
				message: `nvidia-smi gave no answer for ${Math.round(timeoutMs / 1000)} s`,
			});
		});
	}

	#startDevice(epoch: number): void {
		const {runner, nvidiaSmi, intervalMs} = this.#options;
		const command = runner.spawn(gpuQueryCommand(nvidiaSmi, this.#gpuFields, intervalMs));
		this.#device = command;
		const fields = [...this.#gpuFields];
		const junk: string[] = [];
		const stderr = collectText(command.stderr);
		this.#armWatchdog(epoch, command);
		readLines(command.stdout, (line) => {
			if (this.#device !== command) return;
			const row = parseGpuRow(line, fields);
			if (!row) {
				if (line.trim() && junk.length < maxJunkLines) junk.push(line);
				return;
			}
			this.#onGpuRow(epoch, command, row.gpu, row.driverVersion, fields.includes('index'));
		});
		void command.exited.then((exit) => {
			if (this.#device !== command || epoch !== this.#epoch) return;
			this.#device = null;
			const text = `${junk.join('\n')}\n${stderr()}`;
			const field = invalidFieldIn(text);
			if (field && this.#gpuFields.includes(field) && !requiredGpuFields.includes(field)) {
				// An older driver: ask again without that field, at once.
				this.#gpuFields.splice(this.#gpuFields.indexOf(field), 1);
				this.#cancel(this.#watchdog);
				this.#startDevice(epoch);
				return;
			}
			const known = recognizeNvidiaSmiError(text);
			const message =
				known?.message ??
				(text.trim()
					? text.trim().split(/\r?\n/).slice(0, 4).join(' ')
					: `nvidia-smi stopped (${exit.signal ?? `exit code ${exit.code ?? 'unknown'}`})`);
			this.#restartSession(epoch, {kind: known?.kind ?? 'failed', message});
		});
	}

	#onGpuRow(
		epoch: number,
		command: RunningCommand,
		gpu: GpuInfo,
		driverVersion: string | null,
		hasIndex: boolean,
	): void {
		// A uuid seen again starts the next round: GPUs missing from the last one are gone.
		if (this.#round.has(gpu.uuid)) {
			for (const uuid of this.#gpus.keys()) if (!this.#round.has(uuid)) this.#gpus.delete(uuid);
			this.#round.clear();
		}
		// Without an index field (an old driver), rows come in index order: count them.
		this.#gpus.set(gpu.uuid, hasIndex ? gpu : {...gpu, index: this.#round.size});
		this.#round.add(gpu.uuid);
		if (driverVersion) this.#driverVersion = driverVersion;
		this.#failures = 0;
		this.#armWatchdog(epoch, command);
		this.#cancel(this.#emitTimer);
		this.#emitTimer = this.#later(epoch, roundQuietMs, () => this.#emit());
	}

	#emit(): void {
		const gpus = [...this.#gpus.values()].sort((a, b) => a.index - b.index);
		const processes = this.#processes.map((p) => mergePsEntry(p, this.#psCache.get(p.pid)));
		this.#options.onStatus({
			gpus,
			processes: joinProcesses(gpus, processes),
			error: null,
			driverVersion: this.#driverVersion,
			simulated: false,
		});
	}

	#startApps(epoch: number): void {
		const {runner, nvidiaSmi, processIntervalMs} = this.#options;
		const command = runner.spawn(
			computeAppsQueryCommand(nvidiaSmi, this.#appFields, processIntervalMs),
		);
		this.#apps = command;
		const fields = [...this.#appFields];
		const junk: string[] = [];
		const stderr = collectText(command.stderr);
		readLines(command.stdout, (line) => {
			if (this.#apps !== command) return;
			const row = parseComputeAppRow(line, fields);
			if (!row) {
				if (line.trim() && junk.length < maxJunkLines) junk.push(line);
				return;
			}
			this.#appFailures = 0;
			this.#pendingApps.push(row);
			this.#cancel(this.#appsCommitTimer);
			this.#appsCommitTimer = this.#later(epoch, roundQuietMs, () => this.#commitApps(epoch));
		});
		void command.exited.then(() => {
			if (this.#apps !== command || epoch !== this.#epoch) return;
			this.#apps = null;
			const field = invalidFieldIn(`${junk.join('\n')}\n${stderr()}`);
			if (field && this.#appFields.includes(field) && !requiredComputeAppsFields.includes(field)) {
				this.#appFields.splice(this.#appFields.indexOf(field), 1);
				this.#startApps(epoch);
				return;
			}
			// The device stream reports what is wrong; this one just comes back, spaced out.
			this.#appFailures++;
			this.#later(epoch, nextDelay(this.#appFailures + 1, this.#options.backoff), () => {
				if (this.#apps === null && this.#device !== null) this.#startApps(epoch);
			});
		});
	}

	/** A round of process rows is complete: it replaces the last one. */
	#commitApps(epoch: number): void {
		this.#processes = this.#pendingApps;
		this.#pendingApps = [];
		// nvidia-smi prints nothing at all for a round without processes: no round for a whole
		// period (and some) means there are none.
		this.#cancel(this.#appsExpiry);
		this.#appsExpiry = this.#later(epoch, this.#options.processIntervalMs * 1.5 + 500, () => {
			this.#processes = [];
		});
		this.#lookUpUsers(epoch);
	}

	/** Ask `ps` about pids not seen before (one at a time, with a deadline here and there). */
	#lookUpUsers(epoch: number): void {
		const pids = new Set(this.#processes.map((p) => p.pid));
		for (const pid of this.#psCache.keys()) if (!pids.has(pid)) this.#psCache.delete(pid);
		const unknown = [...pids].filter((pid) => !this.#psCache.has(pid));
		if (unknown.length === 0 || this.#ps) return;
		const command = this.#options.runner.spawn(psCommand(unknown), {deadlineMs: psDeadlineMs});
		this.#ps = command;
		const stdout = collectText(command.stdout);
		command.stderr.resume();
		const deadline = this.#later(epoch, psDeadlineMs + 1000, () => command.kill());
		void command.exited.then(() => {
			this.#cancel(deadline);
			if (this.#ps !== command || epoch !== this.#epoch) return;
			this.#ps = null;
			const entries = parsePsOutput(stdout());
			for (const pid of unknown) this.#psCache.set(pid, entries.get(pid) ?? null);
		});
	}
}
