import {sanitizeLine} from './sanitize.js';
import type {KernelStatus, Notification} from './kernels.js';
import type {JobObject} from './slurm.js';
import type {
	ClassifiedError,
	ForwardStatus,
	GpuStatus,
	HopName,
	HopStatus,
	HostStats,
	JupyterStatus,
	Notice,
	Prompt,
} from './types.js';

/** How many GPU utilization samples each sparkline keeps. */
export const historyLength = 60;
/** How many log lines the store keeps (the log pane scrolls within them). */
export const logCapacity = 500;
/** How many recent notifications the store keeps (the JSON writers emit the new ones). */
export const notificationCapacity = 10;

export type Role = 'connect' | 'host' | 'demo';

/** What quitting `connect --slurm` does to the job (config's `--on-quit`). */
export type JobOnQuit = 'keep' | 'cancel' | 'ask';

/**
 * The Slurm job of `connect --slurm` as the store keeps it: the contract's job object, when it was
 * seen (the dashboard counts the time left down from there), and what quitting does to it.
 */
export type StoredJob = JobObject & {readonly seenAt: number; readonly onQuit: JobOnQuit};

/** A notification as the store keeps it: numbered like the log, stamped when it arrived. */
export type StoredNotification = Notification & {readonly seq: number; readonly at: number};

export type AppState = {
	readonly role: Role;
	/** Header title: the GPU host's name. */
	readonly title: string;
	/** Header subtitle: `via relay.example.org`. */
	readonly subtitle: string;
	/** Config file in use, for the help overlay. */
	readonly configFile: string | null;
	readonly hops: readonly HopStatus[];
	readonly forwards: readonly ForwardStatus[];
	readonly jupyter: JupyterStatus | null;
	readonly gpu: GpuStatus | null;
	/** Utilization history per GPU uuid, oldest first, at most `historyLength`. */
	readonly gpuHistory: Readonly<Record<string, readonly number[]>>;
	readonly host: HostStats | null;
	/** Token-masked log lines, oldest first. */
	readonly logs: readonly string[];
	/** Count of every log line ever added (the JSON writer emits the new ones). */
	readonly logSeq: number;
	/** The notebooks' kernels on the GPU host (core/kernels.ts), in Jupyter's order. */
	readonly kernels: readonly KernelStatus[];
	/** The latest notifications, oldest first, at most `notificationCapacity`. */
	readonly notifications: readonly StoredNotification[];
	/** Count of every notification ever added. */
	readonly notifySeq: number;
	/** Where the data comes from: `agent`, `exec fallback`, `local`. */
	readonly source: string | null;
	/** `connect --slurm`: the job (null before it is found or submitted, and without --slurm). */
	readonly job: StoredJob | null;
	/** Why the log pane stays empty and where lines could come from, or null. */
	readonly logHint: string | null;
	readonly notice: Notice | null;
	readonly prompt: Prompt | null;
};

export type AppAction =
	/** `index` picks the hop when given (a chain may hold several `jump`s), else `hop` does. */
	| {
			readonly type: 'hop';
			readonly hop: HopName;
			readonly index?: number;
			/** `name` changes only where the hop's host is learnt late (a Slurm job's node). */
			readonly patch: Partial<Omit<HopStatus, 'hop' | 'index'>>;
	  }
	| {readonly type: 'forward'; readonly forward: ForwardStatus}
	| {readonly type: 'jupyter'; readonly jupyter: JupyterStatus | null}
	| {readonly type: 'gpu'; readonly gpu: GpuStatus}
	| {readonly type: 'host-stats'; readonly host: HostStats}
	| {readonly type: 'log'; readonly lines: readonly string[]}
	| {
			readonly type: 'kernels';
			readonly kernels: readonly KernelStatus[];
			/** The kernel monitor's GPU pids in another PID namespace (core/kernels.ts). */
			readonly foreignGpuPids?: readonly number[];
	  }
	| {readonly type: 'kernel'; readonly kernel: KernelStatus}
	| {readonly type: 'kernel-gone'; readonly id: string}
	| {readonly type: 'notify'; readonly notification: Notification; readonly at: number}
	| {readonly type: 'source'; readonly source: string | null}
	| {readonly type: 'job'; readonly job: StoredJob | null}
	| {readonly type: 'log-hint'; readonly hint: string | null}
	| {readonly type: 'title'; readonly title: string}
	| {readonly type: 'notice'; readonly notice: Notice | null}
	| {readonly type: 'prompt'; readonly prompt: Prompt | null};

/**
 * A hop before its first attempt; `name` defaults to its label. Its `index` is its place in the
 * chain, which initialState sets.
 */
export function initialHop(
	hop: HopName,
	label: string,
	place: {readonly name?: string} = {},
): HopStatus {
	return {
		hop,
		index: 0,
		name: place.name ?? label,
		label,
		state: 'connecting',
		attempt: 0,
		reconnects: 0,
		rttMs: null,
		error: null,
		readySince: null,
		retryAt: null,
		lastLoss: null,
	};
}

