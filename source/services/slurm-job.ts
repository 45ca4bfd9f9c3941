/**
 * gpujup's Slurm job, driven over exec channels on the login node (a {@link CommandRunner}: ssh2
 * exec over the chain in production, the same against a real sshd in tests): find the user's job
 * by name, submit one, follow its state, read where its Jupyter is, cancel it. The commands and
 * parsers are core/slurm.ts; this only runs them, with deadlines, and says what changed.
 *
 * The token stays out of every event: only {@link SlurmJobService.readToken} returns it.
 */
import {sanitizeLine} from '../core/sanitize.js';
import {shCommand} from '../core/shell.js';
import {
	activeJob,
	jobFiles,
	jobName,
	jobScript,
	parseJobEndpoint,
	parseLoginProbe,
	parseSqueueJson,
	parseSqueueText,
	parseSubmitted,
	profileProblem,
	sbatchArgsProblem,
	slurmDir,
	squeueCommand,
	squeueJsonUsable,
	loginProbeScript,
	submitScript,
	submitArgs,
	type JobEndpoint,
	type JupyterListen,
	type LoginProbe,
	type SlurmJob,
} from '../core/slurm.js';
import type {JupyterEnv} from '../core/jupyter-command.js';
import {runText, type CommandRunner} from './command-runner.js';

export type SlurmJobOptions = {
	/** Runs commands on the login node. */
	readonly runner: CommandRunner;
	/** The job is named `gpujup-<profile>`; its files are in `<state>/gpujup/slurm/<profile>`. */
	readonly profile: string;
	/** `--sbatch`, split into words (partition, gres, time, account…). */
	readonly sbatchArgs: readonly string[];
	/** A venv path may be `~/…` (the home on the cluster). */
	readonly env: JupyterEnv;
	readonly jupyterCmd: string | null;
	/** Jupyter's notebook dir on the cluster (absolute, or `~/…`); null: the user's home there. */
	readonly notebookDir: string | null;
	/**
	 * Where a job submitted from now on has Jupyter listen (default 'loopback': reached over ssh
	 * to the node; 'node': its own address, where ssh to nodes is refused). The endpoint says which.
	 */
	readonly listen?: JupyterListen;
	/** How often `start()` asks squeue (default 5 s; clusters frown on faster polling). */
	readonly pollMs?: number;
	/** Deadline of each command on the login node (default 30 s: slurmctld can be slow). */
	readonly commandTimeoutMs?: number;
	/** Wall clock (tests); default Date.now. */
	readonly now?: () => number;
};

/** What went wrong, for the message and which fix to say. */
export type SlurmErrorKind =
	/** The login node has no sbatch/squeue/scancel on PATH (or the probe failed). */
	| 'no-slurm'
	/** Slurm said no: sbatch refused the arguments, squeue failed. `message` is Slurm's. */
	| 'slurm'
	/** `--sbatch` or the profile name cannot be used. */
	| 'usage'
	/** The command did not come back (the login node's link, a hung slurmctld). */
	| 'link';

export class SlurmError extends Error {
	readonly kind: SlurmErrorKind;
	constructor(kind: SlurmErrorKind, message: string) {
		super(message);
		this.name = 'SlurmError';
		this.kind = kind;
	}
}

/** What the service says, in order. */
export type SlurmJobEvent =
	/** The job's state changed (state, reason, node, GPUs, or the time left by a poll). */
	| {readonly type: 'job'; readonly job: SlurmJob}
	/** The running job wrote where its Jupyter is (once per job). */
	| {readonly type: 'endpoint'; readonly endpoint: JobEndpoint}
	/** A poll failed; polling goes on. */
	| {readonly type: 'error'; readonly error: SlurmError};

type Result = {readonly stdout: string; readonly stderr: string; readonly code: number | null};

/** The first line of a command's complaint, clean for one line of the dashboard. */
const complaint = (result: Result, fallback: string): string => {
	const line = result.stderr
		.split('\n')
		.map((text) => sanitizeLine(text).trim())
		.find((text) => text !== '');
	return line ?? fallback;
};

/** A job Slurm no longer lists (MinJobAge passed): ended, reason unknown. */
const forgotten = (job: SlurmJob): SlurmJob => ({
	...job,
	state: 'ENDED',
	slurmState: job.state === 'ENDED' ? job.slurmState : 'GONE',
	reason: job.state === 'ENDED' ? job.reason : 'no longer listed by squeue',
	timeLeftS: null,
});

const sameJob = (a: SlurmJob | null, b: SlurmJob): boolean =>
	a !== null &&
	a.id === b.id &&
	a.state === b.state &&
	a.slurmState === b.slurmState &&
	a.reason === b.reason &&
	a.node === b.node &&
	a.gpus === b.gpus &&
	a.timeLeftS === b.timeLeftS;

