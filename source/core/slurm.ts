/**
 * Slurm, as far as gpujup's job goes: the commands run on the login node (as POSIX sh, one line,
 * see core/shell.ts), what they print parsed into a typed job, and the batch script that starts
 * Jupyter on the compute node. Pure: services/slurm-job.ts runs them.
 *
 * Files, all in the user's state dir on the cluster's shared filesystem (`slurmDir`, 0700):
 *   token           gpujup's Jupyter token (0600), made on the login node at each submit; the job
 *                   script reads it into JUPYTER_TOKEN, so it is in no process's arguments
 *   job.sh          the batch script (0700)
 *   job-<id>.json   written by the job on its node before Jupyter starts: node, port, pid (0600)
 *   job-<id>.log    the job's output, Jupyter's log (0600: the job runs under umask 077)
 */
import {
	activation,
	describeEnv,
	envKernel,
	jupyterArgs,
	jupyterLaunch,
	type JupyterEnv,
} from './jupyter-command.js';
import type {Notification} from './kernels.js';
import {sanitizeLine} from './sanitize.js';
import {shellQuote} from './shell.js';

/** The job's state as gpujup shows it (the JSON contract's `job.state`). */
export type JobState = 'PENDING' | 'RUNNING' | 'COMPLETING' | 'ENDED';

/** One Slurm job as squeue shows it. */
export type SlurmJob = {
	readonly id: string;
	readonly name: string;
	readonly state: JobState;
	/** Slurm's own state word: PENDING, RUNNING, CANCELLED, TIMEOUT, NODE_FAIL, … */
	readonly slurmState: string;
	/**
	 * Why: for PENDING, Slurm's reason (`Priority`, `Resources`, `QOS…`, with its detail); for
	 * ENDED, the final state and reason (`TIMEOUT`, `CANCELLED`, `FAILED: NonZeroExitCode`). Null
	 * when Slurm gives none.
	 */
	readonly reason: string | null;
	/** The node running the batch script (where Jupyter is), null until it runs. */
	readonly node: string | null;
	/** GPUs allocated (running) or asked for (pending); null when none are named. */
	readonly gpus: number | null;
	/** Seconds of walltime left when squeue answered; null while pending or without a limit. */
	readonly timeLeftS: number | null;
};

/** The JSON contract's job object (`{"type":"job",…}` events and `job` in `status --json`). */
export type JobObject = Pick<SlurmJob, 'id' | 'state' | 'reason' | 'node' | 'gpus' | 'timeLeftS'>;

/**
 * A job as the JSON contract writes it: {@link SlurmJob}, or the store's job, with their own
 * bookkeeping left out.
 */
export function jobObject(job: JobObject): JobObject {
	return {
		id: job.id,
		state: job.state,
		reason: job.reason,
		node: job.node,
		gpus: job.gpus,
		timeLeftS: job.timeLeftS,
	};
}

/** Where a running job's Jupyter is: what the job script writes for gpujup. */
export type JobEndpoint = {
	readonly jobId: string;
	/** The node's Slurm name (SLURMD_NODENAME): what ssh and forwardOut are aimed at. */
	readonly node: string;
	/** The address Jupyter listens on, on the node: 127.0.0.1, or the node's own (listen 'node'). */
	readonly host: string;
	/** How the job was made to listen: reached over ssh to the node, or forwarded to its address. */
	readonly listen: JupyterListen;
	/** Jupyter's port there. */
	readonly port: number;
	/** Jupyter's pid on the node. */
	readonly pid: number;
};

/** A Slurm version as `squeue --version` prints it (`slurm 22.05.8`). */
export type SlurmVersion = {readonly major: number; readonly minor: number; readonly text: string};

/** The job name gpujup gives (and looks for): one job per profile. */
export function jobName(profile: string): string {
	return `gpujup-${profile}`;
}

/** Profile names that are safe as a job name and a directory name. */
export function profileProblem(profile: string): string | null {
	return /^[\w.-]{1,64}$/.test(profile) && !/^\.\.?$/.test(profile)
		? null
		: `profile name ${JSON.stringify(profile)} cannot name a Slurm job: use letters, digits, '.', '_' and '-'`;
}

