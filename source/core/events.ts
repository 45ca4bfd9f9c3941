import type {KernelStatus, Notification} from './kernels.js';
import {jobObject, type JobObject} from './slurm.js';
import {
	errorKinds,
	type ClassifiedError,
	type ForwardStatus,
	type GpuStatus,
	type HopName,
	type HopState,
	type HopStatus,
	type HostStats,
	type JupyterServerSummary,
	type JupyterState,
	type JupyterStatus,
} from './types.js';

/**
 * The facts the JSON contract is drawn from: the session's part of the store (the dashboard's own
 * focus, scroll and overlays live in the view, core/view-state.ts). The store's state has these
 * fields among others.
 */
export type SessionFacts = {
	readonly hops: readonly HopStatus[];
	readonly forwards: readonly ForwardStatus[];
	readonly jupyter: JupyterStatus | null;
	readonly gpu: GpuStatus | null;
	readonly host: HostStats | null;
	/** Token-masked log lines, oldest first, and the count of every line ever added. */
	readonly logs: readonly string[];
	readonly logSeq: number;
	readonly kernels: readonly KernelStatus[];
	/** The latest notifications, oldest first, and the count of every one ever added. */
	readonly notifications: ReadonlyArray<Notification & {readonly seq: number; readonly at: number}>;
	readonly notifySeq: number;
	readonly source: string | null;
	/** `connect --slurm`'s job (absent or null without one). */
	readonly job?: JobObject | null;
};

/** The SPEC's JSON contract, one object per line (`--no-tui`, the control sockets' subscribe). */
export type HopEvent = {
	readonly type: 'hop';
	readonly hop: HopName;
	/** 0 = the first hop of the chain. */
	readonly index: number;
	/** The alias or host the user wrote for it. */
	readonly name: string;
	readonly state: HopState;
	readonly attempt: number;
	readonly reconnects: number;
	readonly rttMs: number | null;
	readonly error: ClassifiedError | null;
};

export type ForwardEvent = {
	readonly type: 'forward';
	readonly local: string;
	readonly remote: string;
	readonly state: ForwardStatus['state'];
	readonly connections: number;
};

export type JupyterEvent = {
	readonly type: 'jupyter';
	readonly state: JupyterState;
	readonly url: string | null;
	readonly pid: number | null;
	readonly kernels: number | null;
	/** Why it is not running (or what to know), e.g. that something else holds the port. */
	readonly message: string | null;
	/** The user's Jupyter servers on the GPU host (laptop side), tokens never included. */
	readonly servers?: readonly JupyterServerSummary[];
};

export type GpuEvent = {
	readonly type: 'gpu';
	readonly gpus: ReadonlyArray<{
		readonly index: number;
		readonly uuid: string;
		readonly name: string;
		readonly mig: boolean;
		readonly utilizationGpu: number | null;
		readonly memoryUsedMiB: number | null;
		readonly memoryTotalMiB: number | null;
		readonly temperatureC: number | null;
		readonly powerW: number | null;
		readonly powerLimitW: number | null;
		readonly fanPercent: number | null;
	}>;
	readonly processes: GpuStatus['processes'];
	readonly error: GpuStatus['error'];
	/**
	 * Additive, present only when there are some: pids of `processes` in no process table of the
	 * GPU host (another PID namespace: a container), never matched to a notebook.
	 */
	readonly foreignPids?: readonly number[];
};

export type HostEvent = {readonly type: 'host'} & HostStats;
export type LogEvent = {
	readonly type: 'log';
	readonly source: 'jupyter';
	readonly line: string;
	/** Over the control socket only: the line's number in the agent's log, to resume after it. */
	readonly seq?: number;
};
/**
 * Kinds of `error` lines: every {@link ErrorKind}, and `overflow` — the `--no-tui` reader fell
 * behind and lines were dropped (the message counts them).
 */
export const jsonErrorKinds = [...errorKinds, 'overflow'] as const;
export type JsonErrorKind = (typeof jsonErrorKinds)[number];

export type ErrorEvent = {
	readonly type: 'error';
	readonly kind: JsonErrorKind;
	readonly message: string;
};

/** One kernel as `status --json` lists it and a `kernel` event carries it. */
export type KernelObject = Omit<KernelStatus, 'since' | 'lostPid'> & {
	/** ISO 8601. */
	readonly since: string;
};

export type KernelEvent = ({readonly type: 'kernel'} & KernelObject) | KernelGoneEvent;
export type KernelGoneEvent = {
	readonly type: 'kernel';
	readonly id: string;
	readonly state: 'gone';
};
export type NotifyEvent = {readonly type: 'notify'} & Notification & {
		/** Over the control socket only: the notification's number, to resume after it. */
		readonly seq?: number;
	};
/** `connect --slurm`: the job's state, reason, node, GPUs and time left, whenever one changes. */
export type JobEvent = {readonly type: 'job'} & JobObject;