/**
 * One profile's job on one cluster. `attach()` finds or submits it; `start()` follows it until
 * `dispose()`. Every method that talks to the login node rejects with a {@link SlurmError}.
 */
export class SlurmJobService {
	readonly #options: SlurmJobOptions;
	readonly #listeners = new Set<(event: SlurmJobEvent) => void>();
	#probe: LoginProbe | null = null;
	#job: SlurmJob | null = null;
	#endpoint: JobEndpoint | null = null;
	#timer: NodeJS.Timeout | undefined;
	#polling = false;
	#disposed = false;
	#json: boolean | null = null;
	#listen: JupyterListen;

	constructor(options: SlurmJobOptions) {
		const problem = profileProblem(options.profile) ?? sbatchArgsProblem(options.sbatchArgs);
		if (problem) throw new SlurmError('usage', problem);
		this.#options = options;
		this.#listen = options.listen ?? 'loopback';
	}

	/** Where the Jupyter of jobs submitted from now on listens (ssh to the nodes was refused). */
	setListen(listen: JupyterListen): void {
		this.#listen = listen;
	}

	/** The job as last seen; null before attach(). */
	get job(): SlurmJob | null {
		return this.#job;
	}

	/** Where the job's Jupyter is, once the job wrote it. */
	get endpoint(): JobEndpoint | null {
		return this.#endpoint;
	}

	/** Listen; returns the unsubscribe. */
	on(listener: (event: SlurmJobEvent) => void): () => void {
		this.#listeners.add(listener);
		return () => this.#listeners.delete(listener);
	}