export function initialState(init: {
	readonly role: Role;
	readonly title: string;
	readonly subtitle?: string;
	readonly configFile?: string | null;
	readonly hops: readonly HopStatus[];
	readonly forwards?: readonly ForwardStatus[];
}): AppState {
	return {
		role: init.role,
		title: init.title,
		subtitle: init.subtitle ?? '',
		configFile: init.configFile ?? null,
		// A hop's index is its place in the chain, however its status was made.
		hops: init.hops.map((hop, index) => (hop.index === index ? hop : {...hop, index})),
		forwards: init.forwards ?? [],
		jupyter: null,
		gpu: null,
		gpuHistory: {},
		host: null,
		logs: [],
		logSeq: 0,
		kernels: [],
		notifications: [],
		notifySeq: 0,
		source: null,
		job: null,
		logHint: null,
		notice: null,
		prompt: null,
	};
}

/** The same object when already clean, so the hop's equality check still sees "no change". */
const cleanError = <E extends {readonly message: string}>(error: E | null | undefined) => {
	if (!error) return error;
	const message = sanitizeLine(error.message);
	return message === error.message ? error : {...error, message};
};

/**
 * The store's one gate for remote text (SPEC security): every string a remote side can put into
 * an action — server and hop messages, GPU and process names, prompts, notices, log lines, the
 * GPU host's name — passes {@link sanitizeLine} here, so every view holds clean text.
 */
function sanitizeAction(action: AppAction): AppAction {
	switch (action.type) {
		case 'hop': {
			const {error, label, name} = action.patch;
			if (error === undefined && label === undefined && name === undefined) return action;
			return {
				...action,
				patch: {
					...action.patch,
					...(name === undefined ? {} : {name: sanitizeLine(name)}),
					...(error === undefined ? {} : {error: cleanError<ClassifiedError>(error) ?? null}),
					...(label === undefined ? {} : {label: sanitizeLine(label)}),
				},
			};
		}

		case 'jupyter': {
			const {jupyter} = action;
			if (!jupyter?.message) return action;
			return {...action, jupyter: {...jupyter, message: sanitizeLine(jupyter.message)}};
		}

		case 'gpu': {
			const {gpu} = action;
			return {
				...action,
				gpu: {
					...gpu,
					gpus: gpu.gpus.map((g) => ({
						...g,
						name: sanitizeLine(g.name),
						uuid: sanitizeLine(g.uuid),
						busId: g.busId === null ? null : sanitizeLine(g.busId),
					})),
					processes: gpu.processes.map((p) => ({
						...p,
						gpuUuid: sanitizeLine(p.gpuUuid),
						user: p.user === null ? null : sanitizeLine(p.user),
						command: sanitizeLine(p.command),
					})),
					error: cleanError(gpu.error) ?? null,
					driverVersion: gpu.driverVersion === null ? null : sanitizeLine(gpu.driverVersion),
				},
			};
		}

		case 'log': {
			return {...action, lines: action.lines.map((line) => sanitizeLine(line))};
		}

		case 'title': {
			return {...action, title: sanitizeLine(action.title)};
		}

		case 'source': {
			return action.source === null ? action : {...action, source: sanitizeLine(action.source)};
		}

		case 'job': {
			const {job} = action;
			if (!job) return action;
			const clean = (value: string | null) => (value === null ? null : sanitizeLine(value));
			return {
				...action,
				job: {...job, id: sanitizeLine(job.id), reason: clean(job.reason), node: clean(job.node)},
			};
		}

		case 'notice': {
			const {notice} = action;
			return notice ? {...action, notice: {...notice, text: sanitizeLine(notice.text)}} : action;
		}

		case 'prompt': {
			const {prompt} = action;
			if (!prompt) return action;
			return {
				...action,
				prompt:
					prompt.kind === 'secret'
						? {...prompt, message: sanitizeLine(prompt.message)}
						: {
								...prompt,
								host: sanitizeLine(prompt.host),
								keyType: sanitizeLine(prompt.keyType),
								fingerprint: sanitizeLine(prompt.fingerprint),
							},
			};
		}

		default: {
			return action;
		}
	}
}

function shallowEqual(a: object, b: object): boolean {
	const ak = Object.keys(a) as Array<keyof typeof a>;
	if (ak.length !== Object.keys(b).length) return false;
	return ak.every((k) => Object.is(a[k], b[k]));
}

const samePids = (a: readonly number[], b: readonly number[] | undefined) =>
	b !== undefined && a.length === b.length && a.every((pid, i) => pid === b[i]);

/**
 * A new GPU sample keeps the kernel monitor's foreign pids (it looks every 2 s, the sample comes
 * every second) for the processes still listed, unless the sample brings its own (the agent's).
 */