/** gpujup's directory for `profile` on the cluster, under the state dir the login node reported. */
export function slurmDir(stateHome: string, profile: string): string {
	return `${stateHome.replace(/\/+$/, '')}/gpujup/slurm/${profile}`;
}

export const jobFiles = (dir: string, jobId = '%j') => ({
	token: `${dir}/token`,
	script: `${dir}/job.sh`,
	endpoint: `${dir}/job-${jobId}.json`,
	log: `${dir}/job-${jobId}.log`,
});

// --- the login node ----------------------------------------------------------------------------

/**
 * One exec on the login node: who and where the user is, and which Slurm commands there are.
 * Lines `key=value`; see {@link parseLoginProbe}.
 */
export const loginProbeScript = [
	'printf "home=%s\\n" "$HOME"',
	'printf "state=%s\\n" "${XDG_STATE_HOME:-$HOME/.local/state}"',
	'printf "uid=%s\\n" "$(id -u)"',
	'printf "user=%s\\n" "$(id -un)"',
	'for c in sbatch squeue scancel; do printf "%s=%s\\n" "$c" "$(command -v "$c")"; done',
	'printf "version=%s\\n" "$(squeue --version 2>/dev/null | head -n 1)"',
].join('; ');

export type LoginProbe = {
	readonly home: string;
	readonly stateHome: string;
	readonly uid: number;
	readonly user: string;
	/** Paths of the commands, null where the login node has none on PATH. */
	readonly sbatch: string | null;
	readonly squeue: string | null;
	readonly scancel: string | null;
	readonly version: SlurmVersion | null;
};

/** {@link loginProbeScript}'s output; null when it is not that (another shell's noise only). */
export function parseLoginProbe(text: string): LoginProbe | null {
	const values = new Map<string, string>();
	for (const line of text.split('\n')) {
		const at = line.indexOf('=');
		if (at > 0) values.set(line.slice(0, at), line.slice(at + 1).trimEnd());
	}
	const home = values.get('home');
	const stateHome = values.get('state');
	const uid = Number(values.get('uid'));
	const user = values.get('user');
	if (!home?.startsWith('/') || !stateHome?.startsWith('/') || !Number.isInteger(uid) || !user)
		return null;
	const path = (key: string) => {
		const value = values.get(key);
		return value?.startsWith('/') ? value : null;
	};
	return {
		home,
		stateHome,
		uid,
		user,
		sbatch: path('sbatch'),
		squeue: path('squeue'),
		scancel: path('scancel'),
		version: parseSlurmVersion(values.get('version') ?? ''),
	};
}

/** `slurm 22.05.8` → {22, 5}; null for anything else. */
export function parseSlurmVersion(text: string): SlurmVersion | null {
	const match = /slurm(?:-wlm)?\s+(\d+)\.(\d+)/i.exec(text);
	return match ? {major: Number(match[1]), minor: Number(match[2]), text: text.trim()} : null;
}

/**
 * Whether `squeue --json` can be used: Slurm before 23.02 prints every job of the cluster with
 * `--json`, whatever `--me`, `--name` or `--jobs` say (seen with Debian's 22.05), which is far too
 * much to poll every few seconds on a busy cluster; from 23.02 it honours them.
 */
export function squeueJsonUsable(version: SlurmVersion | null): boolean {
	return version !== null && (version.major > 23 || (version.major === 23 && version.minor >= 2));
}

/**
 * squeue's fields for the text form, each followed by `|`; the reason last, since an admin's
 * reason text may hold anything, `|` too.
 */
const formatFields = [
	'JobID',
	'Name',
	'State',
	'BatchHost',
	'TimeLeft',
	'tres-alloc',
	'tres-per-node',
	'Reason',
];

/** The user's jobs named `name`, in every state squeue still knows (ended ones for MinJobAge). */
export function squeueCommand(name: string, format: 'json' | 'text'): string {
	const common = `squeue --me --states=all --name=${shellQuote(name)}`;
	return format === 'json'
		? `${common} --json`
		: `${common} --noheader --Format=${shellQuote(formatFields.map((field) => `${field}:|`).join(','))}`;
}