	/** Who the user is on the login node and which Slurm it has (asked once, then kept). */
	async probe(): Promise<LoginProbe> {
		if (this.#probe) return this.#probe;
		const result = await this.#run(loginProbeScript);
		const probe = parseLoginProbe(result.stdout);
		if (!probe)
			throw new SlurmError(
				'no-slurm',
				`the login node's shell did not answer gpujup's probe: ${complaint(result, 'no output')}`,
			);
		const missing = (['sbatch', 'squeue', 'scancel'] as const).filter((name) => !probe[name]);
		if (missing.length > 0)
			throw new SlurmError(
				'no-slurm',
				`${missing.join(', ')} not found on the login node's PATH: is this a Slurm login node? (a module system may need \`module load slurm\` in ~/.bashrc)`,
			);
		this.#probe = probe;
		return probe;
	}

	/** gpujup's dir for this profile on the cluster. */
	async dir(): Promise<string> {
		return slurmDir((await this.probe()).stateHome, this.#options.profile);
	}

	/** Every job of this profile's name that squeue lists (ended ones too, for a while). */
	async list(): Promise<SlurmJob[]> {
		const probe = await this.probe();
		const name = jobName(this.#options.profile);
		const now = (this.#options.now ?? Date.now)();
		this.#json ??= squeueJsonUsable(probe.version);
		const result = await this.#run(squeueCommand(name, this.#json ? 'json' : 'text'));
		if (result.code !== 0)
			throw new SlurmError('slurm', `squeue failed: ${complaint(result, `exit ${result.code}`)}`);
		if (this.#json) {
			const jobs = parseSqueueJson(result.stdout, name, probe.user, now);
			if (jobs) return jobs;
			// A build whose --json is missing or broken: the text form from now on.
			this.#json = false;
			return this.list();
		}
		return parseSqueueText(result.stdout, name);
	}

	/** The user's pending or running job of this profile, or null. */
	async find(): Promise<SlurmJob | null> {
		return activeJob(await this.list());
	}

	/** Submit a new job (a new token with it) and return it as squeue first shows it. */
	async submit(): Promise<SlurmJob> {
		const probe = await this.probe();
		const dir = await this.dir();
		const env = this.#options.env;
		const script = jobScript({
			dir,
			profile: this.#options.profile,
			env: env.kind === 'venv' ? {...env, path: underHome(env.path, probe.home)} : env,
			cmd: this.#options.jupyterCmd,
			notebookDir: underHome(this.#options.notebookDir ?? '~', probe.home),
			allowRoot: probe.uid === 0,
			listen: this.#listen,
		});
		const args = submitArgs({
			dir,
			profile: this.#options.profile,
			script,
			sbatchArgs: this.#options.sbatchArgs,
		});
		const result = await this.#run(shCommand(submitScript, args, 'gpujup-submit'));
		const id = parseSubmitted(result.stdout);
		if (result.code !== 0 || id === null)
			throw new SlurmError(
				'slurm',
				`sbatch refused the job: ${complaint(result, `exit ${result.code}`)}`,
			);
		const job = (await this.list()).find((listed) => listed.id === id);
		// Listed at once by slurmctld; a job that is not would be an odd cluster: say pending.
		const seen: SlurmJob = job ?? {
			id,
			name: jobName(this.#options.profile),
			state: 'PENDING',
			slurmState: 'PENDING',
			reason: null,
			node: null,
			gpus: null,
			timeLeftS: null,
		};
		this.#track(seen);
		return seen;
	}

	/** The running or pending job (found), else a new one (submitted); it is then followed. */
	async attach(): Promise<SlurmJob> {
		const found = await this.find();
		if (found) {
			this.#track(found);
			if (found.state === 'RUNNING') await this.#readEndpoint(found);
			return found;
		}
		return this.submit();
	}

	/** Ask squeue about the followed job now; emits what changed. */
	async refresh(): Promise<SlurmJob | null> {
		const current = this.#job;
		if (!current) return null;
		const listed = (await this.list()).find((job) => job.id === current.id);
		const job = listed ?? forgotten(current);
		this.#track(job);
		if (job.state === 'RUNNING' && this.#endpoint?.jobId !== job.id) await this.#readEndpoint(job);
		return job;
	}

	/** Poll every `pollMs` until dispose() (no-op while polling). Errors are events. */
	start(): void {
		if (this.#polling || this.#disposed) return;
		this.#polling = true;
		const tick = async () => {
			try {
				await this.refresh();
			} catch (error: unknown) {
				this.#emit({type: 'error', error: asSlurmError(error)});
			}
			if (!this.#polling || this.#disposed) return;
			this.#timer = setTimeout(() => void tick(), this.#options.pollMs ?? 5000);
		};
		this.#timer = setTimeout(() => void tick(), this.#options.pollMs ?? 5000);
	}

	/** Stop polling (the job goes on). */
	stop(): void {
		this.#polling = false;
		clearTimeout(this.#timer);
	}

	/** gpujup's token for this profile's Jupyter; kept out of events, logs and argv. */
	async readToken(): Promise<string> {
		const dir = await this.dir();
		const result = await this.#run(shCommand('cat "$1"', [jobFiles(dir).token], 'gpujup-token'));
		const token = result.stdout.trim();
		if (result.code !== 0 || !/^[\da-f]{32,}$/i.test(token))
			throw new SlurmError(
				'slurm',
				`cannot read gpujup's token on the cluster: ${complaint(result, 'empty')}`,
			);
		return token;
	}

	/** `scancel` the followed job (frees its GPUs); resolves once squeue no longer has it active. */
	async cancel(): Promise<void> {
		const job = this.#job;
		if (!job || job.state === 'ENDED') return;
		const result = await this.#run(shCommand('exec scancel "$1"', [job.id], 'gpujup-scancel'));
		if (result.code !== 0)
			throw new SlurmError(
				'slurm',
				`scancel ${job.id} failed: ${complaint(result, `exit ${result.code}`)}`,
			);
		await this.refresh();
	}

	/** Stop polling and forget the listeners; the job itself is left as it is. */
	dispose(): void {
		this.#disposed = true;
		this.stop();
		this.#listeners.clear();
	}

	async #readEndpoint(job: SlurmJob): Promise<void> {
		const dir = await this.dir();
		const file = jobFiles(dir, job.id).endpoint;
		const result = await this.#run(
			shCommand('cat "$1" 2>/dev/null || :', [file], 'gpujup-endpoint'),
		);
		const endpoint = parseJobEndpoint(result.stdout, job.id);
		// Not written yet (the env is activating): the next poll reads it again.
		if (!endpoint || this.#job?.id !== job.id) return;
		this.#endpoint = endpoint;
		this.#emit({type: 'endpoint', endpoint});
	}

	#track(job: SlurmJob): void {
		if (this.#job?.id !== job.id) this.#endpoint = null;
		if (sameJob(this.#job, job)) return;
		this.#job = job;
		this.#emit({type: 'job', job});
	}

	#emit(event: SlurmJobEvent): void {
		for (const listener of [...this.#listeners]) listener(event);
	}

	async #run(command: string): Promise<Result> {
		const timeoutMs = this.#options.commandTimeoutMs ?? 30_000;
		let result: Awaited<ReturnType<typeof runText>>;
		try {
			result = await runText(this.#options.runner, command, {timeoutMs});
		} catch {
			throw new SlurmError(
				'link',
				`the login node did not answer within ${Math.round(timeoutMs / 1000)} s`,
			);
		}
		if (result.code === null && result.signal === null)
			throw new SlurmError(
				'link',
				`the login node is not reachable: ${complaint(result, 'link down')}`,
			);
		return result;
	}
}

/** `~` and `~/…` (paths on the cluster as the user wrote them) under the home there. */
export function underHome(path: string, home: string): string {
	if (path === '~') return home;
	return path.startsWith('~/') ? `${home.replace(/\/+$/, '')}/${path.slice(2)}` : path;
}

function asSlurmError(error: unknown): SlurmError {
	return error instanceof SlurmError
		? error
		: new SlurmError('link', error instanceof Error ? error.message : String(error));
}
