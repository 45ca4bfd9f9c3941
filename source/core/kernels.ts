/**
 * Notebooks' kernels as the GPU host sees them: Jupyter's REST answers (`/api/kernels`,
 * `/api/sessions`) joined with the process table and nvidia-smi's compute apps, and the
 * notifications their changes call for. Pure: the kernel monitor service feeds it snapshots.
 */
import type {GpuProcess} from './types.js';
import {sanitizeLine} from './sanitize.js';

export const kernelStates = ['busy', 'idle', 'starting', 'dead'] as const;
export type KernelState = (typeof kernelStates)[number];

/** One kernel, as the SPEC's `kernel` event carries it (plus `since` as epoch ms). */
export type KernelStatus = {
	readonly id: string;
	readonly name: string;
	/** Notebook path relative to the notebook dir; null for a kernel no session names. */
	readonly notebook: string | null;
	readonly state: KernelState;
	/** Epoch ms since the kernel is in `state`. */
	readonly since: number;
	/** Jupyter's own `last_activity` (ISO), when it gave one. */
	readonly lastActivity: string | null;
	readonly connections: number;
	/** The kernel's process and all its descendants (DataLoader workers, DDP children). */
	readonly pids: readonly number[];
	/** GPU memory held by those processes, per GPU uuid. */
	readonly gpuMemoryMiB: Readonly<Record<string, number>>;
	readonly cpuPercent: number | null;
	readonly rssMiB: number | null;
	/**
	 * The kernel's process when it ended while Jupyter still lists the kernel: a death (or a
	 * restart) once a new process appears, a shutdown when the kernel leaves the list. Not in the
	 * JSON contract.
	 */
	readonly lostPid: number | null;
};

/** What the REST API says about one kernel. */
export type RestKernel = {
	readonly id: string;
	readonly name: string;
	readonly notebook: string | null;
	readonly state: KernelState;
	readonly lastActivity: string | null;
	readonly connections: number;
	/**
	 * When the kernel entered `state`, where the kernel monitor's own channel saw it (epoch ms);
	 * else `last_activity` stands for it.
	 */
	readonly stateSince?: number | null;
};

/** One process of the GPU host's process table. */
export type ProcSample = {
	readonly pid: number;
	readonly ppid: number;
	/** argv, as /proc/<pid>/cmdline splits it. */
	readonly argv: readonly string[];
	/** utime + stime, in clock ticks. */
	readonly cpuTicks: number;
	readonly rssKiB: number;
};

/** The process table at one moment. */
export type ProcSnapshot = {
	readonly at: number;
	readonly ticksPerSecond: number;
	readonly processes: readonly ProcSample[];
};

const kernelIdPattern = /^[\w-]{1,64}$/;

function asRecord(value: unknown): Record<string, unknown> | null {
	return typeof value === 'object' && value !== null && !Array.isArray(value)
		? (value as Record<string, unknown>)
		: null;
}

function text(value: unknown, max = 512): string | null {
	return typeof value === 'string' ? sanitizeLine(value).slice(0, max) : null;
}

/** Jupyter's execution states folded into the four the dashboard shows. */
export function kernelState(executionState: unknown): KernelState {
	switch (executionState) {
		case 'busy': {
			return 'busy';
		}

		case 'idle': {
			return 'idle';
		}

		case 'dead': {
			return 'dead';
		}

		default: {
			// `starting`, `restarting`, `autorestarting`, unknown values.
			return 'starting';
		}
	}
}

/**
 * The kernels of `/api/kernels`, named by the notebooks of `/api/sessions`. Both answers come
 * from the remote side: anything of another shape is skipped, text is sanitised.
 */