/** Active states: the job holds (or waits for) an allocation. */
const pendingStates = new Set([
	'PENDING',
	'CONFIGURING',
	'REQUEUED',
	'REQUEUE_FED',
	'REQUEUE_HOLD',
	'RESV_DEL_HOLD',
	'SUSPENDED',
	'STOPPED',
	'RESIZING',
	'SIGNALING',
	'STAGE_OUT',
]);

/** Slurm's state word → gpujup's state. */
export function jobState(slurmState: string): JobState {
	const state = slurmState.toUpperCase();
	if (state === 'RUNNING') return 'RUNNING';
	if (state === 'COMPLETING') return 'COMPLETING';
	if (pendingStates.has(state)) return 'PENDING';
	return 'ENDED';
}

/** Slurm's words are remote text: one clean line, or null for its ways of saying none. */
const noReason = (reason: string | null | undefined): string | null => {
	const text = sanitizeLine(reason ?? '').trim();
	return text === '' || text === 'None' || text === '(null)' ? null : text;
};

/** What the job shows as its reason, from Slurm's state and reason words. */
function reasonFor(slurmState: string, reason: string | null): string | null {
	const state = jobState(slurmState);
	if (state === 'ENDED') return reason ? `${slurmState}: ${reason}` : slurmState;
	if (state === 'PENDING') {
		// A suspended or configuring job says so before (or instead of) a scheduler reason.
		if (slurmState !== 'PENDING') return reason ? `${slurmState}: ${reason}` : slurmState;
		return reason;
	}
	return null;
}

/**
 * Slurm's `[days-]hours:minutes:seconds` (leading parts left out: `10:00` is ten minutes) in
 * seconds; null for `UNLIMITED`, `NOT_SET`, `INVALID` and anything else.
 */
export function parseSlurmDuration(text: string): number | null {
	const match = /^(?:(\d+)-)?(\d+(?::\d+){0,2})$/.exec(text.trim());
	if (!match) return null;
	const parts = match[2]!.split(':').map(Number);
	const [h, m, sec] =
		parts.length === 3 ? parts : parts.length === 2 ? [0, ...parts] : [0, 0, ...parts];
	return Number(match[1] ?? 0) * 86_400 + h! * 3600 + m! * 60 + sec!;
}

/**
 * GPUs in a TRES string: `gres/gpu=2` (allocated, untyped total), `gres/gpu:a100=2` (typed, summed
 * when there is no total), `gres:gpu:2` / `gres/gpu:a100:2` / `gpu:2` (asked per node); null for
 * none.
 */
export function gpusInTres(text: string | null | undefined): number | null {
	if (!text) return null;
	let total: number | null = null;
	let typed = 0;
	let typedSeen = false;
	for (const part of text.split(',')) {
		const item = part.trim();
		const alloc = /^gres\/gpu(?::[^=]+)?=(\d+)$/.exec(item);
		if (alloc) {
			if (item.includes(':')) {
				typed += Number(alloc[1]);
				typedSeen = true;
			} else total = Number(alloc[1]);
			continue;
		}
		const asked = /^(?:gres[:/])?gpu(?::[^:,=]+)?:(\d+)$/.exec(item);
		if (asked) {
			typed += Number(asked[1]);
			typedSeen = true;
		}
	}
	return total ?? (typedSeen ? typed : null);
}

/**
 * The text form of {@link squeueCommand}: one job a line, fields ending in `|`, the reason last.
 * Lines of other names or malformed are skipped (squeue pads nothing with `:|`).
 */