export type JsonEventBody =
	| HopEvent
	| ForwardEvent
	| JupyterEvent
	| GpuEvent
	| HostEvent
	| LogEvent
	| ErrorEvent
	| KernelEvent
	| NotifyEvent
	| JobEvent;
export type JsonEvent = JsonEventBody & {readonly at: string};

export function hopEvent(h: HopStatus): HopEvent {
	return {
		type: 'hop',
		hop: h.hop,
		index: h.index,
		name: h.name,
		state: h.state,
		attempt: h.attempt,
		reconnects: h.reconnects,
		rttMs: h.rttMs === null ? null : Math.round(h.rttMs * 10) / 10,
		error: h.error,
	};
}

export function forwardEvent(f: ForwardStatus): ForwardEvent {
	return {
		type: 'forward',
		local: f.local,
		remote: f.remote,
		state: f.state,
		connections: f.connections,
	};
}

export function jupyterEvent(j: JupyterStatus): JupyterEvent {
	return {
		type: 'jupyter',
		state: j.state,
		url: j.url,
		pid: j.pid,
		kernels: j.kernels,
		message: j.message,
		...(j.servers ? {servers: j.servers} : {}),
	};
}

export function gpuEvent(g: GpuStatus): GpuEvent {
	return {
		type: 'gpu',
		gpus: [...g.gpus]
			.sort((a, b) => a.index - b.index)
			.map((x) => ({
				index: x.index,
				uuid: x.uuid,
				name: x.name,
				mig: x.mig,
				utilizationGpu: x.utilizationGpu,
				memoryUsedMiB: x.memoryUsedMiB,
				memoryTotalMiB: x.memoryTotalMiB,
				temperatureC: x.temperatureC,
				powerW: x.powerW,
				powerLimitW: x.powerLimitW,
				fanPercent: x.fanPercent,
			})),
		processes: g.processes,
		error: g.error,
		...(g.foreignPids && g.foreignPids.length > 0 ? {foreignPids: g.foreignPids} : {}),
	};
}

/** The contract's kernel object: `since` as ISO, no `lostPid` (internal bookkeeping). */
export function kernelObject(k: KernelStatus): KernelObject {
	return {
		id: k.id,
		name: k.name,
		notebook: k.notebook,
		state: k.state,
		since: new Date(k.since).toISOString(),
		lastActivity: k.lastActivity,
		connections: k.connections,
		pids: k.pids,
		gpuMemoryMiB: k.gpuMemoryMiB,
		cpuPercent: k.cpuPercent,
		rssMiB: k.rssMiB,
	};
}

export function kernelEvent(k: KernelStatus): KernelEvent {
	return {type: 'kernel', ...kernelObject(k)};
}

/** A kernel object the other side sent (already decoded) as the store keeps it. */
export function kernelStatusOf(object: KernelObject): KernelStatus {
	const since = Date.parse(object.since);
	return {
		id: object.id,
		name: object.name,
		notebook: object.notebook,
		state: object.state,
		since: Number.isFinite(since) ? since : Date.now(),
		lastActivity: object.lastActivity,
		connections: object.connections,
		pids: object.pids,
		gpuMemoryMiB: object.gpuMemoryMiB,
		cpuPercent: object.cpuPercent,
		rssMiB: object.rssMiB,
		lostPid: null,
	};
}

function jobKey(job: JobObject): string {
	const minutes = job.timeLeftS === null ? null : Math.floor(job.timeLeftS / 60);
	return JSON.stringify({...jobObject(job), timeLeftS: minutes});
}

/** What makes a hop worth a new line: RTT alone changes with every keepalive and is not news. */
function hopKey(h: HopStatus): string {
	return JSON.stringify([h.state, h.attempt, h.reconnects, h.error]);
}

/** `hopKey` of a hop before its first attempt (`initialHop`'s numbers). */
const untouchedHop = JSON.stringify(['connecting', 0, 0, null]);

/**
 * The events that tell a reader of the JSON lines how `prev` became `next`. With `prev` null, the
 * whole state (the first lines a subscriber gets).
 */