export function parseRestKernels(kernels: unknown, sessions: unknown): RestKernel[] {
	const notebooks = new Map<string, string>();
	for (const entry of Array.isArray(sessions) ? sessions : []) {
		const session = asRecord(entry);
		const kernel = asRecord(session?.['kernel']);
		const id = kernel?.['id'];
		if (typeof id !== 'string') continue;
		const notebook = asRecord(session?.['notebook']);
		const path = text(session?.['path']) ?? text(notebook?.['path']);
		if (path) notebooks.set(id, path);
	}

	const result: RestKernel[] = [];
	for (const entry of Array.isArray(kernels) ? kernels : []) {
		const kernel = asRecord(entry);
		const id = kernel?.['id'];
		if (typeof id !== 'string' || !kernelIdPattern.test(id)) continue;
		const connections = kernel?.['connections'];
		result.push({
			id,
			name: text(kernel?.['name'], 64) ?? '?',
			notebook: notebooks.get(id) ?? null,
			state: kernelState(kernel?.['execution_state']),
			lastActivity: text(kernel?.['last_activity'], 64),
			connections:
				typeof connections === 'number' && Number.isFinite(connections) ? connections : 0,
		});
	}

	return result;
}

/** The kernel id in a kernel's command line (`-f …/kernel-<id>.json`), or null. */
export function kernelIdOf(argv: readonly string[]): string | null {
	for (const arg of argv) {
		const match = /(?:^|\/)kernel-([\w-]{1,64})\.json$/.exec(arg);
		if (match) return match[1]!;
	}

	return null;
}

/** `root` and all its descendants in `processes`, root first, then ascending. */
export function processTree(
	root: number,
	processes: ReadonlyArray<Pick<ProcSample, 'pid' | 'ppid'>>,
): number[] {
	const children = new Map<number, number[]>();
	for (const p of processes) {
		const list = children.get(p.ppid) ?? [];
		list.push(p.pid);
		children.set(p.ppid, list);
	}

	const found: number[] = [];
	const stack = [...(children.get(root) ?? [])];
	const seen = new Set<number>([root]);
	while (stack.length > 0) {
		const pid = stack.pop()!;
		if (seen.has(pid)) continue;
		seen.add(pid);
		found.push(pid);
		stack.push(...(children.get(pid) ?? []));
	}

	return [root, ...found.sort((a, b) => a - b)];
}

/**
 * When a kernel entered the state it is seen in now: Jupyter's `last_activity` (it moves with the
 * status message that changed the state), unless that is in the future or before the state seen
 * last; else the time of this look.
 */
function changedAt(rest: RestKernel, last: KernelStatus | undefined, now: number): number {
	const at = rest.lastActivity === null ? Number.NaN : Date.parse(rest.lastActivity);
	if (!Number.isFinite(at) || at > now || (last && at < last.since)) return now;
	return at;
}

/** Round to one decimal. */
const tenth = (n: number) => Math.round(n * 10) / 10;

export type JoinInput = {
	readonly rest: readonly RestKernel[];
	readonly procs: ProcSnapshot;
	/** The previous process table, for CPU %; null on the first sample. */
	readonly previousProcs: ProcSnapshot | null;
	readonly gpuProcesses: readonly GpuProcess[];
	/** The kernels of the previous round, for `since`. */
	readonly previous: readonly KernelStatus[];
	readonly now: number;
};

export type JoinResult = {
	readonly kernels: KernelStatus[];
	/**
	 * Pids nvidia-smi reports that are not in this process table: another PID namespace (a
	 * container) or a process that just ended. Never guessed onto a kernel.
	 */
	readonly foreignGpuPids: number[];
};