export function parseSqueueText(text: string, name: string): SlurmJob[] {
	const jobs: SlurmJob[] = [];
	for (const line of text.split('\n')) {
		if (line.trim() === '') continue;
		const parts = line.split('|');
		if (parts.length < formatFields.length) continue;
		const [id, jobNameField, slurmState, batchHost, timeLeft, tresAlloc, tresPerNode] = parts.map(
			(part) => part.trim(),
		);
		const reason = parts.slice(formatFields.length - 1, -1).join('|');
		if (!id || !/^\d+(?:_\d+)?$/.test(id) || jobNameField !== name) continue;
		if (!slurmState || !/^[A-Z_]+$/.test(slurmState)) continue;
		const state = jobState(slurmState);
		const active = state === 'RUNNING' || state === 'COMPLETING';
		jobs.push({
			id,
			name,
			state,
			slurmState,
			reason: reasonFor(slurmState, noReason(reason)),
			node: active || state === 'ENDED' ? nodeName(batchHost) : null,
			gpus: gpusInTres(active ? tresAlloc : undefined) ?? gpusInTres(tresPerNode),
			timeLeftS: active ? parseSlurmDuration(timeLeft ?? '') : null,
		});
	}
	return jobs;
}

const nodeName = (text: string | undefined): string | null => {
	const value = sanitizeLine(text ?? '').trim();
	return value === '' || value === 'N/A' || value === '(null)' || value === 'None' ? null : value;
};

/** A JSON number as Slurm writes it: plain (≤ 23.02), or `{set, infinite, number}` (later). */
function slurmNumber(value: unknown): number | null {
	if (typeof value === 'number') return Number.isFinite(value) ? value : null;
	if (value && typeof value === 'object') {
		const record = value as {set?: unknown; infinite?: unknown; number?: unknown};
		if (record.set === false || record.infinite === true) return null;
		return typeof record.number === 'number' ? record.number : null;
	}
	return null;
}

const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/**
 * `squeue --json`: the jobs named `name` of `user` (filtered here too: before 23.02 squeue ignores
 * its filters with --json). `nowMs` turns the job's end time into time left. Null when the text is
 * not squeue's JSON.
 */
export function parseSqueueJson(
	json: string,
	name: string,
	user: string,
	nowMs: number,
): SlurmJob[] | null {
	let data: unknown;
	try {
		data = JSON.parse(json);
	} catch {
		return null;
	}
	const list = (data as {jobs?: unknown} | null)?.jobs;
	if (!Array.isArray(list)) return null;
	const jobs: SlurmJob[] = [];
	for (const item of list as Array<Record<string, unknown>>) {
		if (!item || typeof item !== 'object') continue;
		if (text(item['name']) !== name) continue;
		const owner = text(item['user_name']);
		if (owner !== null && owner !== user) continue;
		const id = slurmNumber(item['job_id']);
		// 22.05: "RUNNING"; 23.11 and later: ["RUNNING"] (plus flags such as "COMPLETING").
		const rawState = item['job_state'];
		const states = Array.isArray(rawState)
			? rawState.filter((s): s is string => typeof s === 'string')
			: [];
		const slurmState = typeof rawState === 'string' ? rawState : (states[0] ?? null);
		if (id === null || slurmState === null || !/^[A-Z_]+$/.test(slurmState)) continue;
		const stateWord = states.includes('COMPLETING') ? 'COMPLETING' : slurmState;
		const state = jobState(stateWord);
		const active = state === 'RUNNING' || state === 'COMPLETING';
		// Slurm's word (`ReqNodeNotAvail`, `Priority`) first, as `%r` writes it; the description
		// after it when it says more (for a while after a submit it is a sentence of its own).
		const word = noReason(text(item['state_reason']));
		const description = noReason(text(item['state_description']));
		const reasonText =
			word && description && !description.startsWith(word)
				? `${word} (${description})`
				: (description ?? word);
		const end = slurmNumber(item['end_time']);
		const limit = slurmNumber(item['time_limit']);
		jobs.push({
			id: String(id),
			name,
			state,
			slurmState: stateWord,
			reason: reasonFor(stateWord, reasonText),
			node:
				active || state === 'ENDED'
					? nodeName(text(item['batch_host']) ?? text(item['nodes']) ?? '')
					: null,
			gpus:
				gpusInTres(active ? text(item['tres_alloc_str']) : undefined) ??
				gpusInTres(text(item['tres_per_node'])) ??
				gpusInTres(text(item['tres_per_job'])),
			// No limit (null, or infinite) means no countdown, whatever end_time says.
			timeLeftS:
				active && limit !== null && end !== null && end > 0
					? Math.max(0, Math.round(end - nowMs / 1000))
					: null,
		});
	}
	return jobs;
}

