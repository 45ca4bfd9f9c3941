import type {
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

export type Role = 'connect' | 'host' | 'demo';

export type Overlay = 'help' | 'confirm-restart' | 'confirm-quit' | null;

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
	/** Where the data comes from: `agent`, `exec fallback`, `local`. */
	readonly source: string | null;
	/** Why the log pane stays empty and where lines could come from, or null. */
	readonly logHint: string | null;
	readonly notice: Notice | null;
	readonly prompt: Prompt | null;
	readonly overlay: Overlay;
	/** Set when the app should exit; the shell disposes services, then exits with this code. */
	readonly exit: {readonly code: number; readonly stopJupyter: boolean} | null;
	readonly ui: {
		readonly focus: number;
		/** Lines scrolled up from the bottom of the log (0 = following). */
		readonly logScroll: number;
		readonly logFilter: string;
		readonly filterEditing: boolean;
	};
};

export type AppAction =
	| {readonly type: 'hop'; readonly hop: HopName; readonly patch: Partial<Omit<HopStatus, 'hop'>>}
	| {readonly type: 'forward'; readonly forward: ForwardStatus}
	| {readonly type: 'jupyter'; readonly jupyter: JupyterStatus | null}
	| {readonly type: 'gpu'; readonly gpu: GpuStatus}
	| {readonly type: 'host-stats'; readonly host: HostStats}
	| {readonly type: 'log'; readonly lines: readonly string[]}
	| {readonly type: 'source'; readonly source: string | null}
	| {readonly type: 'log-hint'; readonly hint: string | null}
	| {readonly type: 'title'; readonly title: string}
	| {readonly type: 'notice'; readonly notice: Notice | null}
	| {readonly type: 'prompt'; readonly prompt: Prompt | null}
	| {readonly type: 'overlay'; readonly overlay: Overlay}
	| {readonly type: 'focus'; readonly delta: number; readonly panes: number}
	/** `max`: the most lines the log can be scrolled up (its lines less the shown ones). */
	| {readonly type: 'scroll'; readonly delta: number; readonly max?: number}
	| {readonly type: 'filter'; readonly filter: string; readonly editing: boolean}
	| {readonly type: 'exit'; readonly code: number; readonly stopJupyter?: boolean};

export function initialHop(hop: HopName, label: string): HopStatus {
	return {
		hop,
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
		hops: init.hops,
		forwards: init.forwards ?? [],
		jupyter: null,
		gpu: null,
		gpuHistory: {},
		host: null,
		logs: [],
		logSeq: 0,
		source: null,
		logHint: null,
		notice: null,
		prompt: null,
		overlay: null,
		exit: null,
		ui: {focus: 0, logScroll: 0, logFilter: '', filterEditing: false},
	};
}

function shallowEqual(a: object, b: object): boolean {
	const ak = Object.keys(a) as Array<keyof typeof a>;
	if (ak.length !== Object.keys(b).length) return false;
	return ak.every((k) => Object.is(a[k], b[k]));
}

export function reduce(state: AppState, action: AppAction): AppState {
	switch (action.type) {
		case 'hop': {
			const index = state.hops.findIndex((h) => h.hop === action.hop);
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

			return {...state, gpu: action.gpu, gpuHistory};
		}

		case 'host-stats': {
			if (state.host && shallowEqual(state.host, action.host)) return state;
			return {...state, host: action.host};
		}

		case 'log': {
			if (action.lines.length === 0) return state;
			const logs = [...state.logs, ...action.lines].slice(-logCapacity);
			// Keep the view where the user left it while new lines arrive.
			const logScroll =
				state.ui.logScroll === 0
					? 0
					: Math.min(state.ui.logScroll + action.lines.length, logs.length);
			return {
				...state,
				logs,
				logSeq: state.logSeq + action.lines.length,
				ui: {...state.ui, logScroll},
			};
		}

		case 'title': {
			return state.title === action.title ? state : {...state, title: action.title};
		}

		case 'source': {
			return state.source === action.source ? state : {...state, source: action.source};
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

		case 'overlay': {
			return state.overlay === action.overlay ? state : {...state, overlay: action.overlay};
		}

		case 'focus': {
			const panes = Math.max(1, action.panes);
			const focus = (((state.ui.focus + action.delta) % panes) + panes) % panes;
			return {...state, ui: {...state.ui, focus}};
		}

		case 'scroll': {
			const max = Math.min(state.logs.length, action.max ?? state.logs.length);
			const logScroll = Math.max(0, Math.min(max, state.ui.logScroll + action.delta));
			return logScroll === state.ui.logScroll ? state : {...state, ui: {...state.ui, logScroll}};
		}

		case 'filter': {
			return {
				...state,
				ui: {...state.ui, logFilter: action.filter, filterEditing: action.editing, logScroll: 0},
			};
		}

		case 'exit': {
			return {...state, exit: {code: action.code, stopJupyter: action.stopJupyter ?? false}};
		}
	}
}