/** Kernels with their process trees, GPU memory, CPU and RSS. */
export function joinKernels(input: JoinInput): JoinResult {
	const byPid = new Map(input.procs.processes.map((p) => [p.pid, p]));
	const rootOf = new Map<string, number>();
	for (const p of input.procs.processes) {
		const id = kernelIdOf(p.argv);
		// A launcher wrapper and the kernel both name the file: keep the outermost.
		if (id && !(rootOf.has(id) && byPid.get(p.ppid) && kernelIdOf(byPid.get(p.ppid)!.argv) === id))
			rootOf.set(id, p.pid);
	}

	for (const [id, pid] of rootOf) {
		let parent = byPid.get(byPid.get(pid)?.ppid ?? -1);
		while (parent && kernelIdOf(parent.argv) === id) {
			rootOf.set(id, parent.pid);
			parent = byPid.get(parent.ppid);
		}
	}

	const before = new Map(input.previousProcs?.processes.map((p) => [p.pid, p]) ?? []);
	const elapsedS = input.previousProcs ? (input.procs.at - input.previousProcs.at) / 1000 : 0;
	const previous = new Map(input.previous.map((k) => [k.id, k]));
	const kernels = input.rest.map((rest): KernelStatus => {
		const root = rootOf.get(rest.id);
		const pids = root === undefined ? [] : processTree(root, input.procs.processes);
		const gpuMemoryMiB: Record<string, number> = {};
		for (const gp of input.gpuProcesses) {
			if (!pids.includes(gp.pid) || gp.usedMemoryMiB === null) continue;
			gpuMemoryMiB[gp.gpuUuid] = (gpuMemoryMiB[gp.gpuUuid] ?? 0) + gp.usedMemoryMiB;
		}

		let cpuPercent: number | null = null;
		let rssKiB = 0;
		if (pids.length > 0) {
			let ticks = 0;
			for (const pid of pids) {
				const now = byPid.get(pid)!;
				rssKiB += now.rssKiB;
				const then = before.get(pid);
				if (then) ticks += Math.max(0, now.cpuTicks - then.cpuTicks);
			}

			if (elapsedS > 0) cpuPercent = tenth((ticks / input.procs.ticksPerSecond / elapsedS) * 100);
		}

		const last = previous.get(rest.id);
		const {stateSince, ...shown} = rest;
		return {
			...shown,
			since:
				last && last.state === rest.state
					? last.since
					: stateSince != null && stateSince <= input.now
						? stateSince
						: changedAt(rest, last, input.now),
			pids,
			gpuMemoryMiB,
			cpuPercent,
			rssMiB: pids.length > 0 ? tenth(rssKiB / 1024) : null,
			lostPid: pids.length > 0 ? null : (last?.pids[0] ?? last?.lostPid ?? null),
		};
	});
	const foreignGpuPids = [
		...new Set(input.gpuProcesses.map((p) => p.pid).filter((pid) => !byPid.has(pid))),
	].sort((a, b) => a - b);
	return {kernels, foreignGpuPids};
}

/** What `i`, `K` and `x` ask of Jupyter for one kernel. */
export const kernelActions = ['interrupt', 'restart', 'shutdown'] as const;
export type KernelAction = (typeof kernelActions)[number];

export const notifyKinds = [
	'cell-done',
	'kernel-died',
	'kernel-restarted',
	'jupyter-restarted',
	'tunnel-back',
	'job-ending',
	'job-ended',
] as const;
export type NotifyKind = (typeof notifyKinds)[number];

/** A notification, as the SPEC's `notify` event carries it. */
export type Notification = {
	readonly kind: NotifyKind;
	readonly title: string;
	readonly message: string;
	readonly notebook: string | null;
};

function duration(ms: number): string {
	const s = Math.round(ms / 1000);
	if (s < 60) return `${s} s`;
	const m = Math.floor(s / 60);
	if (m < 60) return `${m} min ${s % 60} s`;
	return `${Math.floor(m / 60)} h ${m % 60} min`;
}

const label = (k: KernelStatus) => k.notebook ?? `kernel ${k.id.slice(0, 8)}`;

/**
 * What changed between two rounds that the user wants to hear about, while the browser is
 * closed: a long cell finished, a kernel died (its process ended without a restart asked for
 * through gpujup, and Jupyter started a new one or marked it dead) or was restarted.
 * `restartsAsked` holds kernel ids gpujup restarted itself. A process that ended while the kernel
 * is still listed is decided on a later round: a shutdown takes the kernel off the list.
 */