/**
 * The job gpujup attaches to among the user's jobs of that name: a running one first, then the
 * newest pending one; ended ones never. Null when there is none (submit one).
 */
export function activeJob(jobs: readonly SlurmJob[]): SlurmJob | null {
	const byNewest = [...jobs].sort((a, b) => Number.parseInt(b.id, 10) - Number.parseInt(a.id, 10));
	return (
		byNewest.find((job) => job.state === 'RUNNING') ??
		byNewest.find((job) => job.state === 'COMPLETING') ??
		byNewest.find((job) => job.state === 'PENDING') ??
		null
	);
}

// --- sbatch --------------------------------------------------------------------------------------

/** sbatch options gpujup sets itself, which `--sbatch` must not give. */
const ownOptions: ReadonlyArray<readonly [RegExp, string]> = [
	[
		/^(-J|--job-name)(=|$)|^-J./,
		'gpujup names the job itself (gpujup-<profile>), to find it again',
	],
	[/^(-o|--output)(=|$)|^-o./, 'gpujup sends the job’s output to its own 0600 log'],
	[/^(-e|--error)(=|$)|^-e./, 'gpujup sends the job’s output to its own 0600 log'],
	[/^--wrap(=|$)/, 'gpujup writes the job script itself'],
	[/^--parsable$/, 'gpujup reads the job id itself'],
	[/^(-a|--array)(=|$)|^-a./, 'gpujup runs one Jupyter, not an array of them'],
];

/** Why `--sbatch` arguments cannot be used, or null. */
export function sbatchArgsProblem(args: readonly string[]): string | null {
	const first = args[0];
	// Later words may be an option's value (`--partition gpu`); the first one must be an option.
	if (first !== undefined && !first.startsWith('-'))
		return `${JSON.stringify(first)} is not an sbatch option: gpujup writes the job script itself, so give only options (e.g. --partition gpu --gres=gpu:1 --time 4:00:00)`;
	for (const arg of args) {
		for (const [pattern, why] of ownOptions)
			if (pattern.test(arg)) return `${JSON.stringify(arg)} cannot be given: ${why}`;
	}
	return null;
}

/** The partitions `--sbatch` names (`-p a,b`, `-pa`, `--partition a`, `--partition=a`). */
export function partitionsIn(args: readonly string[]): string[] {
	const names: string[] = [];
	for (const [i, arg] of args.entries()) {
		let value: string | undefined;
		if (arg === '-p' || arg === '--partition') value = args[i + 1];
		else if (arg.startsWith('--partition=')) value = arg.slice('--partition='.length);
		else if (/^-p./.test(arg)) value = arg.slice(2);
		if (value) names.push(...value.split(',').filter(Boolean));
	}
	return [...new Set(names)];
}

/** What the job script needs to know. */
export type JobScriptOptions = {
	/** {@link slurmDir}: token in, endpoint file out. */
	readonly dir: string;
	readonly profile: string;
	readonly env: JupyterEnv;
	/** `--jupyter-cmd`; null: `jupyter lab`, else `jupyter notebook`. */
	readonly cmd: string | null;
	/** Absolute, on the cluster. */
	readonly notebookDir: string;
	/** The user is root (Jupyter refuses root without --allow-root). */
	readonly allowRoot: boolean;
	/**
	 * Where Jupyter listens: the node's 127.0.0.1 (default; reached over ssh to the node), or the
	 * node's own address (reached by forwarding from the login node where ssh to nodes is refused).
	 */
	readonly listen?: JupyterListen;
};

/** See {@link JobScriptOptions.listen}. */
export type JupyterListen = 'loopback' | 'node';

/** Picks a free port on the address in argv[1] with whatever python the env has. */
const pickPort =
	'import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])';