function withForeign(gpu: GpuStatus, before: readonly number[] | undefined): GpuStatus {
	if (gpu.foreignPids !== undefined || before === undefined) return gpu;
	const listed = new Set(gpu.processes.map((p) => p.pid));
	return {...gpu, foreignPids: before.filter((pid) => listed.has(pid))};
}

export function reduce(state: AppState, raw: AppAction): AppState {
	const action = sanitizeAction(raw);
	switch (action.type) {
		case 'hop': {
			const index = state.hops.findIndex((h) =>
				action.index === undefined ? h.hop === action.hop : h.index === action.index,
			);
			if (index === -1) return state;
			const current = state.hops[index]!;
			const next = {...current, ...action.patch};
			if (shallowEqual(current, next)) return state;
			const hops = [...state.hops];
			hops[index] = next;
			return {...state, hops};
		}

		case 'forward': {
			const index = state.forwards.findIndex((f) => f.local === action.forward.local);
			if (index !== -1 && shallowEqual(state.forwards[index]!, action.forward)) return state;
			const forwards = [...state.forwards];
			if (index === -1) forwards.push(action.forward);
			else forwards[index] = action.forward;
			return {...state, forwards};
		}

		case 'jupyter': {
			if (
				state.jupyter === action.jupyter ||
				(state.jupyter && action.jupyter && shallowEqual(state.jupyter, action.jupyter))
			)
				return state;
			return {...state, jupyter: action.jupyter};
		}

		case 'gpu': {
			const gpuHistory: Record<string, readonly number[]> = {};
			for (const gpu of action.gpu.gpus) {
				const previous = state.gpuHistory[gpu.uuid] ?? [];
				gpuHistory[gpu.uuid] =
					gpu.utilizationGpu === null
						? previous
						: [...previous, gpu.utilizationGpu].slice(-historyLength);
			}

			return {...state, gpu: withForeign(action.gpu, state.gpu?.foreignPids), gpuHistory};
		}

		case 'host-stats': {
			if (state.host && shallowEqual(state.host, action.host)) return state;
			return {...state, host: action.host};
		}

		case 'log': {
			if (action.lines.length === 0) return state;
			const logs = [...state.logs, ...action.lines].slice(-logCapacity);
			return {...state, logs, logSeq: state.logSeq + action.lines.length};
		}

		case 'kernels': {
			const foreign = action.foreignGpuPids;
			const gpu =
				foreign && state.gpu && !samePids(foreign, state.gpu.foreignPids)
					? {...state.gpu, foreignPids: foreign}
					: state.gpu;
			if (state.kernels.length === 0 && action.kernels.length === 0 && gpu === state.gpu)
				return state;
			return {...state, kernels: action.kernels, gpu};
		}

		case 'kernel': {
			const index = state.kernels.findIndex((k) => k.id === action.kernel.id);
			const kernels = [...state.kernels];
			if (index === -1) kernels.push(action.kernel);
			else kernels[index] = action.kernel;
			return {...state, kernels};
		}

		case 'kernel-gone': {
			const kernels = state.kernels.filter((k) => k.id !== action.id);
			return kernels.length === state.kernels.length ? state : {...state, kernels};
		}

		case 'notify': {
			const seq = state.notifySeq + 1;
			const notifications = [
				...state.notifications,
				{...action.notification, seq, at: action.at},
			].slice(-notificationCapacity);
			return {...state, notifications, notifySeq: seq};
		}

		case 'title': {
			return state.title === action.title ? state : {...state, title: action.title};
		}

		case 'source': {
			return state.source === action.source ? state : {...state, source: action.source};
		}

		case 'job': {
			if (state.job === action.job) return state;
			if (state.job && action.job && shallowEqual(state.job, action.job)) return state;
			return {...state, job: action.job};
		}

		case 'log-hint': {
			return state.logHint === action.hint ? state : {...state, logHint: action.hint};
		}

		case 'notice': {
			return {...state, notice: action.notice};
		}

		case 'prompt': {
			return {...state, prompt: action.prompt};
		}
	}
}

/**
 * What only the services' background updates change (samples, hop and Jupyter status, log lines):
 * the dashboard may show these a frame late, coalesced (hooks/use-frame-store.ts).
 */
const backgroundFields: ReadonlySet<keyof AppState> = new Set<keyof AppState>([
	'title',
	'subtitle',
	'hops',
	'forwards',
	'jupyter',
	'gpu',
	'gpuHistory',
	'host',
	'logs',
	'logSeq',
	'kernels',
	'source',
	'job',
	'logHint',
]);

/** The change from `shown` to `next` touches what the user did or must see now (keys, prompts, notices). */
export function urgentChange(shown: AppState, next: AppState): boolean {
	for (const key of Object.keys(next) as Array<keyof AppState>)
		if (shown[key] !== next[key] && !backgroundFields.has(key)) return true;
	return false;
}

/** The `[gpujup] …` log line a notification leaves. */
export function notificationLogLine(notification: Notification): string {
	return `[gpujup] ${notification.title}: ${notification.message}`;
}