export function kernelNotifications(
	previous: readonly KernelStatus[],
	next: readonly KernelStatus[],
	options: {
		readonly notifyAfterMs: number;
		readonly now: number;
		readonly restartsAsked?: ReadonlySet<string>;
	},
): Notification[] {
	const notes: Notification[] = [];
	const nextById = new Map(next.map((k) => [k.id, k]));
	for (const before of previous) {
		const after = nextById.get(before.id);
		if (!after) continue;
		const name = label(after);
		const oldPid = before.pids[0] ?? before.lostPid;
		const restarted = oldPid !== null && after.pids.length > 0 && after.pids[0] !== oldPid;
		if (restarted || (after.state === 'dead' && before.state !== 'dead')) {
			const asked = options.restartsAsked?.has(after.id) ?? false;
			notes.push(
				asked
					? {
							kind: 'kernel-restarted',
							title: `Kernel restarted: ${name}`,
							message: `${name} (${after.name}) was restarted; its variables are gone`,
							notebook: after.notebook,
						}
					: {
							kind: 'kernel-died',
							title: `Kernel died: ${name}`,
							message:
								after.state === 'dead'
									? `${name} (${after.name}) died (pid ${oldPid ?? '?'})`
									: `${name} (${after.name}) died (pid ${oldPid ?? '?'}); Jupyter restarted it, its variables are gone`,
							notebook: after.notebook,
						},
			);
			continue;
		}

		if (before.state === 'busy' && after.state === 'idle') {
			const ran = Math.min(after.since, options.now) - before.since;
			if (ran >= options.notifyAfterMs)
				notes.push({
					kind: 'cell-done',
					title: `Cell finished: ${name}`,
					message: `a cell in ${name} finished after ${duration(ran)}`,
					notebook: after.notebook,
				});
		}
	}

	return notes;
}

/**
 * One exec on a GPU host without `gpujup host` that prints what the kernel monitor needs of its
 * process table: the clock tick and page size, every /proc/<pid>/stat line, and the kernel
 * connection file each command line names. Two processes a round, whatever the process count. A
 * POSIX sh script: `execText` sends it as one `sh -c` line, so fish and tcsh read it the same.
 */
export const procDumpCommand =
	'getconf CLK_TCK; getconf PAGESIZE; echo ---; cat /proc/[0-9]*/stat 2>/dev/null; echo ---;' +
	' grep -a -o "kernel-[A-Za-z0-9_-]*[.]json" /proc/[0-9]*/cmdline 2>/dev/null; true';

/** The fields of one `/proc/<pid>/stat` line that gpujup reads. */
export type ProcStat = {
	readonly pid: number;
	/** `R`, `S`, `D`, … ; `Z` (zombie) and `X` (dead) are gone but for their entry. */
	readonly state: string;
	readonly ppid: number;
	/** utime + stime, in clock ticks. */
	readonly cpuTicks: number;
	readonly rssPages: number;
	/** When the process started, in clock ticks after boot: tells it from a later one with its pid. */
	readonly startTicks: number;
};

/** One `/proc/<pid>/stat` line, or null when it has another shape. */
export function parseProcStat(line: string): ProcStat | null {
	// The command name is in parentheses and may itself contain spaces or parentheses.
	const close = line.lastIndexOf(')');
	const pid = Number.parseInt(line, 10);
	if (close < 0 || !Number.isInteger(pid)) return null;
	const rest = line.slice(close + 2).split(' ');
	if (rest.length < 22) return null;
	return {
		pid,
		state: rest[0]!,
		ppid: Number(rest[1]),
		cpuTicks: Number(rest[11]) + Number(rest[12]),
		rssPages: Number(rest[21]),
		startTicks: Number(rest[19]),
	};
}