/**
 * The batch script (bash: conda's activation wants it). It reads the token from the 0600 file into
 * JUPYTER_TOKEN, activates the env, picks a free port on 127.0.0.1 (or, with `listen: 'node'`, on
 * the node's own address, for clusters that refuse ssh to their nodes), writes node, address, port
 * and its own pid (Jupyter's, after `exec`) to the endpoint file, and execs Jupyter with
 * `--port-retries=0`. The token is required either way.
 */
export function jobScript(options: JobScriptOptions): string {
	const files = jobFiles(options.dir, '$SLURM_JOB_ID');
	const args = jupyterArgs({
		port: 0,
		notebookDir: options.notebookDir,
		allowRoot: options.allowRoot,
	})
		.map((arg) =>
			arg.startsWith('--port=')
				? '"--port=$__gpujup_port"'
				: arg.startsWith('--ip=')
					? '"--ip=$__gpujup_ip"'
					: shellQuote(arg),
		)
		.join(' ');
	const dataDir = `${options.dir}/jupyter-data`;
	const fail = (message: string) => `{ echo ${shellQuote(`gpujup: ${message}`)} >&2; exit 1; }`;
	const listen = options.listen ?? 'loopback';
	return [
		'#!/bin/bash',
		`# Written by gpujup for profile ${options.profile}: Jupyter on this node (${listen === 'loopback' ? '127.0.0.1' : 'its own address'}) with the`,
		'# token in the file next to this one. gpujup rewrites it at each submit.',
		'umask 077',
		`__gpujup_dir=${shellQuote(options.dir)}`,
		`[ -s ${shellQuote(files.token)} ] || ${fail(`no token in ${files.token}`)}`,
		`JUPYTER_TOKEN=$(cat ${shellQuote(files.token)}) || exit 1`,
		'export JUPYTER_TOKEN',
		`{ ${activation(options.env)}${envKernel(options.env, options.env.kind === 'none' ? null : dataDir)}:; } || exit $?`,
		'__gpujup_node=${SLURMD_NODENAME:-$(hostname -s)}',
		listen === 'loopback'
			? '__gpujup_ip=127.0.0.1'
			: `__gpujup_ip=$(getent ahostsv4 "$__gpujup_node" | awk 'NR == 1 {print $1}'); [ -n "$__gpujup_ip" ] || ${fail('cannot find this node’s address (getent ahostsv4 on its name)')}`,
		`__gpujup_py=$(command -v python3 || command -v python) || ${fail('no python on this node')}`,
		`__gpujup_port=$("$__gpujup_py" -c ${shellQuote(pickPort)} "$__gpujup_ip") || ${fail('cannot pick a free port')}`,
		`__gpujup_info="$__gpujup_dir/job-$SLURM_JOB_ID.json"`,
		`printf '{"jobId":"%s","node":"%s","host":"%s","listen":"${listen}","port":%s,"pid":%s}\\n' "$SLURM_JOB_ID" "$__gpujup_node" "$__gpujup_ip" "$__gpujup_port" "$$" > "$__gpujup_info.tmp" && mv -f "$__gpujup_info.tmp" "$__gpujup_info" || ${fail('cannot write the endpoint file')}`,
		`echo "[gpujup] job $SLURM_JOB_ID: Jupyter on $__gpujup_node $__gpujup_ip:$__gpujup_port (env ${describeEnv(options.env).replaceAll(/["$`\\]/g, '')})"`,
		jupyterLaunch(options.cmd, args),
		'',
	].join('\n');
}

/**
 * The login-node script that submits: `sh -c SCRIPT gpujup-submit DIR SCRIPT_BASE64 ARGS…`. It
 * makes the 0700 dir, writes the job script (sent base64: a remote command is one line), makes a
 * new token (0600, from /dev/urandom; it never leaves the cluster but through `readToken`), and
 * execs `sbatch --parsable ARGS…`, whose output is the job id.
 */