export function diffEvents(prev: SessionFacts | null, next: SessionFacts): JsonEventBody[] {
	const events: JsonEventBody[] = [];
	for (const hop of next.hops) {
		// A hop that has not tried yet is no news: its first event is its first attempt.
		if (hopKey(hop) === untouchedHop) continue;
		const before = prev?.hops.find((h) => h.index === hop.index && h.hop === hop.hop);
		if (!before || hopKey(before) !== hopKey(hop)) events.push(hopEvent(hop));
	}

	for (const forward of next.forwards) {
		const before = prev?.forwards.find((f) => f.local === forward.local);
		if (!before || JSON.stringify(forwardEvent(before)) !== JSON.stringify(forwardEvent(forward)))
			events.push(forwardEvent(forward));
	}

	if (
		next.jupyter &&
		(!prev?.jupyter ||
			JSON.stringify(jupyterEvent(prev.jupyter)) !== JSON.stringify(jupyterEvent(next.jupyter)))
	)
		events.push(jupyterEvent(next.jupyter));
	// Samples come every second; an unchanged one (or a repeated error) is not news.
	if (next.gpu && next.gpu !== prev?.gpu) {
		const event = gpuEvent(next.gpu);
		if (!prev?.gpu || JSON.stringify(gpuEvent(prev.gpu)) !== JSON.stringify(event))
			events.push(event);
	}
	if (next.host && next.host !== prev?.host) events.push({type: 'host', ...next.host});
	if (next.job && next.job !== prev?.job) {
		if (!prev?.job || jobKey(prev.job) !== jobKey(next.job))
			events.push({type: 'job', ...jobObject(next.job)});
	}
	if (next.kernels !== prev?.kernels) {
		const before = new Map(prev?.kernels.map((k) => [k.id, JSON.stringify(kernelObject(k))]));
		for (const kernel of next.kernels) {
			const event = kernelEvent(kernel);
			const {type: _type, ...object} = event;
			if (before.get(kernel.id) !== JSON.stringify(object)) events.push(event);
			before.delete(kernel.id);
		}

		for (const id of before.keys()) events.push({type: 'kernel', id, state: 'gone'});
	}

	// Notifications are news once: a new reader gets none of the past ones.
	if (prev && next.notifySeq > prev.notifySeq)
		for (const {seq: _seq, at: _at, ...note} of next.notifications.slice(
			-(next.notifySeq - prev.notifySeq),
		))
			events.push({type: 'notify', ...note});
	// A new reader (prev null) gets the lines kept so far, then each new one.
	const newLines = prev ? Math.min(next.logSeq - prev.logSeq, next.logs.length) : next.logs.length;
	if (newLines > 0)
		for (const line of next.logs.slice(-newLines))
			events.push({type: 'log', source: 'jupyter', line});

	return events;
}

/**
 * A dependency workaround (a reach into ssh2's or Ink's internals) and whether it is in effect:
 * `active` when the internals looked as expected, otherwise off with the safe fallback in use and
 * `detail` saying why. `doctor` prints them; `status --json` carries them as `workarounds`.
 */
export type WorkaroundObject = {
	/** `ssh2-window`, `ssh2-ping`, `ink-output-cache`, `ssh2-demo-server`. */
	readonly name: string;
	readonly active: boolean;
	readonly detail: string;
};

export type StatusObject = {
	readonly ok: boolean;
	readonly hops: HopEvent[];
	readonly forward: ForwardEvent | null;
	readonly jupyter: JupyterEvent | null;
	readonly gpu: GpuEvent | null;
	/** Where the facts come from: `gpujup host` (its agent), `exec fallback (…)`, null. */
	readonly source: string | null;
	readonly kernels: KernelObject[];
	/** `connect --slurm`'s job; null without one (absent from an older gpujup). */
	readonly job?: JobObject | null;
	/** Set by who answers `status` (the store does not hold them); absent from an older gpujup. */
	readonly workarounds?: WorkaroundObject[];
};

/** `status --json`: ok means every hop is ready and Jupyter answers; GPU trouble does not count. */
export function statusObject(state: SessionFacts): StatusObject {
	const hops = state.hops.map(hopEvent);
	const forward = state.forwards[0] ? forwardEvent(state.forwards[0]) : null;
	const jupyter = state.jupyter ? jupyterEvent(state.jupyter) : null;
	const ok = hops.every((h) => h.state === 'ready') && jupyter?.state === 'running';
	return {
		ok,
		hops,
		forward,
		jupyter,
		gpu: state.gpu ? gpuEvent(state.gpu) : null,
		source: state.source,
		kernels: state.kernels.map(kernelObject),
		job: state.job ? jobObject(state.job) : null,
	};
}

/**
 * Masks Jupyter tokens in text meant for eyes or logs: `token=abc…` and, when known, the token
 * itself wherever it stands.
 */
export function maskTokens(text: string, token?: string | null): string {
	let masked = text.replaceAll(/(token=)[^&\s"'<>]+/gi, '$1…');
	masked = masked.replaceAll(/(Authorization:\s*token\s+)\S+/gi, '$1…');
	if (token && token.length >= 8) masked = masked.replaceAll(token, '…');
	return masked;
}

/** `http://127.0.0.1:19507/`, never with a token. */
export function jupyterUrl(port: number): string {
	return `http://127.0.0.1:${port}/`;
}

/** The one place a URL with its token is made: `gpujup url` and the copy key. */
export function jupyterUrlWithToken(port: number, token: string): string {
	return `http://127.0.0.1:${port}/?token=${encodeURIComponent(token)}`;
}