/** Parses what {@link procDumpCommand} printed; lines of another shape are skipped. */
export function parseProcDump(text: string, at: number): ProcSnapshot {
	const [units = '', stats = '', kernels = ''] = text.split(/^---$/m);
	const [tick, page] = units.trim().split(/\s+/).map(Number);
	const ticksPerSecond = Number.isInteger(tick) && tick! > 0 ? tick! : 100;
	const pageKiB = Number.isInteger(page) && page! > 0 ? page! / 1024 : 4;
	const files = new Map<number, string>();
	for (const line of kernels.split('\n')) {
		const match = /^\/proc\/(\d+)\/cmdline:(kernel-[\w-]{1,64}\.json)$/.exec(line.trim());
		if (match) files.set(Number(match[1]), match[2]!);
	}

	const processes: ProcSample[] = [];
	for (const line of stats.split('\n')) {
		const stat = parseProcStat(line);
		if (!stat || stat.state === 'Z' || stat.state === 'X') continue;
		const file = files.get(stat.pid);
		processes.push({
			pid: stat.pid,
			ppid: stat.ppid,
			argv: file ? [file] : [],
			cpuTicks: stat.cpuTicks,
			rssKiB: stat.rssPages * pageKiB,
		});
	}

	return {at, ticksPerSecond, processes};
}

/**
 * How long the reverse tunnel must have been down for its return to be worth a notification, by
 * default (`tunnel-back-after`).
 */
export const tunnelBackAfterMs = 60_000;

/** What {@link serviceNotifications} remembers between two looks. */
export type ServiceMemory = {
	/** Whether the reverse tunnel has been ready at least once (its first connect is no return). */
	readonly reverseWasUp: boolean;
	/** Epoch ms the reverse tunnel left `ready`, null while it is up (or never was). */
	readonly reverseDownSince: number | null;
	/** Jupyter's crash-restart count when it was last seen running. */
	readonly jupyterRestarts: number | null;
};

export const initialServiceMemory: ServiceMemory = {
	reverseWasUp: false,
	reverseDownSince: null,
	jupyterRestarts: null,
};

/** The two facts of `gpujup host`'s own services the notifications read. */
export type ServiceSnapshot = {
	/** The reverse hop's state, null where there is none. */
	readonly reverse: string | null;
	readonly jupyter: {readonly state: string; readonly restarts: number} | null;
};

/**
 * The notifications of the GPU host's own services: Jupyter crashed and the supervisor has it
 * running again (its crash count went up), the reverse tunnel is back after at least
 * `backAfterMs` ({@link tunnelBackAfterMs} unless given) down.
 */
export function serviceNotifications(
	memory: ServiceMemory,
	next: ServiceSnapshot,
	now: number,
	backAfterMs = tunnelBackAfterMs,
): {readonly memory: ServiceMemory; readonly notes: Notification[]} {
	const notes: Notification[] = [];
	let {reverseWasUp, reverseDownSince, jupyterRestarts} = memory;
	if (next.reverse === 'ready') {
		reverseWasUp = true;
		if (reverseDownSince !== null && now - reverseDownSince >= backAfterMs)
			notes.push({
				kind: 'tunnel-back',
				title: 'Tunnel back',
				message: `the reverse tunnel is back after ${duration(now - reverseDownSince)} down`,
				notebook: null,
			});
		reverseDownSince = null;
	} else if (next.reverse !== null && reverseWasUp && reverseDownSince === null) {
		reverseDownSince = now;
	}

	if (next.jupyter?.state === 'running') {
		if (jupyterRestarts !== null && next.jupyter.restarts > jupyterRestarts)
			notes.push({
				kind: 'jupyter-restarted',
				title: 'Jupyter restarted',
				message: 'Jupyter crashed and was started again; its kernels are gone',
				notebook: null,
			});
		jupyterRestarts = next.jupyter.restarts;
	}

	return {memory: {reverseWasUp, reverseDownSince, jupyterRestarts}, notes};
}