export const submitScript = [
	'd=$1; s=$2; shift 2',
	'umask 077',
	'mkdir -p "$d" && chmod 700 "$d" || exit 1',
	'printf %s "$s" | base64 -d > "$d/job.sh.tmp" && chmod 700 "$d/job.sh.tmp" && mv -f "$d/job.sh.tmp" "$d/job.sh" || exit 1',
	'head -c 32 /dev/urandom | od -An -vtx1 | tr -d \' \\n\' > "$d/token.tmp" && [ -s "$d/token.tmp" ] && mv -f "$d/token.tmp" "$d/token" || exit 1',
	'exec sbatch --parsable "$@"',
].join('; ');

/** The arguments after the script name for {@link submitScript}. */
export function submitArgs(options: {
	readonly dir: string;
	readonly profile: string;
	readonly script: string;
	readonly sbatchArgs: readonly string[];
}): string[] {
	const files = jobFiles(options.dir);
	return [
		options.dir,
		Buffer.from(options.script, 'utf8').toString('base64'),
		...options.sbatchArgs,
		`--job-name=${jobName(options.profile)}`,
		`--output=${files.log}`,
		files.script,
	];
}

/** `sbatch --parsable`'s `ID` or `ID;cluster`; null for anything else. */
export function parseSubmitted(text: string): string | null {
	const line = text.trim().split('\n').pop()?.trim() ?? '';
	const match = /^(\d+)(?:;[\w.-]+)?$/.exec(line);
	return match ? match[1]! : null;
}

/** The endpoint file the job wrote; null unless it is well formed and for `jobId`. */
export function parseJobEndpoint(json: string, jobId: string): JobEndpoint | null {
	let data: unknown;
	try {
		data = JSON.parse(json);
	} catch {
		return null;
	}
	if (!data || typeof data !== 'object') return null;
	const record = data as Record<string, unknown>;
	const port = record['port'];
	const pid = record['pid'];
	const node = record['node'];
	if (String(record['jobId']) !== jobId) return null;
	if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) return null;
	if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 1) return null;
	// A host name: what ssh and forwardOut will be given.
	if (typeof node !== 'string' || !/^[A-Za-z\d][\w.-]{0,252}$/.test(node)) return null;
	const host = record['host'] ?? '127.0.0.1';
	if (typeof host !== 'string' || !/^\d{1,3}(?:\.\d{1,3}){3}$/.test(host)) return null;
	const listen: JupyterListen = record['listen'] === 'node' ? 'node' : 'loopback';
	return {jobId, node, host, listen, port, pid};
}

// --- notifications ---------------------------------------------------------------------------

/** Time left at which `job-ending` warns (the SPEC: 10 minutes). */
export const jobEndingWarnS = 600;

const minutes = (seconds: number) =>
	seconds >= 120 ? `${Math.round(seconds / 60)} min` : `${Math.max(0, Math.round(seconds))} s`;

/**
 * What the user hears about between two sightings of the job: `job-ending` once when its time
 * left first falls to {@link jobEndingWarnS} or below, `job-ended` when it ends (walltime,
 * preemption, node failure, scancel) with Slurm's reason. A new job (another id) starts afresh.
 */
export function jobNotifications(previous: SlurmJob | null, next: SlurmJob): Notification[] {
	const same = previous !== null && previous.id === next.id;
	const notes: Notification[] = [];
	const wasLeft = same ? previous.timeLeftS : null;
	const left = next.timeLeftS;
	if (
		(next.state === 'RUNNING' || next.state === 'COMPLETING') &&
		left !== null &&
		left <= jobEndingWarnS &&
		(wasLeft === null || wasLeft > jobEndingWarnS)
	)
		notes.push({
			kind: 'job-ending',
			title: `Job ${next.id} ends in ${minutes(left)}`,
			message: `Slurm job ${next.id} on ${next.node ?? 'its node'} reaches its time limit in ${minutes(left)}: save your notebooks`,
			notebook: null,
		});
	if (next.state === 'ENDED' && same && previous.state !== 'ENDED')
		notes.push({
			kind: 'job-ended',
			title: `Job ${next.id} ended`,
			message: `Slurm job ${next.id} ended (${next.reason ?? next.slurmState}); its Jupyter and kernels are gone: r submits a new one`,
			notebook: null,
		});
	return notes;
}
